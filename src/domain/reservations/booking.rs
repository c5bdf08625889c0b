//! Holds: taking a seat for a few minutes, releasing it, and tidying lapsed holds.
//!
//! One conditional UPDATE on the seat row decides who gets a seat: it matches only a seat that is
//! AVAILABLE or whose hold deadline has passed by the database clock, so exactly one of any number
//! of racing callers sees one affected row. Expiry needs no background job to be correct; the
//! sweeper only makes the stored rows say what the queries already compute.

use chrono::NaiveDate;

use crate::db::ids::{ConcertId, QueueToken, ReservationId, UserId};
use crate::db::models::ReservationRow;
use crate::db::reservations::effective_status;
use crate::db::states::SeatStatus;
use crate::db::{self, Conn, reservations, seats};
use crate::domain::accounts::{lock_user, lock_user_at_now};
use crate::domain::catalog::ensure_date;
use crate::domain::error::{Error, Result};
use crate::domain::inputs::SeatNumber;
use crate::domain::money::Money;
use crate::domain::paging::{Page, PageCursor, PageRequest};
use crate::domain::queue;
use crate::domain::services::Services;
use crate::domain::time::chrono_duration;
use crate::domain::time::utc;

pub use crate::db::states::ReservationStatus;

#[derive(Debug, Clone)]
pub struct Reservation {
    pub id: ReservationId,
    pub user_id: UserId,
    pub concert_id: ConcertId,
    pub date: NaiveDate,
    pub seat_number: SeatNumber,
    pub price: Money,
    pub status: ReservationStatus,
    pub held_until: chrono::DateTime<chrono::Utc>,
}

impl Reservation {
    fn seat(&self) -> seats::SeatKey<'_> {
        (&self.concert_id, self.date, self.seat_number)
    }
}

/// Holds seat `number` of `date` for the caller until `now + HOLD_TTL`.
pub async fn hold_seat(
    services: &Services,
    user_id: &UserId,
    concert_id: &ConcertId,
    date: NaiveDate,
    seat: SeatNumber,
    queue_token: &QueueToken,
) -> Result<Reservation> {
    let rules = &services.rules;
    let key = (concert_id, date, seat);
    // One transaction that returns the hold it wrote: no second checkout to read it back.
    let reservation = transaction!(services.db, async |conn: &mut Conn| {
        ensure_date(conn, concert_id, date).await?;
        let now = lock_user_at_now(conn, user_id).await?;
        let held = reservations::live_holds_for_date(conn, user_id, concert_id, date, now).await?;
        if held >= i64::from(rules.max_holds_per_date) {
            return Err(Error::HoldLimitReached(rules.max_holds_per_date));
        }

        let held_until = now + chrono_duration(rules.hold_ttl);
        let reservation_id = ReservationId::new();
        if !seats::take(conn, key, user_id, &reservation_id, held_until, now).await? {
            if !seats::exists(conn, key).await? {
                return Err(Error::bad_input(format!(
                    "seatNumber {seat} is not a seat of this concert",
                )));
            }
            return Err(Error::SeatUnavailable);
        }
        // The seat may have been taken over from a lapsed hold: that hold's record now says so.
        reservations::expire_lapsed_of_seat(conn, key, now).await?;
        let row = ReservationRow {
            id: reservation_id,
            user_id: user_id.clone(),
            concert_id: concert_id.clone(),
            date,
            seat_number: seat,
            price: seats::price(conn, key).await?,
            status: ReservationStatus::Held,
            held_until,
            created_at: now,
            updated_at: now,
        };
        reservations::insert(conn, &row).await?;
        // The turn is checked under lock, last in the lock order: a turn that ended since the
        // resolver's early check holds nothing.
        queue::lock_active(conn, queue_token, concert_id, user_id, rules).await?;
        Ok(to_reservation(row, ReservationStatus::Held))
    })
    .await?;
    metrics::counter!("holds_taken_total").increment(1);
    Ok(reservation)
}

/// The holder gives the seat back. Releasing an already cancelled hold returns it unchanged, so
/// a retried request is harmless.
pub async fn release_seat(
    services: &Services,
    user_id: &UserId,
    reservation_id: &ReservationId,
) -> Result<Reservation> {
    let current = reservation(services, reservation_id).await?;
    if current.user_id != *user_id {
        return Err(Error::Forbidden(
            "this reservation belongs to another user".into(),
        ));
    }
    match current.status {
        ReservationStatus::Cancelled => return Ok(current),
        ReservationStatus::Expired => return Err(Error::HoldExpired),
        ReservationStatus::Paid | ReservationStatus::Refunded => {
            return Err(Error::bad_input(
                "this reservation is paid; a paid seat cannot be released",
            ));
        }
        ReservationStatus::Held => {}
    }
    transaction!(services.db, async |conn: &mut Conn| {
        lock_user(conn, user_id).await?;
        lock_seat(conn, &current).await?;
        let now = db::now(conn).await?;
        let row = lock_reservation(conn, reservation_id).await?;
        match effective_status(&row, now) {
            ReservationStatus::Held => {}
            ReservationStatus::Cancelled => {
                return Ok(to_reservation(row, ReservationStatus::Cancelled));
            }
            ReservationStatus::Expired => return Err(Error::HoldExpired),
            ReservationStatus::Paid | ReservationStatus::Refunded => {
                return Err(Error::bad_input(
                    "this reservation is paid; a paid seat cannot be released",
                ));
            }
        }
        let seat = (&row.concert_id, row.date, row.seat_number);
        seats::make_available(conn, seat, &row.id, SeatStatus::Held, now).await?;
        reservations::set_status(conn, reservation_id, ReservationStatus::Cancelled, now).await?;
        let row = ReservationRow {
            status: ReservationStatus::Cancelled,
            updated_at: now,
            ..row
        };
        Ok(to_reservation(row, ReservationStatus::Cancelled))
    })
    .await
}

/// The caller's reservations, newest first.
pub async fn my_reservations(services: &Services, user_id: &UserId) -> Result<Vec<Reservation>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let rows = reservations::of_user(conn, user_id).await?;
        Ok(rows
            .into_iter()
            .map(|(row, status)| to_reservation(row, status))
            .collect())
    })
    .await
}

/// A page of the caller's reservations, newest first (see `paging`).
pub async fn reservations_page(
    services: &Services,
    user_id: &UserId,
    page: &PageRequest,
) -> Result<Page<Reservation>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let after = page.after.as_ref().map(|c| (c.at, c.id.as_str()));
        let rows = reservations::page_of_user(conn, user_id, after, page.first + 1).await?;
        let rows = rows
            .into_iter()
            .map(|(row, status)| {
                let cursor = PageCursor {
                    at: row.created_at,
                    id: row.id.to_string(),
                };
                (cursor, to_reservation(row, status))
            })
            .collect();
        Ok(Page::from_rows(rows, page.first))
    })
    .await
}

pub async fn reservation(
    services: &Services,
    reservation_id: &ReservationId,
) -> Result<Reservation> {
    with_conn!(services.db, async |conn: &mut Conn| {
        find_reservation(conn, reservation_id).await
    })
    .await
}

pub(crate) async fn find_reservation(
    conn: &mut Conn,
    reservation_id: &ReservationId,
) -> Result<Reservation> {
    let (row, status) = reservations::find(conn, reservation_id)
        .await?
        .ok_or(Error::NotFound("reservation"))?;
    Ok(to_reservation(row, status))
}

/// Locks the reservation's seat row (after the user row, before the reservation row).
pub(crate) async fn lock_seat(conn: &mut Conn, reservation: &Reservation) -> Result<()> {
    Ok(seats::lock(conn, reservation.seat()).await?)
}

/// Locks the reservation row (after the user and seat rows, by the global lock order).
pub(crate) async fn lock_reservation(
    conn: &mut Conn,
    reservation_id: &ReservationId,
) -> Result<ReservationRow> {
    reservations::lock(conn, reservation_id)
        .await?
        .ok_or(Error::NotFound("reservation"))
}

/// Releases lapsed holds: seats back to AVAILABLE, reservations to EXPIRED. Each statement is its
/// own short transaction over at most `batch` rows, so the sweeper never holds locks for long.
pub async fn sweep_expired_holds(services: &Services, batch: u32) -> Result<(usize, usize)> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let seats_freed = seats::sweep_lapsed(conn, batch).await?;
        let expired = reservations::sweep_lapsed(conn, batch).await?;
        if seats_freed + expired > 0 {
            tracing::debug!(seats_freed, expired, "swept expired holds");
        }
        Ok((seats_freed, expired))
    })
    .await
}

pub(crate) fn to_reservation(
    row: ReservationRow,
    effective_status: ReservationStatus,
) -> Reservation {
    Reservation {
        status: effective_status,
        id: row.id,
        user_id: row.user_id,
        concert_id: row.concert_id,
        date: row.date,
        seat_number: row.seat_number,
        price: Money::from_stored(row.price),
        held_until: utc(row.held_until),
    }
}
