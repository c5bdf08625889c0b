//! Paying for a hold, in one transaction: the hold is the caller's and still live, the queue turn
//! is ACTIVE, the balance covers the price; then balance down, ledger row, payment row, seat SOLD,
//! reservation PAID, queue ticket COMPLETED. Any failure rolls all of it back.
//!
//! Rows are locked in the global order (user, seat, reservation, queue ticket), so concurrent pays
//! do not deadlock one another; the user lock also serialises idempotency checks. A hold's
//! "expire the lapsed previous hold" update can still deadlock with a pay through the
//! `reservations_expiry` index (seen under the kill -9 burst test); the transaction is retried.

use crate::db::ids::{PaymentId, QueueToken, ReservationId, UserId};
use crate::db::models::{PaymentRow, ReservationRow};
use crate::db::reservations::effective_status;
use crate::db::{self, Conn, ledger, reservations, seats};
use crate::domain::accounts::lock_user;
use crate::domain::error::{Error, Result};
use crate::domain::idempotency;
use crate::domain::inputs::IdempotencyKey;
use crate::domain::money::Money;
use crate::domain::queue;
use crate::domain::reservations::booking::{
    self, Reservation, ReservationStatus, lock_reservation,
};
use crate::domain::services::Services;
use crate::domain::time::utc;
use crate::domain::wallet::{self, TransactionKind};

#[derive(Debug, Clone)]
pub struct Payment {
    pub id: PaymentId,
    pub amount: Money,
    pub paid_at: chrono::DateTime<chrono::Utc>,
    pub reservation: Reservation,
}

pub async fn pay(
    services: &Services,
    user_id: &UserId,
    reservation_id: &ReservationId,
    token: &QueueToken,
    key: Option<IdempotencyKey>,
) -> Result<Payment> {
    let current = booking::reservation(services, reservation_id).await?;
    if current.user_id != *user_id {
        return Err(Error::Forbidden(
            "this reservation belongs to another user".into(),
        ));
    }
    let rules = &services.rules;
    // One transaction that returns the payment it wrote (or the one a key replays): the only
    // other checkout is the read before it, which names the seat to lock first.
    let payment = transaction!(services.db, async |conn: &mut Conn| {
        lock_user(conn, user_id).await?;
        if let Some(key) = &key
            && let Some(first) =
                idempotency::replay(conn, user_id, key, "pay", reservation_id.as_str()).await?
        {
            let first = PaymentId::parse(&first)
                .ok_or_else(|| Error::corrupt(format!("idempotency result {first:?}")))?;
            return find_payment(conn, &first).await;
        }
        booking::lock_seat(conn, &current).await?;
        let row = lock_reservation(conn, reservation_id).await?;
        let now = db::now(conn).await?;
        match effective_status(&row, now) {
            ReservationStatus::Held => {}
            ReservationStatus::Expired => return Err(Error::HoldExpired),
            ReservationStatus::Paid => {
                return Err(Error::bad_input("this reservation is already paid"));
            }
            ReservationStatus::Refunded => {
                return Err(Error::bad_input("this reservation was paid and refunded"));
            }
            ReservationStatus::Cancelled => {
                return Err(Error::bad_input("this reservation was cancelled"));
            }
        }
        let ticket = queue::lock_active(conn, token, &row.concert_id, user_id, rules).await?;

        let price = Money::from_stored(row.price.clone());
        let entry = wallet::apply(
            conn,
            user_id,
            TransactionKind::Payment,
            &price,
            Some(reservation_id),
        )
        .await?;
        let payment = PaymentRow {
            id: PaymentId::new(),
            user_id: user_id.clone(),
            reservation_id: reservation_id.clone(),
            wallet_transaction_id: entry.id,
            amount: price.as_decimal().clone(),
            paid_at: now,
        };
        ledger::insert_payment(conn, &payment).await?;
        let seat = (&row.concert_id, row.date, row.seat_number);
        if !seats::sell(conn, seat, reservation_id, now).await? {
            // A live HELD reservation whose seat row no longer points at it: never expected.
            return Err(Error::corrupt(format!(
                "seat of reservation {reservation_id} is not held by it"
            )));
        }
        reservations::set_status(conn, reservation_id, ReservationStatus::Paid, now).await?;
        // The turn ends with the last live hold paid: a fan holding several seats pays them one
        // by one within the same turn.
        let others =
            reservations::other_live_holds(conn, user_id, &row.concert_id, reservation_id, now)
                .await?;
        if others == 0 {
            queue::complete(conn, &ticket.id, now).await?;
        }
        if let Some(key) = &key {
            idempotency::record(
                conn,
                user_id,
                key,
                "pay",
                reservation_id.as_str(),
                payment.id.as_str(),
            )
            .await?;
        }
        let reservation = ReservationRow {
            status: ReservationStatus::Paid,
            updated_at: now,
            ..row
        };
        Ok(to_payment(
            payment,
            booking::to_reservation(reservation, ReservationStatus::Paid),
        ))
    })
    .await?;
    metrics::counter!("payments_total").increment(1);
    // The turn may have ended: this instance's next poll reads the ticket again.
    services.live.forget_poll(token);
    Ok(payment)
}

pub async fn payment(services: &Services, payment_id: &PaymentId) -> Result<Payment> {
    with_conn!(services.db, async |conn: &mut Conn| find_payment(
        conn, payment_id
    )
    .await)
    .await
}

async fn find_payment(conn: &mut Conn, payment_id: &PaymentId) -> Result<Payment> {
    let row = ledger::find_payment(conn, payment_id)
        .await?
        .ok_or(Error::NotFound("payment"))?;
    let reservation = booking::find_reservation(conn, &row.reservation_id).await?;
    Ok(to_payment(row, reservation))
}

fn to_payment(row: PaymentRow, reservation: Reservation) -> Payment {
    Payment {
        id: row.id,
        amount: Money::from_stored(row.amount),
        paid_at: utc(row.paid_at),
        reservation,
    }
}
