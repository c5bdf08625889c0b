//! Paying for a hold, in one transaction: the hold is the caller's and still live, the queue turn
//! is ACTIVE, the balance covers the price; then balance down, ledger row, payment row, seat SOLD,
//! reservation PAID, queue ticket COMPLETED. Any failure rolls all of it back.
//!
//! Rows are locked in the global order (user, seat, reservation, queue ticket), so concurrent pays
//! do not deadlock one another; the user lock also serialises idempotency checks. A hold's
//! "expire the lapsed previous hold" update can still deadlock with a pay through the
//! `reservations_expiry` index (seen under the kill -9 burst test); the transaction is retried.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::accounts::lock_user;
use super::booking::{self, Reservation, ReservationStatus, lock_reservation, stored_status};
use super::catalog::SeatStatus;
use super::error::{Error, Result};
use super::idempotency;
use super::inputs::parse_idempotency_key;
use super::money::Money;
use super::wallet::{self, TransactionKind};
use super::{Services, new_id, queue, utc};
use crate::db::models::PaymentRow;
use crate::db::schema::{payments, reservations, seats};
use crate::db::{self, Conn};

#[derive(Debug, Clone)]
pub struct Payment {
    pub id: String,
    pub amount: Money,
    pub paid_at: chrono::DateTime<chrono::Utc>,
    pub reservation: Reservation,
}

pub async fn pay(
    services: &Services,
    user_id: &str,
    reservation_id: &str,
    queue_token: Option<&str>,
    key: Option<String>,
) -> Result<Payment> {
    let key = parse_idempotency_key(key)?;
    let token = queue_token
        .ok_or_else(|| Error::not_admitted("a Queue-Token header is required to pay"))?;
    let current = booking::reservation(services, reservation_id).await?;
    if current.user_id != user_id {
        return Err(Error::Forbidden(
            "this reservation belongs to another user".into(),
        ));
    }
    let rules = &services.rules;
    let payment_id = transaction!(services.db, async |conn: &mut Conn| {
        lock_user(conn, user_id).await?;
        if let Some(key) = &key
            && let Some(first) =
                idempotency::replay(conn, user_id, key, "pay", reservation_id).await?
        {
            return Ok(first);
        }
        booking::lock_seat(conn, &current).await?;
        let row = lock_reservation(conn, reservation_id).await?;
        let now = db::now(conn).await?;
        match stored_status(&row, now) {
            ReservationStatus::Held => {}
            ReservationStatus::Expired => return Err(Error::HoldExpired),
            ReservationStatus::Paid => {
                return Err(Error::bad_input("this reservation is already paid"));
            }
            ReservationStatus::Cancelled => {
                return Err(Error::bad_input("this reservation was cancelled"));
            }
        }
        let ticket = queue::lock_active(conn, token, &row.concert_id, user_id, rules).await?;

        let price = Money::from_stored(row.price.clone());
        let ledger = wallet::apply(
            conn,
            user_id,
            TransactionKind::Payment,
            &price,
            Some(reservation_id),
        )
        .await?;
        let payment_id = new_id();
        diesel::insert_into(payments::table)
            .values(&PaymentRow {
                id: payment_id.clone(),
                user_id: user_id.to_owned(),
                reservation_id: reservation_id.to_owned(),
                wallet_transaction_id: ledger.id,
                amount: price.as_decimal().clone(),
                paid_at: now,
            })
            .execute(conn)
            .await?;
        sell_seat(
            conn,
            reservation_id,
            &row.concert_id,
            row.date,
            row.seat_number,
            now,
        )
        .await?;
        diesel::update(reservations::table.find(reservation_id))
            .set((
                reservations::status.eq(ReservationStatus::Paid),
                reservations::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        // The turn ends with the last live hold paid: a fan holding several seats pays them one
        // by one within the same turn.
        if other_live_holds(conn, user_id, &row.concert_id, reservation_id, now).await? == 0 {
            queue::complete(conn, &ticket.id, now).await?;
        }
        if let Some(key) = &key {
            idempotency::record(conn, user_id, key, "pay", reservation_id, &payment_id).await?;
        }
        Ok(payment_id)
    })
    .await?;
    metrics::counter!("payments_total").increment(1);
    payment(services, &payment_id).await
}

pub async fn payment(services: &Services, payment_id: &str) -> Result<Payment> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let row: PaymentRow = payments::table
            .find(payment_id)
            .select(PaymentRow::as_select())
            .first(conn)
            .await
            .optional()?
            .ok_or(Error::NotFound("payment"))?;
        let reservation = booking::find_reservation(conn, &row.reservation_id).await?;
        Ok(Payment {
            id: row.id,
            amount: Money::from_stored(row.amount),
            paid_at: utc(row.paid_at),
            reservation,
        })
    })
    .await
}

/// The caller's other HELD, unexpired reservations for the concert (rows under the user lock).
async fn other_live_holds(
    conn: &mut Conn,
    user_id: &str,
    concert_id: &str,
    paid_reservation: &str,
    now: NaiveDateTime,
) -> Result<i64> {
    Ok(reservations::table
        .filter(reservations::user_id.eq(user_id))
        .filter(reservations::concert_id.eq(concert_id))
        .filter(reservations::status.eq(ReservationStatus::Held))
        .filter(reservations::id.ne(paid_reservation))
        .filter(reservations::held_until.gt(now))
        .count()
        .get_result(conn)
        .await?)
}

async fn sell_seat(
    conn: &mut Conn,
    reservation_id: &str,
    concert_id: &str,
    date: chrono::NaiveDate,
    number: i16,
    now: NaiveDateTime,
) -> Result<()> {
    let sold = diesel::update(seats::table.find((concert_id, date, number)))
        .filter(seats::reservation_id.eq(reservation_id))
        .filter(seats::status.eq(SeatStatus::Held))
        .set((
            seats::status.eq(SeatStatus::Sold),
            seats::held_until.eq(None::<NaiveDateTime>),
            seats::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    if sold != 1 {
        // A live HELD reservation whose seat row no longer points at it: never expected.
        return Err(Error::corrupt(format!(
            "seat of reservation {reservation_id} is not held by it"
        )));
    }
    Ok(())
}
