//! What every way of taking seats does: the date's terms (rows, fair share) with the fan's row
//! locked, the fair-share check, and writing the order once its seats are taken.
//!
//! The fair share is counted under the fan's row lock: every transaction that adds seats to a
//! fan locks that row first, so parallel sessions of one fan cannot both pass the check.

use chrono::{NaiveDate, NaiveDateTime};

use super::rows::Rows;
use super::{Order, OrderSource, OrderStatus, ReservationStatus, to_order};
use crate::db::ids::{ConcertId, OrderId, ReservationId, SeatNumber, UserId};
use crate::db::models::{OrderRow, ReservationRow};
use crate::db::states::SeatStatus;
use crate::db::waitlist::RowLock;
use crate::db::{Conn, concerts, orders, reservations, seats, waitlist};
use crate::domain::accounts::lock_user_at_now;
use crate::domain::error::{Error, Result, Unavailable};
use crate::domain::money::Money;
use crate::domain::rules::Rules;
use crate::domain::services::Services;

/// Most seats one request may name or ask for, whatever a concert's fair share: bounds the
/// request's cost before any of it runs.
pub const MAX_SEATS_PER_ORDER: usize = 100;

/// This instance's seat maps show the order's seats held at once (see `LiveHub::note_seats`).
pub(super) fn note_held(services: &Services, order: &Order) {
    let numbers: Vec<SeatNumber> = order.seats.iter().map(|s| s.seat_number).collect();
    services
        .live
        .note_seats(&order.concert_id, order.date, &numbers, SeatStatus::Held);
}

/// A fan's fair share of a concert: the limit and the seats held and paid against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u32,
    pub used: u32,
}

/// The caller's fair share of a concert now.
pub async fn allowance(
    services: &Services,
    user_id: &UserId,
    concert_id: &ConcertId,
) -> Result<Allowance> {
    let default = u32::from(services.rules.max_tickets_per_fan);
    with_conn!(services.db, async |conn: &mut Conn| {
        let concert = concerts::find(conn, concert_id)
            .await?
            .ok_or(Error::NotFound("concert"))?;
        let now = crate::db::now(conn).await?;
        let used = reservations::held_or_paid_of_concert(conn, user_id, concert_id, now).await?;
        Ok(Allowance {
            limit: concert
                .max_tickets_per_fan
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(default),
            used: u32::try_from(used).unwrap_or(u32::MAX),
        })
    })
    .await
}

/// What taking seats of a date depends on.
pub(crate) struct Terms {
    pub rows: Rows,
    /// The concert's own fair share, if it sets one.
    pub max_tickets_per_fan: Option<u32>,
}

/// The date's terms: its rows and the concert's fair share.
pub(crate) async fn terms(
    conn: &mut Conn,
    concert_id: &ConcertId,
    date: NaiveDate,
) -> Result<Terms> {
    let (per_row, share) = concerts::hold_terms(conn, concert_id, date)
        .await?
        .ok_or(Error::NotFound("concert date"))?;
    Ok(Terms {
        rows: Rows {
            seats_per_row: per_row.and_then(|n| u16::try_from(n).ok()),
        },
        max_tickets_per_fan: share.and_then(|n| u32::try_from(n).ok()),
    })
}

/// The start of every hold taken in a turn: the date exists, the fan's row is locked (the first
/// lock of the order) with the database clock, then the date's row (`turn`); while the date's
/// waitlist waits, its freed seats are the waitlist's (`SEAT_UNAVAILABLE`, `waitlist`).
pub(crate) async fn begin(
    conn: &mut Conn,
    user_id: &UserId,
    concert_id: &ConcertId,
    date: NaiveDate,
    turn: RowLock,
) -> Result<(Terms, NaiveDateTime)> {
    let (terms, now) = begin_fan(conn, user_id, concert_id, date).await?;
    take_date_turn(conn, concert_id, date, turn).await?;
    Ok((terms, now))
}

/// The first half of [`begin`]: the date's terms, then the fan's row locked with the clock (a
/// keyed hold replays between the halves, so a repeat is answered whatever the date's state).
pub(crate) async fn begin_fan(
    conn: &mut Conn,
    user_id: &UserId,
    concert_id: &ConcertId,
    date: NaiveDate,
) -> Result<(Terms, NaiveDateTime)> {
    let terms = terms(conn, concert_id, date).await?;
    let now = lock_user_at_now(conn, user_id).await?;
    Ok((terms, now))
}

/// The second half of [`begin`]: the date's row (`turn`), and the waitlist's claim on it.
pub(crate) async fn take_date_turn(
    conn: &mut Conn,
    concert_id: &ConcertId,
    date: NaiveDate,
    turn: RowLock,
) -> Result<()> {
    let counters = waitlist::locked_counters(conn, concert_id, date, turn).await?;
    if counters.is_some_and(|c| c.waiting > 0) {
        return Err(Error::SeatUnavailable(Unavailable::ForWaitlist));
    }
    Ok(())
}

/// Refuses an order that would take the fan past their fair share of the concert (or past the
/// optional per-date cap on unpaid holds). Called holding the fan's row lock.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn check_share(
    conn: &mut Conn,
    rules: &Rules,
    terms: &Terms,
    user_id: &UserId,
    concert_id: &ConcertId,
    date: NaiveDate,
    adding: usize,
    now: NaiveDateTime,
) -> Result<()> {
    let limit = terms
        .max_tickets_per_fan
        .unwrap_or(u32::from(rules.max_tickets_per_fan));
    let used = reservations::held_or_paid_of_concert(conn, user_id, concert_id, now).await?;
    let used = u32::try_from(used).unwrap_or(u32::MAX);
    let adding = u32::try_from(adding).unwrap_or(u32::MAX);
    if used.saturating_add(adding) > limit {
        return Err(Error::TicketLimitReached {
            limit,
            remaining: limit.saturating_sub(used),
        });
    }
    if rules.max_holds_per_date > 0 {
        let held = reservations::live_holds_for_date(conn, user_id, concert_id, date, now).await?;
        let held = u32::try_from(held).unwrap_or(u32::MAX);
        if held.saturating_add(adding) > rules.max_holds_per_date {
            return Err(Error::HoldLimitReached(rules.max_holds_per_date));
        }
    }
    Ok(())
}

/// An order to take: a fan's seats of one date (in number order), held until `held_until`.
pub(crate) struct NewOrder<'a> {
    pub user_id: &'a UserId,
    pub concert_id: &'a ConcertId,
    pub date: NaiveDate,
    pub numbers: &'a [SeatNumber],
    pub source: OrderSource,
    pub held_until: NaiveDateTime,
    pub now: NaiveDateTime,
}

/// Takes the order's seats in number order (one conditional UPDATE each) and writes the order:
/// `Err(i)` when its `i`-th seat was not free, after taking the ones before it, so the caller
/// rolls the transaction back (and says why as its use case needs).
pub(crate) async fn take_order(
    conn: &mut Conn,
    new: NewOrder<'_>,
) -> Result<std::result::Result<Order, usize>> {
    let ids: Vec<ReservationId> = new.numbers.iter().map(|_| ReservationId::new()).collect();
    for (i, (number, id)) in new.numbers.iter().zip(&ids).enumerate() {
        let seat = (new.concert_id, new.date, *number);
        if !seats::take(conn, seat, new.user_id, id, new.held_until, new.now).await? {
            return Ok(Err(i));
        }
    }
    Ok(Ok(write_order(conn, &new, &ids).await?))
}

/// Writes an order and its seats' reservations for seats this transaction has just taken;
/// lapsed holds of those seats are marked EXPIRED so their records say so.
async fn write_order(conn: &mut Conn, new: &NewOrder<'_>, ids: &[ReservationId]) -> Result<Order> {
    for number in new.numbers {
        reservations::expire_lapsed_of_seat(conn, (new.concert_id, new.date, *number), new.now)
            .await?;
    }
    let order_id = OrderId::new();
    let priced = seats::prices(conn, new.concert_id, new.date, new.numbers).await?;
    let rows: Vec<ReservationRow> = priced
        .into_iter()
        .zip(ids)
        .map(|((number, price, tier), id)| ReservationRow {
            id: id.clone(),
            order_id: order_id.clone(),
            user_id: new.user_id.clone(),
            concert_id: new.concert_id.clone(),
            date: new.date,
            seat_number: number,
            price,
            tier,
            status: ReservationStatus::Held,
            held_until: new.held_until,
            created_at: new.now,
            updated_at: new.now,
        })
        .collect();
    let prices: Vec<Money> = rows
        .iter()
        .map(|r| Money::from_stored(r.price.clone()))
        .collect();
    let order = OrderRow {
        id: order_id,
        user_id: new.user_id.clone(),
        concert_id: new.concert_id.clone(),
        date: new.date,
        status: OrderStatus::Held,
        source: new.source,
        total: Money::sum(&prices).as_decimal().clone(),
        held_until: new.held_until,
        paid_at: None,
        created_at: new.now,
        updated_at: new.now,
    };
    orders::insert(conn, &order).await?;
    reservations::insert_all(conn, &rows).await?;
    let seats = rows
        .into_iter()
        .map(|r| (r, ReservationStatus::Held))
        .collect();
    Ok(to_order(order, OrderStatus::Held, seats))
}
