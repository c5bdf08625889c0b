//! Admission: the step that lets people in.
//!
//! A step ([`advance`]) locks the room row, so however many instances run it, one at a time
//! acts on a room. Its pace is a GCRA on the database clock: the room's `admit_clock` moves
//! forward `1/rate` seconds per admission and may lag `now` by at most one second, so no more than
//! `rate` tickets are admitted per second (plus a one-second burst) across all instances. The
//! number of ACTIVE tickets never exceeds the limit because it is counted under the same lock.
//! Tickets whose owner stopped polling are marked ABANDONED when admission reaches them, so people
//! who left never stall the line.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::TicketStatus;
use crate::db::models::QueueRoomRow;
use crate::db::schema::{queue_rooms, queue_tickets};
use crate::db::{self, Conn};
use crate::domain::error::Result;
use crate::domain::{Services, chrono_duration};

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

/// One admission step for one room: expire lapsed ACTIVE tickets, skip abandoned ones, admit as
/// many waiting tickets as the rate and the active limit allow.
pub async fn advance(
    services: &Services,
    concert_id: &str,
    trigger: Trigger,
) -> Result<AdmissionReport> {
    let rules = &services.rules;
    let report = transaction!(services.db, async |conn: &mut Conn| {
        let Some(room) = lock_room(conn, concert_id).await? else {
            return Ok(AdmissionReport::default());
        };
        let now = db::now(conn).await?;
        let half_tick = chrono_duration(rules.queue_tick) / 2;
        if trigger == Trigger::Ticker && room.last_tick_at.is_some_and(|t| now - t < half_tick) {
            return Ok(AdmissionReport {
                skipped: true,
                ..Default::default()
            });
        }

        let expired = diesel::update(queue_tickets::table)
            .filter(queue_tickets::concert_id.eq(concert_id))
            .filter(queue_tickets::status.eq(TicketStatus::Active))
            .filter(queue_tickets::expires_at.le(now))
            .set((
                queue_tickets::status.eq(TicketStatus::Expired),
                queue_tickets::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        let active: i64 = queue_tickets::table
            .filter(queue_tickets::concert_id.eq(concert_id))
            .filter(queue_tickets::status.eq(TicketStatus::Active))
            .count()
            .get_result(conn)
            .await?;

        let pace = Pace::new(rules.queue_admit_per_sec);
        let clock = pace.clock(room.admit_clock, now);
        let slots = pace
            .budget(clock, now)
            .min(i64::from(rules.queue_active_limit) - active)
            .max(0);

        let stale_before = now - chrono_duration(rules.queue_abandon_after);
        let mut cursor = room.admitted_seq;
        let mut admitted: Vec<String> = Vec::new();
        let mut abandoned: Vec<String> = Vec::new();
        'walk: for _ in 0..WALK_BATCHES {
            if cursor >= room.issued {
                break;
            }
            let batch: Vec<(String, i64, TicketStatus, NaiveDateTime)> = queue_tickets::table
                .filter(queue_tickets::concert_id.eq(concert_id))
                .filter(queue_tickets::seq.gt(cursor))
                .order(queue_tickets::seq.asc())
                .limit(WALK_BATCH)
                .select((
                    queue_tickets::id,
                    queue_tickets::seq,
                    queue_tickets::status,
                    queue_tickets::last_seen_at,
                ))
                .for_update()
                .load(conn)
                .await?;
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
                    break 'walk;
                }
            }
        }

        if !admitted.is_empty() {
            let expires_at = now + chrono_duration(rules.queue_active_ttl);
            diesel::update(queue_tickets::table.filter(queue_tickets::id.eq_any(&admitted)))
                .set((
                    queue_tickets::status.eq(TicketStatus::Active),
                    queue_tickets::activated_at.eq(now),
                    queue_tickets::expires_at.eq(expires_at),
                    queue_tickets::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
        }
        if !abandoned.is_empty() {
            diesel::update(queue_tickets::table.filter(queue_tickets::id.eq_any(&abandoned)))
                .set((
                    queue_tickets::status.eq(TicketStatus::Abandoned),
                    queue_tickets::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
        }
        diesel::update(queue_rooms::table.find(concert_id))
            .set((
                queue_rooms::admitted_seq.eq(cursor),
                queue_rooms::admit_clock.eq(pace.after(clock, admitted.len())),
                // Only a ticker round claims the tick: an inline step after enterQueue must not
                // make the next round skip.
                queue_rooms::last_tick_at.eq(if trigger == Trigger::Ticker {
                    Some(now)
                } else {
                    room.last_tick_at
                }),
            ))
            .execute(conn)
            .await?;
        Ok(AdmissionReport {
            admitted: admitted.len(),
            abandoned: abandoned.len(),
            expired,
            skipped: false,
        })
    })
    .await?;
    metrics::counter!("queue_admitted_total").increment(report.admitted as u64);
    metrics::counter!("queue_abandoned_total").increment(report.abandoned as u64);
    Ok(report)
}

/// One ticker round: an admission step for every room with someone waiting.
pub async fn admission_round(services: &Services) -> Result<Vec<(String, AdmissionReport)>> {
    let rooms: Vec<String> = with_conn!(services.db, async |conn: &mut Conn| {
        Ok(queue_rooms::table
            .filter(queue_rooms::issued.gt(queue_rooms::admitted_seq))
            .select(queue_rooms::concert_id)
            .load(conn)
            .await?)
    })
    .await?;
    let mut reports = Vec::with_capacity(rooms.len());
    for concert_id in rooms {
        // One room's failure must not stall admission in the others.
        match advance(services, &concert_id, Trigger::Ticker).await {
            Ok(report) => reports.push((concert_id, report)),
            Err(err) => tracing::warn!(error = ?err, concert_id, "admission step failed"),
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

pub(super) async fn lock_room(conn: &mut Conn, concert_id: &str) -> Result<Option<QueueRoomRow>> {
    Ok(queue_rooms::table
        .find(concert_id)
        .select(QueueRoomRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
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
