//! The virtual waiting room, by job:
//! - `tickets`: a fan's ticket: entering, polling, presence, the token;
//! - [`entry`]: the front door, writing the entries that arrive together in one transaction;
//! - `gate`: the turn check that the seat map, holds and payment go through;
//! - `admission`: the step that lets people in, at a rate and within a limit;
//! - [`challenge`]: the proof of work a room may ask of entrants.
//!
//! Each concert has one room (`queue_rooms`) with two counters: `issued`, the last sequence number
//! handed out, and `admitted_seq`, how far admission has walked. A waiting ticket's position is
//! `seq - admitted_seq - 1`: one row read, no scan, and it can only fall because `admitted_seq`
//! only grows. This module turns a stored ticket and its room's gauge into what its holder sees
//! (`view`), with a wait estimated from the admission rate the room actually achieved.

mod admission;
pub mod challenge;
pub mod controls;
pub mod entry;
mod gate;
mod room;
pub mod sale;
pub mod stats;
mod tickets;

use chrono::NaiveDateTime;

use super::time::utc;
use crate::db::ids::{ConcertId, QueueToken, TicketId, UserId};
use crate::db::models::QueueTicketRow;
use crate::domain::rules::Rules;

pub use admission::{AdmissionReport, Trigger, admission_round, advance};
pub use entry::EntryDesk;
pub use gate::require_active;
pub(crate) use gate::{check_admitted, complete, lock_active};
pub(crate) use tickets::{check_owner, find_by_token, read_for_holder};
pub use tickets::{check_token, enter, forget_spent_challenges, issue_challenge};

pub use crate::db::models::RoomGaugeRow as RoomGauge;
pub use crate::db::states::TicketStatus;

/// A ticket's status as its holder sees it: an ACTIVE ticket past its deadline and an
/// ABANDONED one both read EXPIRED; a waiting ticket in a room whose every seat is sold reads
/// SOLD_OUT (and WAITING again, in its place, if seats come back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueStatus {
    /// In a scheduled sale's pre-queue: no place until the draw at opening.
    Prequeued,
    Waiting,
    Active,
    Expired,
    Completed,
    SoldOut,
}

#[derive(Debug, Clone)]
pub struct QueueTicket {
    /// The ticket's public id (the draw orders the pre-queue by it; the token stays secret).
    pub id: TicketId,
    pub token: QueueToken,
    pub concert_id: ConcertId,
    pub user_id: UserId,
    pub status: QueueStatus,
    /// People ahead; 0 unless waiting (or sold out while waiting).
    pub position: i64,
    pub estimated_wait_seconds: i64,
    /// The admission rate the estimate assumes, per second.
    pub admission_rate: f64,
    /// The room admits nobody for now (an operator paused it).
    pub paused: bool,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub(crate) fn view(
    row: &QueueTicketRow,
    room: &RoomGauge,
    now: NaiveDateTime,
    rules: &Rules,
) -> QueueTicket {
    let status = match row.status {
        TicketStatus::Prequeued => QueueStatus::Prequeued,
        TicketStatus::Waiting if room.sold_out => QueueStatus::SoldOut,
        TicketStatus::Waiting => QueueStatus::Waiting,
        TicketStatus::Active if row.expires_at.is_some_and(|at| at > now) => QueueStatus::Active,
        TicketStatus::Active | TicketStatus::Expired | TicketStatus::Abandoned => {
            QueueStatus::Expired
        }
        TicketStatus::Completed => QueueStatus::Completed,
    };
    let in_line = matches!(status, QueueStatus::Waiting | QueueStatus::SoldOut);
    let position = if in_line {
        (row.seq - room.admitted_seq - 1).max(0)
    } else {
        0
    };
    let rate = admission_rate(room, rules);
    let estimated_wait_seconds = if status == QueueStatus::Waiting {
        estimated_wait(position, rate, rules.queue_tick)
    } else {
        0
    };
    QueueTicket {
        id: row.id.clone(),
        token: row.token.clone(),
        concert_id: row.concert_id.clone(),
        user_id: row.user_id.clone(),
        status,
        position,
        estimated_wait_seconds,
        admission_rate: rate,
        paused: room.paused,
        expires_at: match status {
            QueueStatus::Active => row.expires_at.map(utc),
            _ => None,
        },
    }
}

/// The admission rate a wait is estimated from: the rate observed while people were waiting
/// (it shows the active limit binding: turns end only so fast), never above the rate set and
/// never below the slowest the room can go (every turn ends within `QUEUE_ACTIVE_TTL`, so the
/// active limit frees at least that many places per turn length).
pub fn admission_rate(room: &RoomGauge, rules: &Rules) -> f64 {
    let set = f64::from(
        room.admit_per_sec
            .unwrap_or(rules.queue_admit_per_sec)
            .max(1),
    );
    let limit = f64::from(room.active_limit.unwrap_or(rules.queue_active_limit).max(1));
    let floor = (limit / rules.queue_active_ttl.as_secs_f64().max(1.0)).min(set);
    match room.observed_rate {
        Some(seen) if seen.is_finite() => seen.clamp(floor, set),
        _ => set,
    }
}

/// Seconds until a ticket with `position` people ahead is admitted at `per_sec`, at least one
/// tick (admission happens on ticks).
fn estimated_wait(position: i64, per_sec: f64, tick: std::time::Duration) -> i64 {
    let seconds = ((position + 1) as f64 / per_sec.max(f64::MIN_POSITIVE)).ceil();
    (seconds.min(i64::MAX as f64) as i64).max(tick.as_secs().max(1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn waiting_position_is_people_ahead_and_wait_follows_the_rate() {
        let rules = Rules {
            queue_admit_per_sec: 10,
            ..Rules::default()
        };
        let now = NaiveDate::from_ymd_opt(2026, 12, 1)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .expect("valid time");
        let row = QueueTicketRow {
            id: crate::db::ids::TicketId::new(),
            token: QueueToken::new(),
            user_id: UserId::new(),
            concert_id: ConcertId::new(),
            seq: 42,
            status: TicketStatus::Waiting,
            last_seen_at: now,
            activated_at: None,
            expires_at: None,
            created_at: now,
            updated_at: now,
        };
        let room = |admitted_seq| RoomGauge {
            admitted_seq,
            ..RoomGauge::default()
        };
        let ticket = view(&row, &room(20), now, &rules);
        assert_eq!(ticket.status, QueueStatus::Waiting);
        assert_eq!(ticket.position, 21);
        assert_eq!(ticket.estimated_wait_seconds, 3);
        assert_eq!(ticket.expires_at, None);

        // With the active limit binding, the rate observed (2 a second) makes the estimate.
        let slow = RoomGauge {
            observed_rate: Some(2.0),
            ..room(20)
        };
        assert_eq!(view(&row, &slow, now, &rules).estimated_wait_seconds, 11);
        // A room where no turn ended lately is not stalled forever: every turn ends within the
        // turn length, so the estimate never assumes fewer than limit / length admissions.
        let stalled = RoomGauge {
            observed_rate: Some(0.0),
            ..room(20)
        };
        let floor = f64::from(rules.queue_active_limit) / rules.queue_active_ttl.as_secs_f64();
        assert_eq!(admission_rate(&stalled, &rules), floor);
        let sold_out = RoomGauge {
            sold_out: true,
            ..room(20)
        };
        let t = view(&row, &sold_out, now, &rules);
        assert_eq!((t.status, t.position), (QueueStatus::SoldOut, 21));

        let lapsed = QueueTicketRow {
            status: TicketStatus::Active,
            expires_at: Some(now),
            ..row.clone()
        };
        assert_eq!(
            view(&lapsed, &room(42), now, &rules).status,
            QueueStatus::Expired
        );
        let abandoned = QueueTicketRow {
            status: TicketStatus::Abandoned,
            ..row
        };
        let t = view(&abandoned, &room(42), now, &rules);
        assert_eq!((t.status, t.position), (QueueStatus::Expired, 0));
    }
}
