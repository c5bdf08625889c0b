//! Paying for an order, in one transaction: the order is the caller's and still HELD, it was
//! taken in the caller's turn (still ACTIVE, or ended after the order was taken: a hold outlives
//! its turn; a waitlist offer needs none), the balance covers
//! the total; then balance down and one ledger row for the total, one payment row, every seat
//! SOLD and its reservation PAID, the order PAID, and the queue ticket COMPLETED once the fan
//! holds nothing else for the concert. Any failure rolls all of it back.
//!
//! Rows are locked in the global order (user, seats by number, order, queue ticket), so
//! concurrent payments do not deadlock one another; the user lock also serialises idempotency
//! checks. The seed API's `pay(reservationId)` pays the order that reservation belongs to.

use super::{Action, Order, OrderSource, OrderStatus, Reservation, ReservationStatus, Transition};
use crate::db::ids::{OrderId, PaymentId, QueueToken, ReservationId, SeatNumber, UserId};
use crate::db::models::PaymentRow;
use crate::db::states::SeatStatus;
use crate::db::{Conn, ledger, orders, reservations, seats};
use crate::domain::error::{Error, Result};
use crate::domain::idempotency;
use crate::domain::inputs::IdempotencyKey;
use crate::domain::money::Money;
use crate::domain::queue;
use crate::domain::services::Services;
use crate::domain::time::utc;
use crate::domain::wallet::{self, LedgerFor, TransactionKind};

#[derive(Debug, Clone)]
pub struct Payment {
    pub id: PaymentId,
    pub amount: Money,
    pub paid_at: chrono::DateTime<chrono::Utc>,
    pub order: Order,
    /// The seat the payment was asked for (the seed API's `pay`), or the order's first.
    pub reservation: Reservation,
}

/// The key's scope: which operation, and what it was asked about.
struct Keyed<'a> {
    key: &'a IdempotencyKey,
    operation: &'static str,
    fingerprint: &'a str,
}

/// Pays the whole order. `token` is the fan's `Queue-Token`, needed for an order taken in a turn.
pub async fn pay_order(
    services: &Services,
    user_id: &UserId,
    order_id: &OrderId,
    token: Option<&QueueToken>,
    key: IdempotencyKey,
) -> Result<Payment> {
    let keyed = Keyed {
        key: &key,
        operation: "pay_order",
        fingerprint: order_id.as_str(),
    };
    pay_in(services, user_id, order_id, None, token, Some(keyed)).await
}

/// The seed API: pays the order that `reservation_id` belongs to.
pub async fn pay(
    services: &Services,
    user_id: &UserId,
    reservation_id: &ReservationId,
    token: &QueueToken,
    key: Option<IdempotencyKey>,
) -> Result<Payment> {
    let seat = super::views::reservation(services, reservation_id).await?;
    if seat.user_id != *user_id {
        return Err(Error::Forbidden(
            "this reservation belongs to another user".into(),
        ));
    }
    let keyed = key.as_ref().map(|key| Keyed {
        key,
        operation: "pay",
        fingerprint: reservation_id.as_str(),
    });
    pay_in(
        services,
        user_id,
        &seat.order_id,
        Some(reservation_id),
        Some(token),
        keyed,
    )
    .await
}

async fn pay_in(
    services: &Services,
    user_id: &UserId,
    order_id: &OrderId,
    asked_for: Option<&ReservationId>,
    token: Option<&QueueToken>,
    keyed: Option<Keyed<'_>>,
) -> Result<Payment> {
    let rules = &services.rules;
    let home = services.db.wallet_home(user_id);
    let payment = transaction!(home, async |conn: &mut Conn| {
        let owner = orders::find(conn, order_id)
            .await?
            .ok_or(Error::NotFound("order"))?
            .0
            .user_id;
        super::check_holder(&owner, user_id)?;
        let locked = super::lock(conn, &[user_id], order_id).await?;
        if let Some(keyed) = &keyed
            && let Some(first) =
                idempotency::replay(conn, user_id, keyed.key, keyed.operation, keyed.fingerprint)
                    .await?
        {
            let first = PaymentId::parse(&first)
                .ok_or_else(|| Error::corrupt(format!("idempotency result {first:?}")))?;
            return find_payment(conn, &first, asked_for).await;
        }
        match super::transition(locked.status, Action::Pay) {
            Transition::To(_) => {}
            Transition::Already => return Err(Error::bad_input("this order is already paid")),
            Transition::Refused(e) => return Err(e),
        }
        let row = &locked.row;
        let now = locked.now;
        let ticket = match row.source {
            OrderSource::Turn => {
                let token = token.ok_or_else(|| {
                    Error::not_admitted("a Queue-Token header is required to pay for this order")
                })?;
                // The hold outlives the turn it was taken in: payable until the hold lapses.
                Some(
                    queue::lock_turn_of_order(
                        conn,
                        token,
                        &row.concert_id,
                        user_id,
                        row.created_at,
                        rules,
                    )
                    .await?,
                )
            }
            OrderSource::Waitlist => None,
        };

        let total = Money::from_stored(row.total.clone());
        let entry = wallet::apply(
            conn,
            user_id,
            TransactionKind::Payment,
            &total,
            LedgerFor::Order(order_id),
        )
        .await?;
        let payment = PaymentRow {
            id: PaymentId::new(),
            user_id: user_id.clone(),
            order_id: order_id.clone(),
            wallet_transaction_id: entry.id,
            amount: total.as_decimal().clone(),
            paid_at: now,
        };
        ledger::insert_payment(conn, &payment).await?;
        for (seat, status) in &locked.seats {
            if *status != ReservationStatus::Held {
                continue;
            }
            let key = (&row.concert_id, row.date, seat.seat_number);
            if !seats::sell(conn, key, &seat.id, now).await? {
                // A live HELD reservation whose seat row no longer points at it: never expected.
                return Err(Error::corrupt(format!(
                    "seat of reservation {} is not held by it",
                    seat.id
                )));
            }
        }
        reservations::set_status_of_order(
            conn,
            order_id,
            ReservationStatus::Held,
            ReservationStatus::Paid,
            now,
        )
        .await?;
        orders::set_status(conn, order_id, OrderStatus::Paid, Some(now), now).await?;
        if row.source == OrderSource::Waitlist {
            super::offers::settle_offer(conn, order_id, true, now).await?;
        }
        // The turn ends with the last live hold paid: a fan holding several orders pays them
        // one by one within the same turn.
        if let Some(ticket) = ticket {
            let others =
                reservations::other_live_holds(conn, user_id, &row.concert_id, order_id, now)
                    .await?;
            if others == 0 {
                queue::complete(conn, &ticket.id, now).await?;
            }
        }
        if let Some(keyed) = &keyed {
            idempotency::record(
                conn,
                user_id,
                keyed.key,
                keyed.operation,
                keyed.fingerprint,
                payment.id.as_str(),
            )
            .await?;
        }
        find_payment(conn, &payment.id, asked_for).await
    })
    .await?;
    metrics::counter!("payments_total").increment(1);
    let sold: Vec<SeatNumber> = payment
        .order
        .seats
        .iter()
        .filter(|s| s.status == ReservationStatus::Paid)
        .map(|s| s.seat_number)
        .collect();
    services.live.note_seats(
        &payment.order.concert_id,
        payment.order.date,
        &sold,
        SeatStatus::Sold,
    );
    // The turn may have ended: this instance's next poll reads the ticket again.
    if let Some(token) = token {
        services.live.forget_poll(token);
    }
    Ok(payment)
}

pub async fn payment(services: &Services, payment_id: &PaymentId) -> Result<Payment> {
    with_conn!(services.db, async |conn: &mut Conn| find_payment(
        conn, payment_id, None
    )
    .await)
    .await
}

async fn find_payment(
    conn: &mut Conn,
    payment_id: &PaymentId,
    asked_for: Option<&ReservationId>,
) -> Result<Payment> {
    let row = ledger::find_payment(conn, payment_id)
        .await?
        .ok_or(Error::NotFound("payment"))?;
    let order = super::views::find_order(conn, &row.order_id).await?;
    let reservation = order
        .seats
        .iter()
        .find(|s| asked_for.is_none_or(|id| s.id == *id))
        .cloned()
        .ok_or_else(|| Error::corrupt(format!("payment {payment_id} of an order without seats")))?;
    Ok(Payment {
        id: row.id,
        amount: Money::from_stored(row.amount),
        paid_at: utc(row.paid_at),
        order,
        reservation,
    })
}
