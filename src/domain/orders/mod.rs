//! Orders: the seats a fan holds on one date, taken, paid, released, lapsed and refunded
//! together. A reservation is one seat of an order (the seed API's `holdSeat` makes an order of
//! one seat, and `pay`, `releaseSeat`, `refund` act through the order their reservation is in).
//!
//! By job: `hold` takes the seats a fan names, `best` the best free ones, both through `take`
//! (the fair share, writing the order); `pay` pays a whole order, `release` gives seats back and
//! tidies lapsed orders, `refund` credits a paid seat back, `views` reads orders and
//! reservations, `search` finds a concert's reservations for operators. Every transition of an
//! existing order goes through [`lock`]: users (by id), then the order's seats (by number), then
//! the order row; and every status change is decided by one table, [`transition`].
//!
//! A HELD order past `held_until` is EXPIRED by the database clock, before any sweeper writes
//! it; so are its seats.

pub mod best;
pub mod hold;
pub mod offers;
pub mod pay;
pub mod refund;
pub mod release;
mod rows;
pub mod search;
mod take;
pub mod views;
pub mod waitlist;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::db::ids::{ConcertId, OrderId, ReservationId, SeatNumber, UserId};
use crate::db::models::{OrderRow, ReservationRow};
use crate::db::{Conn, orders, reservations, seats};
use crate::domain::accounts::lock_user;
use crate::domain::error::{Error, Result};
use crate::domain::money::Money;
use crate::domain::time::utc;

pub use crate::db::states::{OrderSource, OrderStatus, ReservationStatus};
pub use take::{Allowance, MAX_SEATS_PER_ORDER, allowance};

/// An order as its holder sees it.
#[derive(Debug, Clone)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub concert_id: ConcertId,
    pub date: NaiveDate,
    pub status: OrderStatus,
    pub source: OrderSource,
    /// Its seats, by number (released seats included, with their status).
    pub seats: Vec<Reservation>,
    /// What it costs (paid: what was paid): its seats that were not released.
    pub total: Money,
    pub held_until: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// One seat of an order.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub id: ReservationId,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub concert_id: ConcertId,
    pub date: NaiveDate,
    pub seat_number: SeatNumber,
    pub price: Money,
    pub tier: String,
    pub status: ReservationStatus,
    pub held_until: DateTime<Utc>,
}

/// What is asked of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pay,
    Release,
    Refund,
}

/// What an action does to an order in a given (effective) status.
#[derive(Debug)]
pub enum Transition {
    /// Go on: the order ends in this status (or keeps it, for a partial release or refund).
    To(OrderStatus),
    /// Done before: answer with the order as it is (a retried release or refund).
    Already,
    Refused(Error),
}

/// The one table of order transitions.
pub fn transition(from: OrderStatus, action: Action) -> Transition {
    use Action::{Pay, Refund, Release};
    use OrderStatus::{Expired, Held, Paid, Refunded, Released};
    use Transition::{Already, Refused, To};
    match (from, action) {
        (Held, Pay) => To(Paid),
        (Held, Release) => To(Released),
        (Paid, Refund) => To(Refunded),
        (Released, Release) | (Refunded, Refund) => Already,
        (Expired, Pay | Release) => Refused(Error::HoldExpired),
        (Paid, Pay) => Refused(Error::bad_input("this order is already paid")),
        (Refunded, Pay) => Refused(Error::bad_input("this order was paid and refunded")),
        (Released, Pay) => Refused(Error::bad_input("this order was released")),
        (Paid | Refunded, Release) => Refused(Error::bad_input(
            "this order is paid; a paid seat cannot be released (refund it instead)",
        )),
        (Held, Refund) => Refused(Error::bad_input(
            "this order is not paid; release the hold instead",
        )),
        (Expired | Released, Refund) => Refused(Error::bad_input("this order was never paid")),
    }
}

/// An order locked for a transition, with the database time read after its locks.
pub(crate) struct Locked {
    pub row: OrderRow,
    /// Its effective status at `now`.
    pub status: OrderStatus,
    pub seats: Vec<(ReservationRow, ReservationStatus)>,
    pub now: NaiveDateTime,
}

impl Locked {
    pub fn order(&self) -> Order {
        to_order(self.row.clone(), self.status, self.seats.clone())
    }
}

/// Locks an order for a transition in the global lock order: `users` (sorted here, each once),
/// then the order's seats by number, then the order row; then reads its seats again and the
/// clock. The seats are found by a plain read first: an order's seats only ever leave it, so
/// the seats locked cover every seat it still has.
pub(crate) async fn lock(conn: &mut Conn, users: &[&UserId], order: &OrderId) -> Result<Locked> {
    let mut users = users.to_vec();
    users.sort();
    users.dedup();
    for user in users {
        lock_user(conn, user).await?;
    }
    let (row, _) = orders::find(conn, order)
        .await?
        .ok_or(Error::NotFound("order"))?;
    let numbers: Vec<SeatNumber> = reservations::of_order(conn, order)
        .await?
        .iter()
        .map(|(r, _)| r.seat_number)
        .collect();
    seats::lock_all(conn, &row.concert_id, row.date, &numbers).await?;
    let row = orders::lock(conn, order)
        .await?
        .ok_or(Error::NotFound("order"))?;
    let seats = reservations::of_order(conn, order).await?;
    let now = crate::db::now(conn).await?;
    let status = orders::effective_status(&row, now);
    Ok(Locked {
        row,
        status,
        seats,
        now,
    })
}

/// Refuses anyone but the order's holder, as if the order did not exist: an order id tells
/// nothing to anyone else.
pub(crate) fn check_holder(order_user: &UserId, caller: &UserId) -> Result<()> {
    if order_user == caller {
        Ok(())
    } else {
        Err(Error::NotFound("order"))
    }
}

pub(crate) fn to_order(
    row: OrderRow,
    status: OrderStatus,
    seats: Vec<(ReservationRow, ReservationStatus)>,
) -> Order {
    Order {
        id: row.id,
        user_id: row.user_id,
        concert_id: row.concert_id,
        date: row.date,
        status,
        source: row.source,
        seats: seats
            .into_iter()
            .map(|(r, s)| to_reservation(r, s))
            .collect(),
        total: Money::from_stored(row.total),
        held_until: utc(row.held_until),
        paid_at: row.paid_at.map(utc),
        created_at: utc(row.created_at),
    }
}

pub(crate) fn to_reservation(row: ReservationRow, status: ReservationStatus) -> Reservation {
    Reservation {
        status,
        id: row.id,
        order_id: row.order_id,
        user_id: row.user_id,
        concert_id: row.concert_id,
        date: row.date,
        seat_number: row.seat_number,
        price: Money::from_stored(row.price),
        tier: row.tier,
        held_until: utc(row.held_until),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_and_action_has_one_answer_and_only_held_and_paid_orders_move() {
        let all = [
            OrderStatus::Held,
            OrderStatus::Paid,
            OrderStatus::Released,
            OrderStatus::Expired,
            OrderStatus::Refunded,
        ];
        for from in all {
            for action in [Action::Pay, Action::Release, Action::Refund] {
                let moves = matches!(transition(from, action), Transition::To(_));
                let may_move = matches!(
                    (from, action),
                    (OrderStatus::Held, Action::Pay | Action::Release)
                        | (OrderStatus::Paid, Action::Refund)
                );
                assert_eq!(moves, may_move, "{from:?} {action:?}");
            }
        }
        assert!(matches!(
            transition(OrderStatus::Expired, Action::Pay),
            Transition::Refused(Error::HoldExpired)
        ));
        assert!(matches!(
            transition(OrderStatus::Released, Action::Release),
            Transition::Already
        ));
    }
}
