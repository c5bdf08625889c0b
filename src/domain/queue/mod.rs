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
//! only grows. This module turns a stored ticket into what its holder sees (`view`).

mod admission;
pub mod challenge;
pub mod entry;
mod gate;
mod tickets;

use chrono::NaiveDateTime;

use super::utc;
use crate::db::ids::{ConcertId, QueueToken, UserId};
use crate::db::models::QueueTicketRow;
use crate::domain::rules::Rules;

pub use admission::{AdmissionReport, Trigger, admission_round, advance};
pub use entry::EntryDesk;
pub use gate::require_active;
pub(crate) use gate::{check_admitted, complete, lock_active};
pub(crate) use tickets::{check_owner, find_by_token, read_for_holder};
pub use tickets::{check_token, enter};

pub use crate::db::states::TicketStatus;

/// A ticket's status as its holder sees it: an ACTIVE ticket past its deadline and an
/// ABANDONED one both read EXPIRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueStatus {
    Waiting,
    Active,
    Expired,
    Completed,
}

#[derive(Debug, Clone)]
pub struct QueueTicket {
    pub token: QueueToken,
    pub concert_id: ConcertId,
    pub user_id: UserId,
    pub status: QueueStatus,
    /// People ahead; 0 unless waiting.
    pub position: i64,
    pub estimated_wait_seconds: i64,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub(crate) fn view(
    row: &QueueTicketRow,
    admitted_seq: i64,
    now: NaiveDateTime,
    rules: &Rules,
) -> QueueTicket {
    let status = match row.status {
        TicketStatus::Waiting => QueueStatus::Waiting,
        TicketStatus::Active if row.expires_at.is_some_and(|at| at > now) => QueueStatus::Active,
        TicketStatus::Active | TicketStatus::Expired | TicketStatus::Abandoned => {
            QueueStatus::Expired
        }
        TicketStatus::Completed => QueueStatus::Completed,
    };
    let position = if status == QueueStatus::Waiting {
        (row.seq - admitted_seq - 1).max(0)
    } else {
        0
    };
    let estimated_wait_seconds = if status == QueueStatus::Waiting {
        estimated_wait(position, rules.queue_admit_per_sec, rules.queue_tick)
    } else {
        0
    };
    QueueTicket {
        token: row.token.clone(),
        concert_id: row.concert_id.clone(),
        user_id: row.user_id.clone(),
        status,
        position,
        estimated_wait_seconds,
        expires_at: match status {
            QueueStatus::Active => row.expires_at.map(utc),
            _ => None,
        },
    }
}

/// Seconds until a ticket with `position` people ahead is admitted at `per_sec`, rounded up to
/// whole ticks (admission happens on ticks).
fn estimated_wait(position: i64, per_sec: u32, tick: std::time::Duration) -> i64 {
    let per_sec = i64::from(per_sec.max(1));
    let seconds = (position + 1 + per_sec - 1) / per_sec;
    seconds.max(tick.as_secs().max(1) as i64)
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
        let ticket = view(&row, 20, now, &rules);
        assert_eq!(ticket.status, QueueStatus::Waiting);
        assert_eq!(ticket.position, 21);
        assert_eq!(ticket.estimated_wait_seconds, 3);
        assert_eq!(ticket.expires_at, None);

        let lapsed = QueueTicketRow {
            status: TicketStatus::Active,
            expires_at: Some(now),
            ..row.clone()
        };
        assert_eq!(view(&lapsed, 42, now, &rules).status, QueueStatus::Expired);
        let abandoned = QueueTicketRow {
            status: TicketStatus::Abandoned,
            ..row
        };
        let t = view(&abandoned, 42, now, &rules);
        assert_eq!((t.status, t.position), (QueueStatus::Expired, 0));
    }
}
