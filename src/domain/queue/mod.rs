//! The virtual waiting room, by job:
//! - `tickets`: a fan's ticket: entering, polling, presence, the token;
//! - [`entry`]: the front door, writing the entries that arrive together in one transaction;
//! - `gate`: the turn check that the seat map, holds and payment go through;
//! - `admission`: the step that lets people in, at a rate and within a limit;
//! - [`estimate`]: when admission will reach a fan in line;
//! - [`challenge`]: the proof of work a room may ask of entrants.
//!
//! Each concert has one room (`queue_rooms`) with two counters: `issued`, the last sequence number
//! handed out, and `admitted_seq`, how far admission has walked. A waiting ticket's position is
//! `seq - admitted_seq - 1`: one row read, no scan, and it can only fall because `admitted_seq`
//! only grows. This module turns a stored ticket and its room's gauge into what its holder sees
//! (`view`), with the wait [`estimate`]d from the room's limit, its running turns and its pace.

mod admission;
pub mod challenge;
pub mod controls;
pub mod entry;
pub mod estimate;
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
pub(crate) use gate::{check_admitted, complete, lock_active, lock_turn_of_order};
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
    let outlook = estimate::Outlook::of(room, now, rules);
    let estimated_wait_seconds = if status == QueueStatus::Waiting {
        outlook.wait(position)
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
        admission_rate: outlook.rate,
        paused: room.paused,
        expires_at: match status {
            QueueStatus::Active => row.expires_at.map(utc),
            _ => None,
        },
    }
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

        // With the active limit binding (every place taken, turns ending 2 a second), the next
        // places free up as the running turns end: not at the pace set.
        let deadline = |secs| Some(now + chrono::TimeDelta::seconds(secs));
        let slow = RoomGauge {
            observed_rate: Some(2.0),
            turns: crate::db::models::TurnsRow {
                active_count: 100,
                first_deadline: deadline(550),
                last_deadline: deadline(600),
            },
            ..room(20)
        };
        let ticket = view(&row, &slow, now, &rules);
        assert_eq!(ticket.estimated_wait_seconds, 11);
        assert_eq!(ticket.admission_rate, 2.0);
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
