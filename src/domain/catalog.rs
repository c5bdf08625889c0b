//! Concerts, their dates and the seat map. Seat status is computed against the database clock in
//! the query itself, so a lapsed hold reads AVAILABLE before any sweeper has run.

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel_async::RunQueryDsl;

use super::error::{Error, Result};
use super::inputs::SEATS_PER_DATE;
use super::money::Money;
use super::{Services, new_id};
use crate::db::models::{ConcertDateRow, ConcertRow, SeatRow};
use crate::db::schema::{concert_dates, concerts, queue_rooms, seats};
use crate::db::{self, Conn};

#[derive(Debug, Clone)]
pub struct Concert {
    pub id: String,
    pub title: String,
    pub venue: String,
    pub price: Money,
    pub dates: Vec<NaiveDate>,
}

pub use crate::db::states::SeatStatus;

#[derive(Debug, Clone)]
pub struct Seat {
    pub number: i32,
    pub status: SeatStatus,
    pub price: Money,
}

/// SQL for a seat's status as clients see it: a HELD seat whose deadline has passed is AVAILABLE.
const EFFECTIVE_SEAT_STATUS: &str = "CASE WHEN seats.status = 'HELD' AND seats.held_until <= UTC_TIMESTAMP(6) \
     THEN 'AVAILABLE' ELSE seats.status END";

/// SQL condition: the seat can be taken now.
pub(crate) const SEAT_IS_FREE: &str = "(seats.status = 'AVAILABLE' OR (seats.status = 'HELD' AND seats.held_until <= UTC_TIMESTAMP(6)))";

/// All concerts with their dates, in two queries whatever the number of concerts.
pub async fn concerts(services: &Services) -> Result<Vec<Concert>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let rows: Vec<ConcertRow> = concerts::table
            .order((concerts::title.asc(), concerts::id.asc()))
            .select(ConcertRow::as_select())
            .load(conn)
            .await?;
        let dates: Vec<ConcertDateRow> = concert_dates::table
            .order((concert_dates::concert_id.asc(), concert_dates::date.asc()))
            .select(ConcertDateRow::as_select())
            .load(conn)
            .await?;
        let mut by_concert: HashMap<String, Vec<NaiveDate>> = HashMap::new();
        for d in dates {
            by_concert.entry(d.concert_id).or_default().push(d.date);
        }
        Ok(rows
            .into_iter()
            .map(|row| Concert {
                dates: by_concert.remove(&row.id).unwrap_or_default(),
                id: row.id,
                title: row.title,
                venue: row.venue,
                price: Money::from_stored(row.price),
            })
            .collect())
    })
    .await
}

pub(crate) async fn ensure_concert(conn: &mut Conn, concert_id: &str) -> Result<()> {
    let found: Option<String> = concerts::table
        .find(concert_id)
        .select(concerts::id)
        .first(conn)
        .await
        .optional()?;
    found.map(|_| ()).ok_or(Error::NotFound("concert"))
}

pub(crate) async fn ensure_date(conn: &mut Conn, concert_id: &str, date: NaiveDate) -> Result<()> {
    let found: Option<String> = concert_dates::table
        .find((concert_id, date))
        .select(concert_dates::concert_id)
        .first(conn)
        .await
        .optional()?;
    found.map(|_| ()).ok_or(Error::NotFound("concert date"))
}

/// Dates from today on (database clock) that still have a seat one could take.
pub async fn available_dates(services: &Services, concert_id: &str) -> Result<Vec<NaiveDate>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        ensure_concert(conn, concert_id).await?;
        Ok(seats::table
            .filter(seats::concert_id.eq(concert_id))
            .filter(sql::<Bool>("seats.date >= UTC_DATE()"))
            .filter(sql::<Bool>(SEAT_IS_FREE))
            .select(seats::date)
            .distinct()
            .order(seats::date.asc())
            .load(conn)
            .await?)
    })
    .await
}

/// The seat map of one date, numbers 1..=50.
pub async fn seats(services: &Services, concert_id: &str, date: NaiveDate) -> Result<Vec<Seat>> {
    with_conn!(services.db, async |conn: &mut Conn| seat_map(
        conn, concert_id, date
    )
    .await)
    .await
}

/// [`seats`] on a connection the caller already holds.
pub(crate) async fn seat_map(
    conn: &mut Conn,
    concert_id: &str,
    date: NaiveDate,
) -> Result<Vec<Seat>> {
    ensure_date(conn, concert_id, date).await?;
    let rows: Vec<SeatViewRow> = seats::table
        .filter(seats::concert_id.eq(concert_id))
        .filter(seats::date.eq(date))
        .order(seats::number.asc())
        .select(seat_view())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(Seat::from).collect())
}

/// A seat as clients see it, read with [`seat_view`]: number, effective status, price.
pub(crate) type SeatViewRow = (i16, SeatStatus, bigdecimal::BigDecimal);

/// The columns of [`SeatViewRow`], the status computed on the database clock.
pub(crate) fn seat_view() -> (
    seats::number,
    diesel::expression::SqlLiteral<Text>,
    seats::price,
) {
    (
        seats::number,
        sql::<Text>(EFFECTIVE_SEAT_STATUS),
        seats::price,
    )
}

impl From<SeatViewRow> for Seat {
    fn from((number, status, price): SeatViewRow) -> Self {
        Self {
            number: number.into(),
            status,
            price: Money::from_stored(price),
        }
    }
}

/// Creates a concert with its dates, 50 seats per date and an empty waiting room.
pub async fn create_concert(
    conn: &mut Conn,
    title: &str,
    venue: &str,
    price: &Money,
    dates: &[NaiveDate],
) -> Result<String> {
    let now = db::now(conn).await?;
    let id = new_id();
    diesel::insert_into(concerts::table)
        .values(&ConcertRow {
            id: id.clone(),
            title: title.to_owned(),
            venue: venue.to_owned(),
            price: price.as_decimal().clone(),
            created_at: now,
        })
        .execute(conn)
        .await?;
    let date_rows: Vec<ConcertDateRow> = dates
        .iter()
        .map(|&date| ConcertDateRow {
            concert_id: id.clone(),
            date,
        })
        .collect();
    diesel::insert_into(concert_dates::table)
        .values(&date_rows)
        .execute(conn)
        .await?;
    let seat_rows: Vec<SeatRow> = dates
        .iter()
        .flat_map(|&date| {
            (1..=SEATS_PER_DATE as i16).map({
                let id = id.clone();
                move |number| SeatRow {
                    concert_id: id.clone(),
                    date,
                    number,
                    price: price.as_decimal().clone(),
                    status: SeatStatus::Available,
                    held_by: None,
                    held_until: None,
                    reservation_id: None,
                    updated_at: now,
                }
            })
        })
        .collect();
    diesel::insert_into(seats::table)
        .values(&seat_rows)
        .execute(conn)
        .await?;
    diesel::insert_into(queue_rooms::table)
        .values(queue_rooms::concert_id.eq(&id))
        .execute(conn)
        .await?;
    Ok(id)
}
