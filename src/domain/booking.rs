//! Holds: taking a seat for a few minutes, releasing it, and tidying lapsed holds.
//!
//! One conditional UPDATE on the seat row decides who gets a seat: it matches only a seat that is
//! AVAILABLE or whose hold deadline has passed by the database clock, so exactly one of any number
//! of racing callers sees one affected row. Expiry needs no background job to be correct; the
//! sweeper only makes the stored rows say what the queries already compute.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel_async::RunQueryDsl;

use super::accounts::lock_user;
use super::catalog::{SEAT_IS_FREE, SeatStatus, ensure_date};
use super::error::{Error, Result};
use super::inputs::SeatNumber;
use super::money::Money;
use super::{Services, chrono_duration, new_id, queue, utc};
use crate::db::models::ReservationRow;
use crate::db::schema::{reservations, seats};
use crate::db::{self, Conn};

pub use crate::db::states::ReservationStatus;

#[derive(Debug, Clone)]
pub struct Reservation {
    pub id: String,
    pub user_id: String,
    pub concert_id: String,
    pub date: NaiveDate,
    pub seat_number: i32,
    pub price: Money,
    pub status: ReservationStatus,
    pub held_until: chrono::DateTime<chrono::Utc>,
}

/// SQL for a reservation's status as clients see it: HELD past its deadline reads EXPIRED.
const EFFECTIVE_RESERVATION_STATUS: &str = "CASE WHEN reservations.status = 'HELD' AND reservations.held_until <= UTC_TIMESTAMP(6) \
     THEN 'EXPIRED' ELSE reservations.status END";

/// Holds seat `number` of `date` for the caller until `now + HOLD_TTL`.
pub async fn hold_seat(
    services: &Services,
    user_id: &str,
    concert_id: &str,
    date: NaiveDate,
    seat: SeatNumber,
    queue_token: &str,
) -> Result<Reservation> {
    let rules = &services.rules;
    // One transaction that returns the hold it wrote: no second checkout to read it back.
    let reservation = transaction!(services.db, async |conn: &mut Conn| {
        ensure_date(conn, concert_id, date).await?;
        lock_user(conn, user_id).await?;
        let held: i64 = reservations::table
            .filter(reservations::user_id.eq(user_id))
            .filter(reservations::concert_id.eq(concert_id))
            .filter(reservations::date.eq(date))
            .filter(reservations::status.eq(ReservationStatus::Held))
            .filter(sql::<Bool>("reservations.held_until > UTC_TIMESTAMP(6)"))
            .count()
            .get_result(conn)
            .await?;
        if held >= i64::from(rules.max_holds_per_date) {
            return Err(Error::HoldLimitReached(rules.max_holds_per_date));
        }

        let now = db::now(conn).await?;
        let held_until = now + chrono_duration(rules.hold_ttl);
        let reservation_id = new_id();
        let taken = diesel::update(seats::table.find((concert_id, date, seat.get())))
            .filter(sql::<Bool>(SEAT_IS_FREE))
            .set((
                seats::status.eq(SeatStatus::Held),
                seats::held_by.eq(user_id),
                seats::held_until.eq(held_until),
                seats::reservation_id.eq(&reservation_id),
                seats::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        if taken != 1 {
            return Err(Error::SeatUnavailable);
        }
        // The seat may have been taken over from a lapsed hold: that hold's record now says so.
        diesel::update(reservations::table)
            .filter(reservations::concert_id.eq(concert_id))
            .filter(reservations::date.eq(date))
            .filter(reservations::seat_number.eq(seat.get()))
            .filter(reservations::status.eq(ReservationStatus::Held))
            .filter(reservations::held_until.le(now))
            .set((
                reservations::status.eq(ReservationStatus::Expired),
                reservations::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        let price: bigdecimal::BigDecimal = seats::table
            .find((concert_id, date, seat.get()))
            .select(seats::price)
            .first(conn)
            .await?;
        let row = ReservationRow {
            id: reservation_id,
            user_id: user_id.to_owned(),
            concert_id: concert_id.to_owned(),
            date,
            seat_number: seat.get(),
            price,
            status: ReservationStatus::Held,
            held_until,
            created_at: now,
            updated_at: now,
        };
        diesel::insert_into(reservations::table)
            .values(&row)
            .execute(conn)
            .await?;
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
    user_id: &str,
    reservation_id: &str,
) -> Result<Reservation> {
    let current = reservation(services, reservation_id).await?;
    if current.user_id != user_id {
        return Err(Error::Forbidden(
            "this reservation belongs to another user".into(),
        ));
    }
    match current.status {
        ReservationStatus::Cancelled => return Ok(current),
        ReservationStatus::Expired => return Err(Error::HoldExpired),
        ReservationStatus::Paid => {
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
        match stored_status(&row, now) {
            ReservationStatus::Held => {}
            ReservationStatus::Cancelled => return Ok(()),
            ReservationStatus::Expired => return Err(Error::HoldExpired),
            ReservationStatus::Paid => {
                return Err(Error::bad_input(
                    "this reservation is paid; a paid seat cannot be released",
                ));
            }
        }
        free_seat(conn, &row, now).await?;
        diesel::update(reservations::table.find(reservation_id))
            .set((
                reservations::status.eq(ReservationStatus::Cancelled),
                reservations::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
    .await?;
    reservation(services, reservation_id).await
}

/// The caller's reservations, newest first.
pub async fn my_reservations(services: &Services, user_id: &str) -> Result<Vec<Reservation>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let rows: Vec<(ReservationRow, ReservationStatus)> = reservations::table
            .filter(reservations::user_id.eq(user_id))
            .order((reservations::created_at.desc(), reservations::id.desc()))
            .select((
                ReservationRow::as_select(),
                sql::<Text>(EFFECTIVE_RESERVATION_STATUS),
            ))
            .load(conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(row, status)| to_reservation(row, status))
            .collect())
    })
    .await
}

pub async fn reservation(services: &Services, reservation_id: &str) -> Result<Reservation> {
    with_conn!(services.db, async |conn: &mut Conn| {
        find_reservation(conn, reservation_id).await
    })
    .await
}

pub(crate) async fn find_reservation(conn: &mut Conn, reservation_id: &str) -> Result<Reservation> {
    let (row, status): (ReservationRow, ReservationStatus) = reservations::table
        .find(reservation_id)
        .select((
            ReservationRow::as_select(),
            sql::<Text>(EFFECTIVE_RESERVATION_STATUS),
        ))
        .first(conn)
        .await
        .optional()?
        .ok_or(Error::NotFound("reservation"))?;
    Ok(to_reservation(row, status))
}

/// Locks the reservation's seat row (after the user row, before the reservation row).
pub(crate) async fn lock_seat(conn: &mut Conn, reservation: &Reservation) -> Result<()> {
    let number =
        i16::try_from(reservation.seat_number).map_err(|_| Error::corrupt("seat number"))?;
    seats::table
        .find((&reservation.concert_id, reservation.date, number))
        .select(seats::number)
        .for_update()
        .first::<i16>(conn)
        .await?;
    Ok(())
}

/// Locks the reservation row (after the user and seat rows, by the global lock order).
pub(crate) async fn lock_reservation(
    conn: &mut Conn,
    reservation_id: &str,
) -> Result<ReservationRow> {
    reservations::table
        .find(reservation_id)
        .select(ReservationRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(Error::NotFound("reservation"))
}

/// A locked row's status against a database time read in the same transaction.
pub(crate) fn stored_status(row: &ReservationRow, now: NaiveDateTime) -> ReservationStatus {
    if row.status == ReservationStatus::Held && row.held_until <= now {
        ReservationStatus::Expired
    } else {
        row.status
    }
}

/// Makes a held seat available again, only if this reservation still holds it.
async fn free_seat(conn: &mut Conn, row: &ReservationRow, now: NaiveDateTime) -> Result<()> {
    diesel::update(seats::table.find((&row.concert_id, row.date, row.seat_number)))
        .filter(seats::reservation_id.eq(&row.id))
        .filter(seats::status.eq(SeatStatus::Held))
        .set((
            seats::status.eq(SeatStatus::Available),
            seats::held_by.eq(None::<String>),
            seats::held_until.eq(None::<NaiveDateTime>),
            seats::reservation_id.eq(None::<String>),
            seats::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Releases lapsed holds: seats back to AVAILABLE, reservations to EXPIRED. Each statement is its
/// own short transaction over at most `batch` rows, so the sweeper never holds locks for long.
pub async fn sweep_expired_holds(services: &Services, batch: u32) -> Result<(usize, usize)> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let seats_freed = diesel::sql_query(
            "UPDATE seats SET status = 'AVAILABLE', held_by = NULL, held_until = NULL, \
             reservation_id = NULL, updated_at = UTC_TIMESTAMP(6) \
             WHERE status = 'HELD' AND held_until <= UTC_TIMESTAMP(6) LIMIT ?",
        )
        .bind::<diesel::sql_types::Unsigned<diesel::sql_types::Integer>, _>(batch)
        .execute(conn)
        .await?;
        let expired = diesel::sql_query(
            "UPDATE reservations SET status = 'EXPIRED', updated_at = UTC_TIMESTAMP(6) \
             WHERE status = 'HELD' AND held_until <= UTC_TIMESTAMP(6) LIMIT ?",
        )
        .bind::<diesel::sql_types::Unsigned<diesel::sql_types::Integer>, _>(batch)
        .execute(conn)
        .await?;
        if seats_freed + expired > 0 {
            tracing::debug!(seats_freed, expired, "swept expired holds");
        }
        Ok((seats_freed, expired))
    })
    .await
}

fn to_reservation(row: ReservationRow, effective_status: ReservationStatus) -> Reservation {
    Reservation {
        status: effective_status,
        id: row.id,
        user_id: row.user_id,
        concert_id: row.concert_id,
        date: row.date,
        seat_number: row.seat_number.into(),
        price: Money::from_stored(row.price),
        held_until: utc(row.held_until),
    }
}
