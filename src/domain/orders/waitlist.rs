//! The waitlist of a sold-out date: joining, leaving, reading one's place (`offers` makes the
//! offers). A signed-in fan joins for a number of seats (no queue turn
//! needed); the entry is durable, so no presence is asked and a restart loses nothing.
//!
//! While any entry of a date waits, seats of that date that free up (a hold lapsing, a release,
//! a refund, an offer declined or lapsed) are not on sale: they go to the waitlist in join
//! order. An offer round takes the entries in order and gives the first one whose count the
//! free seats can fill an order of the lowest free seats, HELD until `WAITLIST_OFFER_TTL` from
//! now (skipping entries whose fan is at their fair share); paying it (`payOrder`, no queue
//! turn needed) accepts the offer, releasing it declines. Rounds run right after a change that
//! frees seats and on the hold sweeper's beat (which catches lapses), so every freed seat is
//! offered once, in join order, by one round at a time (the date's row serialises them).
//!
//! Position is O(1): each date counts entries issued and how far the line has been served in
//! order; a waiting entry's position is `seq - served - 1`, which never grows.
//!
//! Lock order, as everywhere: users (by id), then the date's row, then seats (by number), then
//! orders and entries. Taking seats reads the date's row under a shared lock, so a join (which
//! locks it exclusively) and a hold never cross.

use chrono::{DateTime, NaiveDate, Utc};

use super::take::{self, MAX_SEATS_PER_ORDER};
use crate::db::ids::{ConcertId, OrderId, UserId, WaitlistEntryId};
use crate::db::models::WaitlistEntryRow;
use crate::db::states::WaitlistStatus;
use crate::db::waitlist::RowLock;
use crate::db::{self, Conn, seats, waitlist};
use crate::domain::accounts::{lock_user, lock_user_at_now};
use crate::domain::error::{Error, Result};
use crate::domain::services::Services;
use crate::domain::time::utc;

/// A fan's place on a date's waitlist.
#[derive(Debug, Clone)]
pub struct WaitlistEntry {
    pub id: WaitlistEntryId,
    pub user_id: UserId,
    pub concert_id: ConcertId,
    pub date: NaiveDate,
    pub count: u16,
    pub status: WaitlistStatus,
    /// At most this many entries ahead (WAITING only; 0 when next): never grows.
    pub position: Option<i64>,
    /// The order offered (OFFERED, ACCEPTED; kept after it lapsed or was declined).
    pub offer: Option<OrderId>,
    pub offer_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Joins the date's waitlist for `count` seats, or returns the fan's live entry for it.
pub async fn join(
    services: &Services,
    user_id: &UserId,
    concert_id: &ConcertId,
    date: NaiveDate,
    count: i32,
) -> Result<WaitlistEntry> {
    let count = u16::try_from(count)
        .ok()
        .filter(|n| (1..=MAX_SEATS_PER_ORDER as u16).contains(n))
        .ok_or_else(|| {
            Error::bad_input(format!(
                "count must be 1 to {MAX_SEATS_PER_ORDER}, got {count}"
            ))
        })?;
    let rules = &services.rules;
    transaction!(services.db, async |conn: &mut Conn| {
        let terms = take::terms(conn, concert_id, date).await?;
        let now = lock_user_at_now(conn, user_id).await?;
        if let Some((row, status)) = waitlist::live_of(conn, user_id, concert_id, date).await? {
            let counters = waitlist::counters(conn, concert_id, date).await?;
            return Ok(entry_from(row, status, counters.served));
        }
        take::check_share(
            conn,
            rules,
            &terms,
            user_id,
            concert_id,
            date,
            usize::from(count),
            now,
        )
        .await?;
        if date < now.date() {
            return Err(Error::bad_input("this date has passed"));
        }
        let mut counters = waitlist::locked_counters(conn, concert_id, date, RowLock::Exclusive)
            .await?
            .ok_or(Error::NotFound("concert date"))?;
        // Sold out means every seat sold: while seats are free or held, the queue serves them
        // (a waitlist then would jump the line for seats that lapse).
        if counters.waiting == 0
            && (!seats::free_numbers(conn, concert_id, date, None)
                .await?
                .is_empty()
                || seats::has_live_hold(conn, concert_id, date).await?)
        {
            return Err(Error::SeatsAvailable);
        }
        counters.issued += 1;
        counters.waiting += 1;
        let row = WaitlistEntryRow {
            id: WaitlistEntryId::new(),
            concert_id: concert_id.clone(),
            date,
            user_id: user_id.clone(),
            seq: counters.issued,
            seat_count: i16::try_from(count).unwrap_or(i16::MAX),
            status: WaitlistStatus::Waiting,
            order_id: None,
            offer_expires_at: None,
            created_at: now,
            updated_at: now,
        };
        waitlist::insert(conn, &row).await?;
        waitlist::set_counters(conn, concert_id, date, counters).await?;
        metrics::counter!("waitlist_joins_total").increment(1);
        Ok(entry_from(row, WaitlistStatus::Waiting, counters.served))
    })
    .await
}

/// Leaves the waitlist; leaving with an offer declines it (its seats pass on). Decided under
/// the entry's lock, so a leave that meets an offer made a moment before declines it.
pub async fn leave(
    services: &Services,
    user_id: &UserId,
    entry_id: &WaitlistEntryId,
) -> Result<WaitlistEntry> {
    let current = entry(services, user_id, entry_id).await?;
    let outcome = transaction!(services.db, async |conn: &mut Conn| {
        lock_user(conn, user_id).await?;
        let mut counters =
            waitlist::locked_counters(conn, &current.concert_id, current.date, RowLock::Exclusive)
                .await?
                .ok_or(Error::NotFound("concert date"))?;
        let locked = waitlist::lock(conn, entry_id)
            .await?
            .ok_or(Error::NotFound("waitlist entry"))?;
        let now = db::now(conn).await?;
        match locked.status {
            WaitlistStatus::Waiting => {
                waitlist::set_status(conn, entry_id, WaitlistStatus::Left, now).await?;
                counters.waiting -= 1;
                counters.served =
                    super::offers::served_through(conn, &locked, counters.issued).await?;
                waitlist::set_counters(conn, &current.concert_id, current.date, counters).await?;
                Ok(Leaving::Line)
            }
            WaitlistStatus::Offered if locked.offer_expires_at.is_some_and(|at| at > now) => {
                Ok(Leaving::Offer(locked.order_id.clone()))
            }
            _ => Ok(Leaving::Nothing),
        }
    })
    .await?;
    match outcome {
        Leaving::Line => {
            // Committed: leaving may empty the line, and freed seats then go back on sale. A
            // failure of that round is logged; the hold sweeper's next beat runs it again.
            if let Err(err) =
                super::offers::offer_freed(services, &current.concert_id, current.date).await
            {
                tracing::warn!(error = ?err, "waitlist round after a leave failed");
            }
        }
        Leaving::Offer(Some(order)) => {
            match super::release::release_order(services, user_id, &order).await {
                // Lapsed in between: it passes on by itself.
                Ok(_) | Err(Error::HoldExpired) => {}
                Err(other) => return Err(other),
            }
        }
        Leaving::Offer(None) | Leaving::Nothing => {}
    }
    entry(services, user_id, entry_id).await
}

/// What a leave found under the lock.
enum Leaving {
    Line,
    Offer(Option<OrderId>),
    Nothing,
}

/// One of the caller's entries.
pub async fn entry(
    services: &Services,
    user_id: &UserId,
    entry_id: &WaitlistEntryId,
) -> Result<WaitlistEntry> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let (row, status) = waitlist::find(conn, entry_id)
            .await?
            .filter(|(row, _)| row.user_id == *user_id)
            .ok_or(Error::NotFound("waitlist entry"))?;
        let counters = waitlist::counters(conn, &row.concert_id, row.date).await?;
        Ok(entry_from(row, status, counters.served))
    })
    .await
}

/// The caller's recent entries (at most 50), newest first.
pub async fn my_waitlist(services: &Services, user_id: &UserId) -> Result<Vec<WaitlistEntry>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let rows = waitlist::of_user(conn, user_id, 50).await?;
        let mut entries = Vec::with_capacity(rows.len());
        for (row, status) in rows {
            let served = if status == WaitlistStatus::Waiting {
                waitlist::counters(conn, &row.concert_id, row.date)
                    .await?
                    .served
            } else {
                0
            };
            entries.push(entry_from(row, status, served));
        }
        Ok(entries)
    })
    .await
}

/// An entry as the fan sees it, its position from the date's served mark.
pub fn entry_from(row: WaitlistEntryRow, status: WaitlistStatus, served: i64) -> WaitlistEntry {
    WaitlistEntry {
        position: (status == WaitlistStatus::Waiting).then(|| (row.seq - served - 1).max(0)),
        id: row.id,
        user_id: row.user_id,
        concert_id: row.concert_id,
        date: row.date,
        count: u16::try_from(row.seat_count).unwrap_or(0),
        status,
        offer: row.order_id,
        offer_expires_at: row.offer_expires_at.map(utc),
        created_at: utc(row.created_at),
    }
}
