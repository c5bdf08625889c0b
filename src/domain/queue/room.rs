//! A concert's waiting room, as one row: the lock that every change to the room takes (entries,
//! the draw, controls, admission), making the room for a concert that has none yet, read with
//! its sale and the database clock; and the sale's front door, what an entry arriving now meets.
//! Entry, sale, controls and admission all import it; it imports none of them.

use chrono::NaiveDateTime;

use super::super::catalog::ensure_concert;
use super::super::error::{Error, Result};
use super::super::time::utc;
use crate::db::ids::ConcertId;
use crate::db::models::{QueueRoomRow, SaleRow};
use crate::db::{Conn, queue_rooms};

/// Locks the concert's room (making it for a concert that has none yet) with its sale, and reads
/// the clock: one statement when the room exists.
pub(super) async fn lock_room_with_sale(
    conn: &mut Conn,
    concert: &ConcertId,
) -> Result<(QueueRoomRow, Option<SaleRow>, NaiveDateTime)> {
    if let Some(locked) = queue_rooms::lock_with_sale_at_now(conn, concert).await? {
        return Ok(locked);
    }
    lock_room(conn, concert).await?;
    queue_rooms::lock_with_sale_at_now(conn, concert)
        .await?
        .ok_or_else(|| Error::corrupt("room vanished"))
}

/// Locks the concert's room (making it for a concert that has none yet) and reads the clock.
pub(super) async fn lock_room(
    conn: &mut Conn,
    concert: &ConcertId,
) -> Result<(QueueRoomRow, NaiveDateTime)> {
    if let Some(locked) = queue_rooms::lock_at_now(conn, concert).await? {
        return Ok(locked);
    }
    ensure_concert(conn, concert).await?;
    // Creating a room locks it; a concurrent creator waits, then finds it.
    queue_rooms::insert_if_missing(conn, concert).await?;
    queue_rooms::lock_at_now(conn, concert)
        .await?
        .ok_or_else(|| Error::corrupt("room vanished"))
}

/// What the front door does with a new entry, by the sale's state at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Door {
    /// No sale set up, or drawn: join the line.
    Open,
    /// Join the pre-queue; `prequeued` entered before.
    Prequeue { prequeued: i64 },
    /// Not yet: refused with the opening times (none: not scheduled).
    Closed {
        opens_at: Option<NaiveDateTime>,
        sale_opens_at: Option<NaiveDateTime>,
    },
}

impl Door {
    pub(crate) fn of(sale: Option<&SaleRow>, now: NaiveDateTime) -> Self {
        let Some(sale) = sale else {
            return Self::Open;
        };
        if sale.drawn_at.is_some() {
            return Self::Open;
        }
        let Some(sale_opens_at) = sale.opens_at else {
            return Self::Closed {
                opens_at: None,
                sale_opens_at: None,
            };
        };
        let door_opens = sale.prequeue_opens_at.unwrap_or(sale_opens_at);
        if now < door_opens {
            Self::Closed {
                opens_at: Some(door_opens),
                sale_opens_at: Some(sale_opens_at),
            }
        } else {
            // Opening time may have come with the draw still due (within a tick): whoever comes
            // before the draw is in it.
            Self::Prequeue {
                prequeued: sale.prequeued,
            }
        }
    }

    pub(crate) fn refusal(&self) -> Option<Error> {
        match self {
            Self::Closed {
                opens_at,
                sale_opens_at,
            } => Some(Error::SaleNotOpen {
                opens_at: opens_at.map(utc),
                sale_opens_at: sale_opens_at.map(utc),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::db::ids::UserId;

    #[test]
    fn the_door_follows_the_schedule() {
        let t = |s: i64| {
            chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
                .and_then(|d| d.and_hms_opt(12, 0, 0))
                .map(|x| x + TimeDelta::seconds(s))
                .expect("time")
        };
        let sale = SaleRow {
            concert_id: ConcertId::new(),
            prequeue_opens_at: Some(t(10)),
            opens_at: Some(t(20)),
            seed: "00".repeat(32),
            seed_commitment: String::new(),
            prequeued: 3,
            drawn_at: None,
            scheduled_by: UserId::new(),
            scheduled_at: t(0),
        };
        assert!(matches!(Door::of(Some(&sale), t(5)), Door::Closed { .. }));
        assert_eq!(
            Door::of(Some(&sale), t(10)),
            Door::Prequeue { prequeued: 3 }
        );
        assert_eq!(
            Door::of(Some(&sale), t(25)),
            Door::Prequeue { prequeued: 3 }
        );
        let drawn = SaleRow {
            drawn_at: Some(t(20)),
            ..sale
        };
        assert_eq!(Door::of(Some(&drawn), t(25)), Door::Open);
        assert_eq!(Door::of(None, t(0)), Door::Open);
        let unscheduled = SaleRow {
            opens_at: None,
            prequeue_opens_at: None,
            drawn_at: None,
            ..drawn
        };
        assert_eq!(
            Door::of(Some(&unscheduled), t(25)),
            Door::Closed {
                opens_at: None,
                sale_opens_at: None
            }
        );
    }
}
