//! The waitlist of a sold-out date. A signed-in fan joins for a number of seats (no queue turn
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

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::take::{self, MAX_SEATS_PER_ORDER, NewOrder};
use super::{Order, OrderSource};
use crate::db::ids::{ConcertId, OrderId, ReservationId, SeatNumber, UserId, WaitlistEntryId};
use crate::db::models::WaitlistEntryRow;
use crate::db::states::{SeatStatus, WaitlistStatus};
use crate::db::{self, Conn, seats, waitlist};
use crate::domain::accounts::{lock_user, lock_user_at_now};
use crate::domain::error::{Error, Result};
use crate::domain::services::Services;
use crate::domain::time::{chrono_duration, utc};

/// Entries one offer round considers: the head of the line.
const ROUND_ENTRIES: i64 = 200;

/// A fan's place on a date's waitlist.
#[derive(Debug, Clone)]
pub struct WaitlistEntry {
    pub id: WaitlistEntryId,
    pub user_id: UserId,
    pub concert_id: ConcertId,
    pub date: NaiveDate,
    pub count: u16,
    pub status: WaitlistStatus,
    /// Entries ahead (WAITING only): 0 when next.
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
        let mut counters = waitlist::lock_counters(conn, concert_id, date)
            .await?
            .ok_or(Error::NotFound("concert date"))?;
        if counters.waiting == 0
            && !seats::free_numbers(conn, concert_id, date, None)
                .await?
                .is_empty()
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

/// Leaves the waitlist; leaving with an offer declines it (its seats pass on).
pub async fn leave(
    services: &Services,
    user_id: &UserId,
    entry_id: &WaitlistEntryId,
) -> Result<WaitlistEntry> {
    let current = with_conn!(services.db, async |conn: &mut Conn| {
        Ok(waitlist::find(conn, entry_id).await?)
    })
    .await?
    .filter(|(row, _)| row.user_id == *user_id)
    .ok_or(Error::NotFound("waitlist entry"))?;
    let (row, status) = current;
    match status {
        WaitlistStatus::Offered => {
            if let Some(order) = &row.order_id {
                super::release::release_order(services, user_id, order).await?;
            }
        }
        WaitlistStatus::Waiting => {
            transaction!(services.db, async |conn: &mut Conn| {
                lock_user(conn, user_id).await?;
                let mut counters = waitlist::lock_counters(conn, &row.concert_id, row.date)
                    .await?
                    .ok_or(Error::NotFound("concert date"))?;
                let locked = waitlist::lock(conn, entry_id)
                    .await?
                    .ok_or(Error::NotFound("waitlist entry"))?;
                if locked.status != WaitlistStatus::Waiting {
                    return Ok(());
                }
                let now = db::now(conn).await?;
                waitlist::set_status(conn, entry_id, WaitlistStatus::Left, now).await?;
                counters.waiting -= 1;
                counters.served = served_through(conn, &row, counters.issued).await?;
                waitlist::set_counters(conn, &row.concert_id, row.date, counters).await?;
                Ok(())
            })
            .await?;
            // Leaving may leave the line empty: freed seats then go back on sale.
            offer_freed(services, &row.concert_id, row.date).await?;
        }
        WaitlistStatus::Accepted | WaitlistStatus::Expired | WaitlistStatus::Left => {}
    }
    entry(services, user_id, entry_id).await
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

/// Offers the date's free seats to its waitlist, in join order; the number of offers made.
/// Runs one round at a time per date; a round that finds the line changed under it starts over.
pub async fn offer_freed(
    services: &Services,
    concert_id: &ConcertId,
    date: NaiveDate,
) -> Result<usize> {
    for _ in 0..4 {
        if let Some(offers) = offer_round(services, concert_id, date).await? {
            let made = offers.len();
            for order in offers {
                let numbers: Vec<SeatNumber> = order.seats.iter().map(|s| s.seat_number).collect();
                services
                    .live
                    .note_seats(concert_id, date, &numbers, SeatStatus::Held);
            }
            if made > 0 {
                metrics::counter!("waitlist_offers_total").increment(made as u64);
            }
            return Ok(made);
        }
    }
    Ok(0)
}

/// Offer rounds for every date whose waitlist waits (the hold sweeper's beat), after lapsed
/// offers are written EXPIRED.
pub async fn offer_rounds(services: &Services) -> Result<usize> {
    let dates = with_conn!(services.db, async |conn: &mut Conn| {
        waitlist::sweep_lapsed_offers(conn, 1000).await?;
        Ok(waitlist::dates_waiting(conn).await?)
    })
    .await?;
    let mut made = 0;
    for (concert_id, date) in dates {
        made += offer_freed(services, &concert_id, date).await?;
    }
    Ok(made)
}

/// The entries (in join order) that `free` seats serve: each the first whose count still fits.
fn plan(entries: &[WaitlistEntryRow], free: usize) -> Vec<&WaitlistEntryRow> {
    let mut left = free;
    let mut chosen = Vec::new();
    for entry in entries {
        let count = usize::try_from(entry.seat_count).unwrap_or(usize::MAX);
        if count <= left {
            left -= count;
            chosen.push(entry);
        }
    }
    chosen
}

/// One round: None when the line changed between the plan and the locks (start over).
async fn offer_round(
    services: &Services,
    concert_id: &ConcertId,
    date: NaiveDate,
) -> Result<Option<Vec<Order>>> {
    let (users, planned) = with_conn!(services.db, async |conn: &mut Conn| {
        let waiting =
            waitlist::waiting_in_order(conn, concert_id, date, ROUND_ENTRIES, false).await?;
        let free = if waiting.is_empty() {
            0
        } else {
            seats::free_numbers(conn, concert_id, date, None)
                .await?
                .len()
        };
        let chosen = plan(&waiting, free);
        let mut users: Vec<UserId> = chosen.iter().map(|e| e.user_id.clone()).collect();
        users.sort();
        users.dedup();
        Ok((users, chosen.len()))
    })
    .await?;
    if planned == 0 {
        return Ok(Some(Vec::new()));
    }
    let rules = &services.rules;
    transaction!(services.db, async |conn: &mut Conn| {
        let terms = take::terms(conn, concert_id, date).await?;
        for user in &users {
            lock_user(conn, user).await?;
        }
        let mut counters = waitlist::lock_counters(conn, concert_id, date)
            .await?
            .ok_or(Error::NotFound("concert date"))?;
        let waiting =
            waitlist::waiting_in_order(conn, concert_id, date, ROUND_ENTRIES, true).await?;
        let mut free = seats::free_numbers(conn, concert_id, date, None).await?;
        let now = db::now(conn).await?;
        let held_until = now + chrono_duration(rules.waitlist_offer_ttl);
        let mut offers = Vec::new();
        for entry in &waiting {
            let count = usize::try_from(entry.seat_count).unwrap_or(usize::MAX);
            if count > free.len() {
                continue;
            }
            if users.binary_search(&entry.user_id).is_err() {
                return Ok(None);
            }
            let share = take::check_share(
                conn,
                rules,
                &terms,
                &entry.user_id,
                concert_id,
                date,
                count,
                now,
            )
            .await;
            if matches!(share, Err(Error::TicketLimitReached { .. })) {
                continue;
            }
            share?;
            let numbers: Vec<SeatNumber> = free.drain(..count).collect();
            let order = offer(conn, entry, &numbers, held_until, now).await?;
            counters.waiting -= 1;
            offers.push(order);
        }
        if !offers.is_empty() {
            counters.served = served_through(conn, &waiting[0], counters.issued).await?;
            waitlist::set_counters(conn, concert_id, date, counters).await?;
        }
        Ok(Some(offers))
    })
    .await
}

/// Takes `numbers` (free, the date's row locked) for the entry's fan as an order offered until
/// `held_until`.
async fn offer(
    conn: &mut Conn,
    entry: &WaitlistEntryRow,
    numbers: &[SeatNumber],
    held_until: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Order> {
    let order_id = OrderId::new();
    let ids: Vec<ReservationId> = numbers.iter().map(|_| ReservationId::new()).collect();
    for (number, id) in numbers.iter().zip(&ids) {
        let seat = (&entry.concert_id, entry.date, *number);
        if !seats::take(conn, seat, &entry.user_id, id, held_until, now).await? {
            return Err(Error::corrupt(format!(
                "free seat {number} not taken under the date's lock"
            )));
        }
    }
    let order = take::write_order(
        conn,
        NewOrder {
            id: order_id.clone(),
            user_id: &entry.user_id,
            concert_id: &entry.concert_id,
            date: entry.date,
            numbers,
            ids: &ids,
            source: OrderSource::Waitlist,
            held_until,
            now,
        },
    )
    .await?;
    waitlist::set_offered(conn, &entry.id, &order_id, held_until, now).await?;
    Ok(order)
}

/// Where the date's line has been served through: just before its first waiting entry, or
/// everything issued when none waits.
async fn served_through(conn: &mut Conn, any: &WaitlistEntryRow, issued: i64) -> Result<i64> {
    Ok(
        match waitlist::first_waiting_seq(conn, &any.concert_id, any.date).await? {
            Some(first) => first - 1,
            None => issued,
        },
    )
}

/// Inside the transaction that paid or released `order`: its waitlist entry, if it was an
/// offer, is ACCEPTED (paid) or LEFT (declined).
pub(crate) async fn settle_offer(
    conn: &mut Conn,
    order: &OrderId,
    paid: bool,
    now: NaiveDateTime,
) -> Result<()> {
    if let Some(entry) = waitlist::by_order(conn, order).await? {
        let status = if paid {
            WaitlistStatus::Accepted
        } else {
            WaitlistStatus::Left
        };
        waitlist::set_status(conn, &entry.id, status, now).await?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, count: i16) -> WaitlistEntryRow {
        WaitlistEntryRow {
            id: WaitlistEntryId::new(),
            concert_id: ConcertId::new(),
            date: NaiveDate::from_ymd_opt(2030, 1, 1).expect("date"),
            user_id: UserId::new(),
            seq,
            seat_count: count,
            status: WaitlistStatus::Waiting,
            order_id: None,
            offer_expires_at: None,
            created_at: NaiveDateTime::default(),
            updated_at: NaiveDateTime::default(),
        }
    }

    #[test]
    fn freed_seats_go_in_join_order_to_the_first_entries_they_can_fill() {
        let line = [entry(1, 4), entry(2, 2), entry(3, 1), entry(4, 2)];
        let seqs = |free| -> Vec<i64> { plan(&line, free).iter().map(|e| e.seq).collect() };
        assert_eq!(seqs(1), vec![3]);
        assert_eq!(seqs(3), vec![2, 3]);
        assert_eq!(seqs(4), vec![1]);
        assert_eq!(seqs(7), vec![1, 2, 3]);
        assert_eq!(seqs(0), Vec::<i64>::new());
    }
}
