//! Refunding a paid ticket, in one transaction: the reservation becomes REFUNDED, a REFUND ledger
//! row credits its price back to the owner's wallet, and the seat is AVAILABLE again (the live
//! feeds push it, and a sold-out waiting room reopens at its next admission step).
//!
//! An operator may refund any ticket at any time; a fan their own, until `REFUND_CUTOFF` before
//! the show's date begins (UTC); a sold-out room reopens in the same transaction. A refund is
//! idempotent twice over: the reservation's status is
//! checked under its row lock (a second refund of one ticket finds it REFUNDED and returns it,
//! crediting nothing), and an `idempotencyKey` replays the first answer and refuses reuse for
//! another ticket. Rows are locked in the global order: users (by id), seat, reservation, room.

use crate::db::ids::{ReservationId, UserId};
use crate::db::models::ReservationRow;
use crate::db::reservations::effective_status;
use crate::db::states::SeatStatus;
use crate::db::{self, Conn, queue_rooms, reservations, seats, users};
use crate::domain::accounts::{Role, lock_user};
use crate::domain::error::{Error, Result};
use crate::domain::idempotency;
use crate::domain::inputs::IdempotencyKey;
use crate::domain::money::Money;
use crate::domain::reservations::booking::{
    self, Reservation, ReservationStatus, lock_reservation,
};
use crate::domain::services::Services;
use crate::domain::time::chrono_duration;
use crate::domain::time::utc;
use crate::domain::wallet::{self, TransactionKind};

pub async fn refund(
    services: &Services,
    caller: &UserId,
    reservation_id: &ReservationId,
    key: Option<IdempotencyKey>,
) -> Result<Reservation> {
    let current = booking::reservation(services, reservation_id).await?;
    let owner = current.user_id.clone();
    let cutoff = chrono_duration(services.rules.refund_cutoff);
    let refunded = transaction!(services.db, async |conn: &mut Conn| {
        let role = users::role(conn, caller)
            .await?
            .ok_or_else(|| Error::Unauthenticated("unknown user".into()))?;
        if role != Role::Operator && *caller != owner {
            return Err(Error::Forbidden(
                "this reservation belongs to another user".into(),
            ));
        }
        // Users in id order: the caller's row serialises their idempotency keys, the owner's
        // row their balance.
        let mut people = vec![caller, &owner];
        people.sort();
        people.dedup();
        for user in people {
            lock_user(conn, user).await?;
        }
        if let Some(key) = &key
            && idempotency::replay(conn, caller, key, "refund", reservation_id.as_str())
                .await?
                .is_some()
        {
            return booking::find_reservation(conn, reservation_id).await;
        }
        booking::lock_seat(conn, &current).await?;
        let row = lock_reservation(conn, reservation_id).await?;
        let now = db::now(conn).await?;
        match effective_status(&row, now) {
            ReservationStatus::Paid => {}
            ReservationStatus::Refunded => {
                return Ok(booking::to_reservation(row, ReservationStatus::Refunded));
            }
            ReservationStatus::Held => {
                return Err(Error::bad_input(
                    "this reservation is not paid; release the hold instead",
                ));
            }
            ReservationStatus::Expired | ReservationStatus::Cancelled => {
                return Err(Error::bad_input("this reservation was never paid"));
            }
        }
        if role != Role::Operator {
            let show = row.date.and_hms_opt(0, 0, 0).unwrap_or_default();
            let closes = show - cutoff;
            if now >= closes {
                return Err(Error::RefundWindowClosed {
                    closed_at: utc(closes),
                });
            }
        }

        let price = Money::from_stored(row.price.clone());
        wallet::apply(
            conn,
            &owner,
            TransactionKind::Refund,
            &price,
            Some(reservation_id),
        )
        .await?;
        let seat = (&row.concert_id, row.date, row.seat_number);
        if !seats::make_available(conn, seat, reservation_id, SeatStatus::Sold, now).await? {
            return Err(Error::corrupt(format!(
                "seat of paid reservation {reservation_id} is not sold to it"
            )));
        }
        reservations::set_status(conn, reservation_id, ReservationStatus::Refunded, now).await?;
        // A seat is on sale again: a room closed as sold out opens (last in the lock order).
        queue_rooms::reopen(conn, &row.concert_id).await?;
        if let Some(key) = &key {
            idempotency::record(
                conn,
                caller,
                key,
                "refund",
                reservation_id.as_str(),
                reservation_id.as_str(),
            )
            .await?;
        }
        let row = ReservationRow {
            status: ReservationStatus::Refunded,
            updated_at: now,
            ..row
        };
        Ok(booking::to_reservation(row, ReservationStatus::Refunded))
    })
    .await?;
    metrics::counter!("refunds_total").increment(1);
    Ok(refunded)
}
