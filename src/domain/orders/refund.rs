//! Refunding a paid seat, in one transaction: the reservation becomes REFUNDED, a REFUND ledger
//! row credits its price back to the owner's wallet, the seat is AVAILABLE again (the live feeds
//! push it), the order is REFUNDED with its last paid seat, and a room closed as sold out opens
//! again (unless the date's waitlist waits: the seat is offered to it first, right after the
//! commit). The fan's fair share is given back with the seat.
//!
//! An operator may refund any ticket at any time; a fan their own, until `REFUND_CUTOFF` before
//! the show's date begins (UTC). A refund is idempotent twice over: the seat's status is checked
//! under the order's lock (a second refund of one ticket finds it REFUNDED and returns it,
//! crediting nothing), and an `idempotencyKey` replays the first answer and refuses reuse for
//! another ticket. Rows are locked in the global order: users (by id), seats, order, room.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::{Action, Reservation, ReservationStatus, Transition};
use crate::db::ids::{ReservationId, UserId};
use crate::db::states::SeatStatus;
use crate::db::{Conn, orders, queue_rooms, reservations, seats, users};
use crate::domain::accounts::Role;
use crate::domain::error::{Error, Result};
use crate::domain::idempotency;
use crate::domain::inputs::IdempotencyKey;
use crate::domain::money::Money;
use crate::domain::services::Services;
use crate::domain::time::{chrono_duration, utc};
use crate::domain::wallet::{self, LedgerFor, TransactionKind};

/// When a fan's own refunds of a seat on `date` close: `cutoff` before the show's date begins
/// (UTC). The one place the window is computed, for `refund` and for what the API shows.
pub fn fan_refunds_close(date: NaiveDate, cutoff: chrono::TimeDelta) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN) - cutoff
}

pub async fn refund(
    services: &Services,
    caller: &UserId,
    reservation_id: &ReservationId,
    key: Option<IdempotencyKey>,
) -> Result<Reservation> {
    let current = super::views::reservation(services, reservation_id).await?;
    let owner = current.user_id.clone();
    let cutoff = chrono_duration(services.rules.refund_cutoff);
    let home = services.db.wallet_home(&owner);
    let (refunded, waits) = transaction!(home, async |conn: &mut Conn| {
        let role = users::role(conn, caller)
            .await?
            .ok_or_else(|| Error::Unauthenticated("unknown user".into()))?;
        if role != Role::Operator && *caller != owner {
            return Err(Error::Forbidden(
                "this reservation belongs to another user".into(),
            ));
        }
        // The caller's row serialises their idempotency keys, the owner's their balance.
        let locked = super::lock(conn, &[caller, &owner], &current.order_id).await?;
        if let Some(key) = &key
            && idempotency::replay(conn, caller, key, "refund", reservation_id.as_str())
                .await?
                .is_some()
        {
            return Ok((
                super::views::find_reservation(conn, reservation_id).await?,
                false,
            ));
        }
        let (seat, status) = locked
            .seats
            .iter()
            .find(|(r, _)| r.id == *reservation_id)
            .cloned()
            .ok_or(Error::NotFound("reservation"))?;
        match status {
            ReservationStatus::Paid => {}
            ReservationStatus::Refunded => return Ok((super::to_reservation(seat, status), false)),
            ReservationStatus::Held => {
                return Err(Error::bad_input(
                    "this reservation is not paid; release the hold instead",
                ));
            }
            ReservationStatus::Expired | ReservationStatus::Cancelled => {
                return Err(Error::bad_input("this reservation was never paid"));
            }
        }
        let now = locked.now;
        if role != Role::Operator {
            let closes = fan_refunds_close(seat.date, cutoff);
            if now >= closes {
                return Err(Error::RefundWindowClosed {
                    closed_at: utc(closes),
                });
            }
        }

        let price = Money::from_stored(seat.price.clone());
        wallet::apply(
            conn,
            &owner,
            TransactionKind::Refund,
            &price,
            LedgerFor::Seat(reservation_id),
        )
        .await?;
        let seat_key = (&seat.concert_id, seat.date, seat.seat_number);
        if !seats::make_available(conn, seat_key, reservation_id, SeatStatus::Sold, now).await? {
            return Err(Error::corrupt(format!(
                "seat of paid reservation {reservation_id} is not sold to it"
            )));
        }
        reservations::set_status(conn, reservation_id, ReservationStatus::Refunded, now).await?;
        let paid_left = locked
            .seats
            .iter()
            .any(|(r, s)| r.id != *reservation_id && *s == ReservationStatus::Paid);
        if !paid_left
            && let Transition::To(status) = super::transition(locked.status, Action::Refund)
        {
            orders::set_status(conn, &locked.row.id, status, locked.row.paid_at, now).await?;
        }
        // A seat is on sale again, unless its date's waitlist waits for it: a room closed as
        // sold out opens (last in the lock order).
        let waits = super::offers::waitlist_waits(conn, &seat.concert_id, seat.date).await?;
        if !waits {
            queue_rooms::reopen(conn, &seat.concert_id).await?;
        }
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
        Ok((
            super::views::find_reservation(conn, reservation_id).await?,
            waits,
        ))
    })
    .await?;
    metrics::counter!("refunds_total").increment(1);
    // The seat as the refund left it, then as the waitlist's offer takes it.
    services.live.note_seats(
        &refunded.concert_id,
        refunded.date,
        &[refunded.seat_number],
        SeatStatus::Available,
    );
    if waits {
        super::offers::pass_on(services, &refunded.concert_id, refunded.date).await;
    }
    Ok(refunded)
}
