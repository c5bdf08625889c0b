//! The estimated wait: when a fan in line will be let in, from everything that bounds admission.
//!
//! Admission lets the next fan in when a place is free under the active limit and the pace
//! allows it. So the fan with `p` people ahead takes place `p mod limit` in round `p / limit`:
//! in the first round, the places free now (the limit less the turns running) are taken first,
//! then the places of the running turns as they end, earliest first; every later round frees
//! each place one turn length after it was taken. The pace bounds that from below: `p + 1`
//! admissions take `(p + 1) / rate` seconds.
//!
//! A turn's length is what turns actually last once the room has shown it (Little's law: the
//! turns running over the rate they end at, which is the admission rate observed while people
//! waited); before any has ended, the longest a turn can be: the active TTL, plus half a tick
//! (a lapsed turn is noticed by the next admission step). A running turn is expected to end one
//! turn length after it began (its deadline less the TTL), and the room's last admission step
//! saw their number and their earliest and latest deadlines; the deadlines between are taken as
//! evenly spread. In a cold room every turn began together: places free up together, one turn
//! length from the start, which an admission rate alone cannot say.
//!
//! Not modelled: seats running out before a fan's turn (the room then reads SOLD_OUT, and a
//! paused room says so on the ticket instead of in the number).

use std::time::Duration;

use chrono::NaiveDateTime;

use super::RoomGauge;
use crate::domain::rules::Rules;

/// What the room's admission is expected to do from now on.
#[derive(Debug, Clone, PartialEq)]
pub struct Outlook {
    /// Admissions per second over the long run: the pace set, or how fast turns end when the
    /// active limit binds.
    pub rate: f64,
    /// Seconds a turn is expected to last.
    pub turn: f64,
    /// The pace set, per second.
    pace: f64,
    limit: i64,
    tick: Duration,
    /// Seconds from now until each running turn is expected to end: the first and the last.
    running: Option<(f64, f64)>,
    running_count: i64,
}

impl Outlook {
    pub fn of(room: &RoomGauge, now: NaiveDateTime, rules: &Rules) -> Self {
        let pace = f64::from(
            room.admit_per_sec
                .unwrap_or(rules.queue_admit_per_sec)
                .max(1),
        );
        let limit = i64::from(room.active_limit.unwrap_or(rules.queue_active_limit).max(1));
        let ttl = rules.queue_active_ttl.as_secs_f64();
        let longest = ttl + rules.queue_tick.as_secs_f64() / 2.0;
        // Never slower than every turn running its full length.
        let floor = (limit as f64 / longest.max(f64::MIN_POSITIVE)).min(pace);
        let running_count = i64::from(room.turns.active_count.max(0));
        let (rate, turn) = match room.observed_rate {
            Some(seen) if seen.is_finite() => {
                let rate = seen.clamp(floor, pace);
                // Little's law: turns running = turn length × the rate they end at.
                let running = if running_count > 0 {
                    running_count
                } else {
                    limit
                };
                (rate, (running as f64 / rate).min(longest))
            }
            _ => (floor, longest),
        };
        let until = |deadline: Option<NaiveDateTime>| {
            deadline.map(|d| {
                // Began a TTL before its deadline; expected to last `turn`.
                let left = (d - now).num_milliseconds() as f64 / 1000.0 - ttl + turn;
                left.max(0.0)
            })
        };
        let running = match (
            until(room.turns.first_deadline),
            until(room.turns.last_deadline),
        ) {
            (Some(first), Some(last)) if running_count > 0 => Some((first, last.max(first))),
            _ => None,
        };
        Self {
            rate,
            turn,
            pace,
            limit,
            tick: rules.queue_tick,
            running,
            running_count,
        }
    }

    /// Whole seconds until the fan with `ahead` people before them is let in: at least one tick
    /// (admission happens on ticks), rounded up.
    pub fn wait(&self, ahead: i64) -> i64 {
        let ahead = ahead.max(0);
        let place = ahead % self.limit;
        let round = ahead / self.limit;
        // Running turns to end before this place is free (negative: it is free now).
        let ends = place + self.running_count - self.limit;
        let first_free = match self.running {
            Some((first, last)) if ends >= 0 => {
                let spread = if self.running_count > 1 {
                    ends.min(self.running_count - 1) as f64 / (self.running_count - 1) as f64
                } else {
                    0.0
                };
                first + spread * (last - first)
            }
            _ => 0.0,
        };
        let by_places = first_free + round as f64 * self.turn;
        let by_pace = (ahead + 1) as f64 / self.pace;
        let seconds = by_places.max(by_pace).ceil();
        (seconds.min(i64::MAX as f64) as i64).max(self.tick.as_secs().max(1) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::TurnsRow;
    use chrono::{NaiveDate, TimeDelta};

    fn now() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 1)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .expect("valid time")
    }

    fn rules() -> Rules {
        Rules {
            queue_admit_per_sec: 10,
            queue_active_limit: 5,
            queue_active_ttl: Duration::from_secs(4),
            queue_tick: Duration::from_secs(1),
            ..Rules::default()
        }
    }

    fn running(count: i32, first: f64, last: f64) -> TurnsRow {
        let at = |s: f64| Some(now() + TimeDelta::milliseconds((s * 1000.0) as i64));
        TurnsRow {
            active_count: count,
            first_deadline: at(first),
            last_deadline: at(last),
        }
    }

    #[test]
    fn in_a_cold_room_places_free_up_together_one_turn_after_they_were_taken() {
        // Five turns began just now with 4 s each: nobody has finished one yet.
        let room = RoomGauge {
            turns: running(5, 4.0, 4.0),
            ..RoomGauge::default()
        };
        let outlook = Outlook::of(&room, now(), &rules());
        assert_eq!(outlook.turn, 4.5);
        // The next five all wait for the first round to end, the five after them for two.
        let waits: Vec<i64> = (0..15).map(|p| outlook.wait(p)).collect();
        assert_eq!(waits[..5], [5, 5, 5, 5, 5]);
        assert_eq!(waits[5..10], [9, 9, 9, 9, 9]);
        assert_eq!(waits[10..], [14, 14, 14, 14, 14]);
        // The configured 10/s would have promised 1 s and 3 s.
        assert!((outlook.rate - 5.0 / 4.5).abs() < 1e-9);
    }

    #[test]
    fn free_places_are_taken_first_at_the_pace_set() {
        let room = RoomGauge {
            turns: running(2, 3.0, 4.0),
            ..RoomGauge::default()
        };
        let outlook = Outlook::of(&room, now(), &rules());
        // Three places free: the pace (10/s) and the tick decide; then the two running turns.
        assert_eq!(
            (0..6).map(|p| outlook.wait(p)).collect::<Vec<_>>(),
            [1, 1, 1, 4, 5, 5]
        );
        // The sixth takes the first free place again, one turn after the first fan took it.
    }

    #[test]
    fn once_turns_have_ended_their_length_comes_from_how_fast_they_end() {
        // Five running, ending at 2.5 a second: turns last 2 s.
        let room = RoomGauge {
            observed_rate: Some(2.5),
            turns: running(5, 2.0, 4.0),
            ..RoomGauge::default()
        };
        let outlook = Outlook::of(&room, now(), &rules());
        assert_eq!(outlook.turn, 2.0);
        // Each began 4 s before its deadline and lasts 2: they end between now and 2 s from now.
        assert_eq!(outlook.wait(0), 1);
        assert_eq!(outlook.wait(4), 2);
        // Twenty ahead: four rounds of 2 s after the first place frees.
        assert_eq!(outlook.wait(20), 8);
        // A room where no turn ended lately is not stalled forever: every turn ends within the
        // turn length, so the rate is never below limit / longest turn.
        let stalled = RoomGauge {
            observed_rate: Some(0.0),
            ..room
        };
        assert!((Outlook::of(&stalled, now(), &rules()).rate - 5.0 / 4.5).abs() < 1e-9);
    }

    #[test]
    fn the_pace_set_bounds_the_wait_when_places_are_plenty() {
        let rules = Rules {
            queue_active_limit: 10_000,
            ..rules()
        };
        let outlook = Outlook::of(&RoomGauge::default(), now(), &rules);
        assert_eq!(outlook.wait(0), 1);
        assert_eq!(outlook.wait(99), 10);
        assert_eq!(outlook.rate, 10.0);
    }
}
