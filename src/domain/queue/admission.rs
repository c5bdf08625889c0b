//! Admission: the step that lets people in.
//!
//! A step ([`advance`]) locks the room row, so however many instances run it, one at a time
//! acts on a room. Its pace is a GCRA on the database clock: the room's `admit_clock` moves
//! forward `1/rate` seconds per admission and may lag `now` by at most one second, so no more than
//! `rate` tickets are admitted per second (plus a one-second burst) across all instances. The
//! number of ACTIVE tickets never exceeds the limit because it is counted under the same lock.
//! Tickets whose owner stopped polling are marked ABANDONED when admission reaches them, so people
//! who left never stall the line.
//!
//! The room's controls (paused, rate, active limit) are read from its row under the same lock, so
//! an operator's change holds on every instance from the next step. Admission knows inventory:
//! with no seat free it lets nobody in; with every seat sold the room closes (waiting tickets
//! read SOLD_OUT) until a lapsed hold or a refund frees a seat. Each step also keeps the counters
//! the operator view reads and the observed admission rate a fan's estimated wait comes from.

use chrono::{NaiveDateTime, TimeDelta};

use super::{RoomGauge, TicketStatus};
use crate::db::ids::{ConcertId, TicketId};
use crate::db::models::{QueueRoomRow, QueueTicketRow, TurnsRow};
use crate::db::{Conn, queue_rooms, queue_tickets, seats};
use crate::domain::error::Result;
use crate::domain::rules::Rules;
use crate::domain::services::Services;
use crate::domain::time::chrono_duration;

/// What one admission step did, for logs, metrics and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AdmissionReport {
    pub admitted: usize,
    pub abandoned: usize,
    pub expired: usize,
    pub skipped: bool,
}

/// Tickets looked at per batch, and batches per step: bounds one step's work however long the
/// line of abandoned tickets at its head.
const WALK_BATCH: i64 = 256;
const WALK_BATCHES: usize = 8;

/// Who asks for an admission step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An instance's ticker: skipped when another instance already stepped this room within
    /// half a tick, so N instances do not make N steps per tick.
    Ticker,
    /// A fan entering an idle room at its head: always steps, so they are admitted at once.
    Entry,
}

/// One admission step for one room, in a transaction of its own: lock the room (skipping a
/// ticker's step when another instance stepped it within half a tick), then [`step`].
pub async fn advance(
    services: &Services,
    concert_id: &ConcertId,
    trigger: Trigger,
) -> Result<AdmissionReport> {
    let rules = &services.rules;
    let home = services.db.room_home(concert_id);
    let report = transaction!(home, async |conn: &mut Conn| {
        let Some((room, now)) = queue_rooms::lock_at_now(conn, concert_id).await? else {
            return Ok(AdmissionReport::default());
        };
        let half_tick = chrono_duration(rules.queue_tick) / 2;
        if trigger == Trigger::Ticker && room.last_tick_at.is_some_and(|t| now - t < half_tick) {
            return Ok(AdmissionReport {
                skipped: true,
                ..Default::default()
            });
        }
        Ok(step(conn, rules, &room, now, trigger, Line::Stored)
            .await?
            .report)
    })
    .await?;
    report.count();
    Ok(report)
}

impl AdmissionReport {
    /// Counts a committed step in the metrics.
    pub(super) fn count(&self) {
        metrics::counter!("queue_admitted_total").increment(self.admitted as u64);
        metrics::counter!("queue_abandoned_total").increment(self.abandoned as u64);
    }
}

/// Where a step finds the line.
pub(super) enum Line<'a> {
    /// In the table, read in batches and locked.
    Stored,
    /// Exactly these tickets, which the caller's transaction just wrote behind an empty line
    /// (an entry batch into an idle room): nothing to read back.
    Fresh(&'a [QueueTicketRow]),
}

/// What a step did and the room it left.
pub(super) struct Stepped {
    pub report: AdmissionReport,
    /// The room's gauge after the step.
    pub room: RoomGauge,
    /// The tickets made ACTIVE, and their deadline.
    pub admitted: Vec<TicketId>,
    pub expires_at: NaiveDateTime,
}

/// One admission step on `room`, which the caller's transaction has locked, at `now`: expire
/// lapsed ACTIVE tickets, skip abandoned ones, admit as many waiting tickets as the room's
/// controls (paused, rate, active limit) and its seats allow, close the room when every seat is
/// sold (and open it again when seats come back), and update the admission counters, the
/// observed rate and the turns running.
pub(super) async fn step(
    conn: &mut Conn,
    rules: &Rules,
    room: &QueueRoomRow,
    now: NaiveDateTime,
    trigger: Trigger,
    line: Line<'_>,
) -> Result<Stepped> {
    let concert_id = &room.concert_id;
    let controls = super::controls::effective(room, rules);
    let pace = Pace::new(controls.admit_per_sec);
    let clock = pace.clock(room.admit_clock, now);
    let budget = pace.budget(clock, now);
    let limit = i64::from(controls.active_limit);
    // No turn can have lapsed before the earliest deadline the room knows (a step only adds
    // later ones; turns that ended only move the true earliest later): an entry's step then
    // keeps the turns as the room knows them, two statements fewer in the batch that holds the
    // room, unless they could keep someone out.
    let known = trigger == Trigger::Entry
        && room.turns.first_deadline.is_some_and(|first| first > now)
        && i64::from(room.turns.active_count).saturating_add(budget) < limit;
    let (expired, turns) = if known {
        (0, room.turns.clone())
    } else {
        let expired = queue_tickets::expire_lapsed(conn, concert_id, now).await?;
        let recount = trigger == Trigger::Ticker;
        let turns = running_turns(conn, room, expired, limit, budget, recount).await?;
        (expired, turns)
    };
    let mut slots = budget.min(limit - i64::from(turns.active_count)).max(0);
    if controls.paused {
        slots = 0;
    }
    // Seats are looked at only when someone could be let in, or to reopen a closed room.
    let someone_waits = room.admitted_seq < room.issued;
    let mut sold_out = room.sold_out;
    let mut no_free_seat = false;
    if (slots > 0 && someone_waits) || room.sold_out {
        let seats = seats::availability(conn, concert_id).await?;
        // Closed only once every seat is sold (not when a concert's dates have all passed).
        sold_out = !seats.free && !seats.held && seats.sold;
        if !seats.free {
            // Nothing to take now: nobody is let in to find every seat gone.
            no_free_seat = true;
            slots = 0;
        }
    }

    let stale_before = now - chrono_duration(rules.queue_abandon_after);
    let mut cursor = room.admitted_seq;
    let mut admitted: Vec<TicketId> = Vec::new();
    let mut abandoned: Vec<TicketId> = Vec::new();
    let mut stopped_at_someone = false;
    'walk: for round in 0..WALK_BATCHES {
        if cursor >= room.issued {
            break;
        }
        let batch = match line {
            Line::Fresh(rows) if round == 0 => rows
                .iter()
                .map(|row| (row.id.clone(), row.seq, row.status, row.last_seen_at))
                .collect(),
            Line::Fresh(_) => break,
            Line::Stored => {
                queue_tickets::lock_next_in_line(conn, concert_id, cursor, WALK_BATCH).await?
            }
        };
        if batch.is_empty() {
            break;
        }
        for (id, seq, status, last_seen_at) in batch {
            if status != TicketStatus::Waiting {
                cursor = seq;
            } else if last_seen_at < stale_before {
                abandoned.push(id);
                cursor = seq;
            } else if (admitted.len() as i64) < slots {
                admitted.push(id);
                cursor = seq;
            } else {
                stopped_at_someone = true;
                break 'walk;
            }
        }
    }

    let expires_at = now + chrono_duration(rules.queue_active_ttl);
    if !admitted.is_empty() {
        queue_tickets::activate(conn, &admitted, now, expires_at).await?;
    }
    if !abandoned.is_empty() {
        queue_tickets::set_status(conn, &abandoned, TicketStatus::Abandoned, now).await?;
    }
    let admitted_total = room.admitted_total + admitted.len() as i64;
    // The rate is observed only while people are left waiting and could be let in (not
    // paused, a seat free): then admissions show how fast turns end, not how fast people
    // arrive or how long a pause lasts.
    let constrained = stopped_at_someone && !controls.paused && !no_free_seat;
    let rate = observe_rate(room, constrained, admitted_total, now);
    let step = queue_rooms::Step {
        issued: room.issued,
        admitted_seq: cursor,
        admit_clock: pace.after(clock, admitted.len()),
        // Only a ticker round claims the tick: an inline step after enterQueue must not make
        // the next round skip.
        last_tick_at: match trigger {
            Trigger::Ticker => Some(now),
            Trigger::Entry => room.last_tick_at,
        },
        sold_out,
        admitted_total,
        abandoned_total: room.abandoned_total + abandoned.len() as i64,
        rate_sample_at: rate.sample_at,
        rate_sample_total: rate.sample_total,
        rate_prior: rate.prior,
        observed_rate: rate.observed,
        turns: turns.after_admitting(admitted.len(), expires_at),
    };
    queue_rooms::record_step(conn, concert_id, &step).await?;
    Ok(Stepped {
        report: AdmissionReport {
            admitted: admitted.len(),
            abandoned: abandoned.len(),
            expired,
            skipped: false,
        },
        room: RoomGauge {
            admitted_seq: step.admitted_seq,
            sold_out: step.sold_out,
            paused: room.paused,
            admit_per_sec: room.admit_per_sec,
            active_limit: room.active_limit,
            observed_rate: step.observed_rate,
            turns: step.turns,
        },
        admitted,
        expires_at,
    })
}

/// The turns running before a step admits anyone. Their deadlines are two index lookups. Their
/// number, at an entry's step, is the room's running count (kept by every step: only a step
/// makes a ticket ACTIVE, so the count of the last step, less the turns this one expired, is
/// never below the truth), counted again only when it could keep someone out (it and the places
/// the pace allows reach the limit); a ticker's step (`recount`, once a tick) always counts, so
/// a count made wrong outside admission (SQL by hand) heals within a tick. Counting every ACTIVE ticket at every entry batch would cost one index entry per
/// running turn each time: with thousands admitted at once, more than the rest of the batch.
async fn running_turns(
    conn: &mut Conn,
    room: &QueueRoomRow,
    expired: usize,
    limit: i64,
    wanted: i64,
    recount: bool,
) -> Result<TurnsRow> {
    let (first_deadline, last_deadline) = queue_tickets::deadlines(conn, &room.concert_id).await?;
    if first_deadline.is_none() {
        return Ok(TurnsRow::default());
    }
    let bound = (i64::from(room.turns.active_count) - expired as i64).max(0);
    let active_count = if recount || bound.saturating_add(wanted) >= limit {
        queue_tickets::count_active(conn, &room.concert_id).await?
    } else {
        bound
    };
    Ok(TurnsRow {
        active_count: i32::try_from(active_count).unwrap_or(i32::MAX),
        first_deadline,
        last_deadline,
    })
}

/// A sample window of the admission rate counts once it is this long, and lasts at most
/// `RATE_WINDOW` (then the next one starts from its estimate).
const RATE_MIN_SAMPLE: TimeDelta = TimeDelta::seconds(3);
const RATE_WINDOW: TimeDelta = TimeDelta::seconds(60);

/// The observed admission rate after a step, and the sample window it is counting.
#[derive(Debug, Clone, PartialEq)]
struct RateSample {
    sample_at: Option<NaiveDateTime>,
    sample_total: i64,
    prior: Option<f64>,
    observed: Option<f64>,
}

/// Folds a step into the observed rate.
///
/// A window opens with the first constrained step (people left waiting, room open), after that
/// step's admissions, so the first rush into an empty room is not counted. While it stays
/// constrained the window's rate is admissions since it opened over its length, and the
/// estimate moves from the estimate it opened with (the prior) towards it as the window grows,
/// all the way at `RATE_WINDOW`, when the next window opens. The first window has no prior: its
/// rate is the estimate. An unconstrained step (nobody left waiting, paused, sold out) closes
/// the window and keeps the estimate: admissions then say how fast people come, not how fast
/// the room can go.
fn observe_rate(
    room: &QueueRoomRow,
    constrained: bool,
    admitted_total: i64,
    now: NaiveDateTime,
) -> RateSample {
    let closed = RateSample {
        sample_at: None,
        sample_total: admitted_total,
        prior: room.observed_rate,
        observed: room.observed_rate,
    };
    if !constrained {
        return closed;
    }
    let Some(opened) = room.rate_sample_at else {
        return RateSample {
            sample_at: Some(now),
            ..closed
        };
    };
    let elapsed = now - opened;
    let mut sample = RateSample {
        sample_at: Some(opened),
        sample_total: room.rate_sample_total,
        prior: room.rate_prior,
        observed: room.observed_rate,
    };
    if elapsed < RATE_MIN_SAMPLE {
        return sample;
    }
    let secs = elapsed.num_milliseconds() as f64 / 1000.0;
    let rate = (admitted_total - room.rate_sample_total).max(0) as f64 / secs;
    let observed = match room.rate_prior {
        None => rate,
        Some(prior) => {
            let weight = (secs / RATE_WINDOW.num_seconds() as f64).min(1.0);
            prior + weight * (rate - prior)
        }
    };
    sample.observed = Some(observed);
    if elapsed >= RATE_WINDOW {
        sample = RateSample {
            sample_at: Some(now),
            sample_total: admitted_total,
            prior: Some(observed),
            observed: Some(observed),
        };
    }
    sample
}

/// One ticker round: open the sales due, then an admission step for every room with someone
/// waiting.
pub async fn admission_round(services: &Services) -> Result<Vec<(ConcertId, AdmissionReport)>> {
    // Sales whose opening time came are drawn first, so their line is admitted this round.
    if let Err(err) = super::sale::draw_due(services).await {
        tracing::warn!(error = ?err, "checking for sales to open failed");
    }
    let rooms = with_conn!(services.db, async |conn: &mut Conn| {
        Ok(queue_rooms::with_waiting(conn).await?)
    })
    .await?;
    let mut reports = Vec::with_capacity(rooms.len());
    for concert_id in rooms {
        // One room's failure must not stall admission in the others.
        match advance(services, &concert_id, Trigger::Ticker).await {
            Ok(report) => reports.push((concert_id, report)),
            Err(err) => tracing::warn!(error = ?err, %concert_id, "admission step failed"),
        }
    }
    Ok(reports)
}

/// The admission rate as a GCRA: `clock` is the time up to which admissions have been "spent".
struct Pace {
    interval: TimeDelta,
    burst: TimeDelta,
}

impl Pace {
    fn new(per_sec: u32) -> Self {
        let per_sec = i64::from(per_sec.max(1));
        Self {
            interval: TimeDelta::microseconds(1_000_000 / per_sec),
            burst: TimeDelta::seconds(1),
        }
    }

    /// The clock to use now: unused capacity older than one second is forgotten.
    fn clock(&self, stored: Option<NaiveDateTime>, now: NaiveDateTime) -> NaiveDateTime {
        let floor = now - self.burst;
        stored.map_or(floor, |c| c.max(floor))
    }

    /// Admissions allowed now.
    fn budget(&self, clock: NaiveDateTime, now: NaiveDateTime) -> i64 {
        let spare = (now - clock).num_microseconds().unwrap_or(0).max(0);
        spare / self.interval.num_microseconds().unwrap_or(1).max(1)
    }

    fn after(&self, clock: NaiveDateTime, admitted: usize) -> NaiveDateTime {
        clock + self.interval * i32::try_from(admitted).unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(secs: i64, micros: i64) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 1)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|t| t + TimeDelta::seconds(secs) + TimeDelta::microseconds(micros))
            .expect("valid time")
    }

    fn room() -> QueueRoomRow {
        QueueRoomRow {
            concert_id: ConcertId::new(),
            issued: 0,
            admitted_seq: 0,
            admit_clock: None,
            last_tick_at: None,
            pow_difficulty: None,
            paused: false,
            admit_per_sec: None,
            active_limit: None,
            sold_out: false,
            admitted_total: 0,
            abandoned_total: 0,
            rate_sample_at: None,
            rate_sample_total: 0,
            rate_prior: None,
            observed_rate: None,
            turns: Default::default(),
        }
    }

    #[test]
    fn the_observed_rate_skips_the_first_rush_and_follows_turnover() {
        let mut r = room();
        let apply = |r: &mut QueueRoomRow, s: RateSample| {
            r.rate_sample_at = s.sample_at;
            r.rate_sample_total = s.sample_total;
            r.rate_prior = s.prior;
            r.observed_rate = s.observed;
        };
        // The first constrained step admitted 5 at once (the room was empty): the window opens
        // after them.
        let s = observe_rate(&r, true, 5, at(0, 0));
        assert_eq!(
            (s.sample_at, s.sample_total, s.observed),
            (Some(at(0, 0)), 5, None)
        );
        apply(&mut r, s);
        // Too short a window says nothing yet.
        let s = observe_rate(&r, true, 7, at(2, 0));
        assert_eq!(s.observed, None);
        apply(&mut r, s);
        // 2.5 a second for 8 seconds: the first window's rate is the estimate.
        let s = observe_rate(&r, true, 25, at(8, 0));
        assert_eq!(s.observed, Some(2.5));
        apply(&mut r, s);
        // A full minute at that pace rolls the window over with the same estimate.
        let s = observe_rate(&r, true, 5 + 150, at(60, 0));
        assert_eq!(
            (s.sample_at, s.prior, s.observed),
            (Some(at(60, 0)), Some(2.5), Some(2.5))
        );
        apply(&mut r, s);
        // Then 1 a second: after 30 s the estimate is half way there.
        let s = observe_rate(&r, true, 155 + 30, at(90, 0));
        assert_eq!(s.observed, Some(1.75));
        apply(&mut r, s);
        // Nobody left waiting: the window closes, the estimate stays.
        let idle = observe_rate(&r, false, 185, at(91, 0));
        assert_eq!((idle.sample_at, idle.observed), (None, Some(1.75)));
    }

    #[test]
    fn a_new_room_may_admit_one_second_of_rate() {
        let pace = Pace::new(10);
        let now = at(0, 0);
        let clock = pace.clock(None, now);
        assert_eq!(pace.budget(clock, now), 10);
    }

    #[test]
    fn admissions_spend_the_budget_and_it_refills_with_time() {
        let pace = Pace::new(10);
        let now = at(0, 0);
        let clock = pace.after(pace.clock(None, now), 10);
        assert_eq!(pace.budget(clock, now), 0);
        assert_eq!(
            pace.budget(pace.clock(Some(clock), at(0, 250_000)), at(0, 250_000)),
            2
        );
        // Capacity unused for longer than a second is not banked.
        assert_eq!(
            pace.budget(pace.clock(Some(clock), at(60, 0)), at(60, 0)),
            10
        );
    }

    #[test]
    fn over_any_long_window_admissions_stay_within_rate_plus_one_burst() {
        let pace = Pace::new(7);
        let mut clock = None;
        let mut total = 0;
        // 200 ticks of 100 ms, each admitting everything it may.
        for tick in 0..200 {
            let now = at(0, tick * 100_000);
            let c = pace.clock(clock, now);
            let n = pace.budget(c, now);
            total += n;
            clock = Some(pace.after(c, n as usize));
        }
        // 20 seconds at 7/s, plus the initial one-second burst.
        assert!(total <= 7 * 20 + 7, "admitted {total}");
        assert!(total >= 7 * 19, "admitted only {total}");
    }
}
