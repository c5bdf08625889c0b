//! Giving seats back before paying: a whole order (`releaseOrder`, and the seed API's
//! `releaseSeat`, which releases the order its reservation belongs to). A repeat of a release
//! returns the order (or seat) as it is. And tidying: lapsed holds written
//! back as AVAILABLE seats and EXPIRED orders, which the clock has made them already.

use super::{Action, Order, OrderSource, OrderStatus, Reservation, ReservationStatus, Transition};
use crate::db::ids::{OrderId, ReservationId, SeatNumber, UserId};
use crate::db::states::SeatStatus;
use crate::db::{Conn, orders, reservations, seats};
use crate::domain::error::{Error, Result};
use crate::domain::services::Services;

/// The holder gives every seat of the order back.
pub async fn release_order(
    services: &Services,
    user_id: &UserId,
    order_id: &OrderId,
) -> Result<Order> {
    let home = services.db.wallet_home(user_id);
    let (order, freed, waits) = transaction!(home, async |conn: &mut Conn| {
        let owner = orders::find(conn, order_id)
            .await?
            .ok_or(Error::NotFound("order"))?
            .0
            .user_id;
        super::check_holder(&owner, user_id)?;
        let locked = super::lock(conn, &[user_id], order_id).await?;
        match super::transition(locked.status, Action::Release) {
            Transition::To(_) => {}
            Transition::Already => return Ok((locked.order(), Vec::new(), false)),
            Transition::Refused(e) => return Err(e),
        }
        let row = &locked.row;
        let now = locked.now;
        let mut freed = Vec::new();
        for (seat, status) in &locked.seats {
            if *status == ReservationStatus::Held {
                let key = (&row.concert_id, row.date, seat.seat_number);
                seats::make_available(conn, key, &seat.id, SeatStatus::Held, now).await?;
                freed.push(seat.seat_number);
            }
        }
        reservations::set_status_of_order(
            conn,
            order_id,
            ReservationStatus::Held,
            ReservationStatus::Cancelled,
            now,
        )
        .await?;
        orders::set_status(conn, order_id, OrderStatus::Released, None, now).await?;
        if row.source == OrderSource::Waitlist {
            super::offers::settle_offer(conn, order_id, false, now).await?;
        }
        let waits = super::offers::waitlist_waits(conn, &row.concert_id, row.date).await?;
        Ok((
            super::views::find_order(conn, order_id).await?,
            freed,
            waits,
        ))
    })
    .await?;
    note_freed(services, &order, &freed);
    if waits {
        super::offers::pass_on(services, &order.concert_id, order.date).await;
    }
    Ok(order)
}

/// The seed API: the holder gives back the order this reservation belongs to (for a
/// `holdSeat`, that one seat), as `pay` pays it. Releasing again returns the seat unchanged, so
/// a retried request is harmless.
pub async fn release_seat(
    services: &Services,
    user_id: &UserId,
    reservation_id: &ReservationId,
) -> Result<Reservation> {
    let current = super::views::reservation(services, reservation_id).await?;
    if current.user_id != *user_id {
        return Err(Error::Forbidden(
            "this reservation belongs to another user".into(),
        ));
    }
    match current.status {
        ReservationStatus::Cancelled => return Ok(current),
        ReservationStatus::Paid | ReservationStatus::Refunded => {
            return Err(Error::bad_input(
                "this reservation is paid; a paid seat cannot be released",
            ));
        }
        ReservationStatus::Held | ReservationStatus::Expired => {}
    }
    // The order as its release left it names the seat: no second read.
    release_order(services, user_id, &current.order_id)
        .await?
        .seats
        .into_iter()
        .find(|seat| seat.id == *reservation_id)
        .ok_or(Error::NotFound("reservation"))
}

fn note_freed(services: &Services, order: &Order, freed: &[SeatNumber]) {
    services
        .live
        .note_seats(&order.concert_id, order.date, freed, SeatStatus::Available);
}

/// Writes lapsed holds back: seats to AVAILABLE, reservations and orders to EXPIRED. Each
/// statement is its own short transaction over at most `batch` rows, so the sweeper never
/// holds locks for long, retried like any other when it meets a deadlock (its range scans can
/// cross a hold or payment under a rush). Returns (seats, reservations) written.
pub async fn sweep_expired_holds(services: &Services, batch: u32) -> Result<(usize, usize)> {
    let seats_freed = transaction!(services.db, async |conn: &mut Conn| {
        Ok(seats::sweep_lapsed(conn, batch).await?)
    })
    .await?;
    let expired = transaction!(services.db, async |conn: &mut Conn| {
        Ok(reservations::sweep_lapsed(conn, batch).await?)
    })
    .await?;
    let orders_expired = transaction!(services.db, async |conn: &mut Conn| {
        Ok(orders::sweep_lapsed(conn, batch).await?)
    })
    .await?;
    if seats_freed + expired + orders_expired > 0 {
        tracing::debug!(seats_freed, expired, orders_expired, "swept expired holds");
    }
    Ok((seats_freed, expired))
}
