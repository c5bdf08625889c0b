//! Concerts, their dates and the seat map. Seat status is computed against the database clock in
//! the query itself, so a lapsed hold reads AVAILABLE before any sweeper has run.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::Services;
use super::error::{Error, Result};
use super::inputs::SEATS_PER_DATE;
use super::money::Money;
use crate::db::ids::ConcertId;
use crate::db::models::{ConcertDateRow, ConcertRow, SeatRow};
use crate::db::{self, Conn, concerts, queue_rooms, seats};

#[derive(Debug, Clone)]
pub struct Concert {
    pub id: ConcertId,
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

/// All concerts with their dates, in two queries whatever the number of concerts.
pub async fn concerts(services: &Services) -> Result<Vec<Concert>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let rows = concerts::all(conn).await?;
        let mut by_concert: HashMap<ConcertId, Vec<NaiveDate>> = HashMap::new();
        for d in concerts::all_dates(conn).await? {
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

pub(crate) async fn ensure_concert(conn: &mut Conn, concert_id: &ConcertId) -> Result<()> {
    if concerts::exists(conn, concert_id).await? {
        Ok(())
    } else {
        Err(Error::NotFound("concert"))
    }
}

pub(crate) async fn ensure_date(
    conn: &mut Conn,
    concert_id: &ConcertId,
    date: NaiveDate,
) -> Result<()> {
    if concerts::has_date(conn, concert_id, date).await? {
        Ok(())
    } else {
        Err(Error::NotFound("concert date"))
    }
}

/// Dates from today on (database clock) that still have a seat one could take.
pub async fn available_dates(
    services: &Services,
    concert_id: &ConcertId,
) -> Result<Vec<NaiveDate>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        ensure_concert(conn, concert_id).await?;
        Ok(seats::dates_with_free_seats(conn, concert_id).await?)
    })
    .await
}

/// The seat map of one date, numbers 1..=50 (`live::seat_map` serves it, from memory when it can).
pub(crate) async fn seat_map(
    conn: &mut Conn,
    concert_id: &ConcertId,
    date: NaiveDate,
) -> Result<Vec<Seat>> {
    ensure_date(conn, concert_id, date).await?;
    let rows = seats::of_date(conn, concert_id, date).await?;
    Ok(rows.into_iter().map(Seat::from).collect())
}

impl From<seats::SeatView> for Seat {
    fn from((number, status, price): seats::SeatView) -> Self {
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
) -> Result<ConcertId> {
    let now = db::now(conn).await?;
    let id = ConcertId::new();
    let concert = ConcertRow {
        id: id.clone(),
        title: title.to_owned(),
        venue: venue.to_owned(),
        price: price.as_decimal().clone(),
        created_at: now,
    };
    let date_rows: Vec<ConcertDateRow> = dates
        .iter()
        .map(|&date| ConcertDateRow {
            concert_id: id.clone(),
            date,
        })
        .collect();
    concerts::insert(conn, &concert, &date_rows).await?;
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
    seats::insert(conn, &seat_rows).await?;
    queue_rooms::insert(conn, &id).await?;
    Ok(id)
}
