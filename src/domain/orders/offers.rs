//! Offers from a date's waitlist: the rounds that give freed seats to the first entries they
//! fill (see `waitlist` for the rules), and what paying or declining an offer does to its entry.

use chrono::{NaiveDate, NaiveDateTime};

use super::take::{self, NewOrder};
use super::{Order, OrderSource};
use crate::db::ids::{ConcertId, OrderId, SeatNumber, UserId};
use crate::db::models::WaitlistEntryRow;
use crate::db::states::{SeatStatus, WaitlistStatus};
use crate::db::waitlist::RowLock;
use crate::db::{self, Conn, seats, waitlist};
use crate::domain::accounts::lock_user;
use crate::domain::error::{Error, Result};
use crate::domain::services::Services;
use crate::domain::time::chrono_duration;

/// Entries one offer round considers: the head of the line.
const ROUND_ENTRIES: i64 = 200;

/// Offers the date's free seats to its waitlist, in join order; the number of offers made.
/// Rounds run one at a time per date (the date's row). A round locks the fans it expects to
/// serve first (the lock order); meeting one it did not expect, it starts over with that fan
/// locked too, so the set only grows and the rounds end.
pub async fn offer_freed(
    services: &Services,
    concert_id: &ConcertId,
    date: NaiveDate,
) -> Result<usize> {
    let mut users = planned_users(services, concert_id, date).await?;
    if users.is_empty() {
        return Ok(0);
    }
    for _ in 0..ROUND_ENTRIES + 4 {
        let round = match offer_round(services, concert_id, date, &users).await {
            Err(Error::StartOver) => Round::Again,
            other => other?,
        };
        match round {
            Round::Done(offers) => {
                let made = offers.len();
                for order in offers {
                    let numbers: Vec<SeatNumber> =
                        order.seats.iter().map(|s| s.seat_number).collect();
                    services
                        .live
                        .note_seats(concert_id, date, &numbers, SeatStatus::Held);
                }
                if made > 0 {
                    metrics::counter!("waitlist_offers_total").increment(made as u64);
                }
                return Ok(made);
            }
            Round::NeedUser(user) => {
                users.push(user);
                users.sort();
                users.dedup();
            }
            Round::Again => {}
        }
    }
    // Left to the hold sweeper's next beat.
    Ok(0)
}

/// Offer rounds for every date from today on whose waitlist waits (the hold sweeper's beat),
/// after lapsed offers are written EXPIRED. A date that fails is logged and the others go on.
pub async fn offer_rounds(services: &Services) -> Result<usize> {
    let dates = with_conn!(services.db, async |conn: &mut Conn| {
        waitlist::sweep_lapsed_offers(conn, 1000).await?;
        Ok(waitlist::dates_waiting(conn).await?)
    })
    .await?;
    let mut made = 0;
    for (concert_id, date) in dates {
        match offer_freed(services, &concert_id, date).await {
            Ok(n) => made += n,
            Err(err) => {
                tracing::warn!(error = ?err, %concert_id, %date, "waitlist offer round failed");
            }
        }
    }
    Ok(made)
}

/// Whether the date's waitlist waits: read in the transaction that freed seats, so a fan who
/// frees seats of a date nobody waits for pays no further round trip.
pub(super) async fn waitlist_waits(
    conn: &mut Conn,
    concert_id: &ConcertId,
    date: NaiveDate,
) -> Result<bool> {
    Ok(waitlist::counters(conn, concert_id, date).await?.waiting > 0)
}

/// Seats given back go to the date's waitlist first, at once. The change is committed already:
/// a failure here is logged, and the hold sweeper's next round offers them.
pub(super) async fn pass_on(services: &Services, concert_id: &ConcertId, date: NaiveDate) {
    if let Err(err) = offer_freed(services, concert_id, date).await {
        tracing::warn!(error = ?err, "waitlist offer after freeing seats failed");
    }
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

/// The fans a round expects to serve, from a plain read (sorted, each once).
async fn planned_users(
    services: &Services,
    concert_id: &ConcertId,
    date: NaiveDate,
) -> Result<Vec<UserId>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let waiting =
            waitlist::waiting_in_order(conn, concert_id, date, ROUND_ENTRIES, false).await?;
        if waiting.is_empty() {
            return Ok(Vec::new());
        }
        let free = seats::free_numbers(conn, concert_id, date, None)
            .await?
            .len();
        let mut users: Vec<UserId> = plan(&waiting, free)
            .iter()
            .map(|e| e.user_id.clone())
            .collect();
        users.sort();
        users.dedup();
        Ok(users)
    })
    .await
}

/// What a round came to.
enum Round {
    Done(Vec<Order>),
    /// An entry to serve belongs to a fan whose row was not locked first: start over with it.
    NeedUser(UserId),
    /// A seat read free was sold meanwhile (a payment that read its clock before the hold
    /// lapsed): start over.
    Again,
}

/// One round under the locks: users (the `users` given, sorted), the date's row, the waiting
/// entries, the seats it takes.
async fn offer_round(
    services: &Services,
    concert_id: &ConcertId,
    date: NaiveDate,
    users: &[UserId],
) -> Result<Round> {
    let rules = &services.rules;
    transaction!(services.db, async |conn: &mut Conn| {
        let terms = take::terms(conn, concert_id, date).await?;
        for user in users {
            lock_user(conn, user).await?;
        }
        let mut counters = waitlist::locked_counters(conn, concert_id, date, RowLock::Exclusive)
            .await?
            .ok_or(Error::NotFound("concert date"))?;
        let waiting =
            waitlist::waiting_in_order(conn, concert_id, date, ROUND_ENTRIES, true).await?;
        let mut free = seats::free_numbers(conn, concert_id, date, None).await?;
        let now = db::now(conn).await?;
        let held_until = now + chrono_duration(rules.waitlist_offer_ttl);
        // First decide, reading only: a fan not locked yet means starting over before anything
        // is written.
        let mut left = free.len();
        let mut serve = Vec::new();
        let mut close = Vec::new();
        for entry in &waiting {
            let count = usize::try_from(entry.seat_count).unwrap_or(usize::MAX);
            if count > left {
                continue;
            }
            if users.binary_search(&entry.user_id).is_err() {
                return Ok(Round::NeedUser(entry.user_id.clone()));
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
            match share {
                Ok(()) => {
                    left -= count;
                    serve.push((entry, count));
                }
                // A fan at their fair share can no longer be served: the entry closes, so it
                // holds no seat back from the others.
                Err(Error::TicketLimitReached { .. }) => close.push(entry),
                Err(Error::HoldLimitReached(_)) => {}
                Err(other) => return Err(other),
            }
        }
        for entry in &close {
            waitlist::set_status(conn, &entry.id, WaitlistStatus::Expired, now).await?;
            counters.waiting -= 1;
        }
        let mut offers = Vec::new();
        for (entry, count) in serve {
            let numbers: Vec<SeatNumber> = free.drain(..count).collect();
            let Some(order) = offer(conn, entry, &numbers, held_until, now).await? else {
                // Nothing of this round may stay: roll it back and start over.
                return Err(Error::StartOver);
            };
            counters.waiting -= 1;
            offers.push(order);
        }
        if !offers.is_empty() || !close.is_empty() {
            counters.served = served_through(conn, &waiting[0], counters.issued).await?;
            waitlist::set_counters(conn, concert_id, date, counters).await?;
        }
        Ok(Round::Done(offers))
    })
    .await
}

/// Takes `numbers` (read free, the date's row locked) for the entry's fan as an order offered
/// until `held_until`; None when one of them was sold meanwhile (the caller rolls back).
async fn offer(
    conn: &mut Conn,
    entry: &WaitlistEntryRow,
    numbers: &[SeatNumber],
    held_until: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Option<Order>> {
    let taken = take::take_order(
        conn,
        NewOrder {
            user_id: &entry.user_id,
            concert_id: &entry.concert_id,
            date: entry.date,
            numbers,
            source: OrderSource::Waitlist,
            held_until,
            now,
        },
    )
    .await?;
    let Ok(order) = taken else {
        return Ok(None);
    };
    waitlist::set_offered(conn, &entry.id, &order.id, held_until, now).await?;
    Ok(Some(order))
}

/// Where the date's line has been served through: just before its first waiting entry, or
/// everything issued when none waits.
pub(super) async fn served_through(
    conn: &mut Conn,
    any: &WaitlistEntryRow,
    issued: i64,
) -> Result<i64> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::ids::WaitlistEntryId;

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
