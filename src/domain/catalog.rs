//! Concerts, their dates and the seat map. Seat status is computed against the database clock in
//! the query itself, so a lapsed hold reads AVAILABLE before any sweeper has run.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::error::{Error, Result};
use super::money::Money;
use super::services::Services;
use super::time::utc;
use crate::db::ids::{ConcertId, SeatNumber};
use crate::db::models::{ConcertRow, PriceTierRow, SaleRow};
use crate::db::{Conn, concerts, price_tiers, queue_rooms, sales, seats};

#[derive(Debug, Clone)]
pub struct Concert {
    pub id: ConcertId,
    pub title: String,
    pub venue: String,
    pub description: Option<String>,
    /// The lowest seat price.
    pub price: Money,
    pub dates: Vec<NaiveDate>,
    pub seats_per_date: i32,
    /// Seats per row (None: the whole date is one row).
    pub seats_per_row: Option<i32>,
    /// The concert's own fair share (None: the configured `MAX_TICKETS_PER_FAN`).
    pub max_tickets_per_fan: Option<u32>,
    /// Seat ranges and their prices, by first seat; they cover every seat once.
    pub price_tiers: Vec<PriceTier>,
    /// When a scheduled sale opens (None: none scheduled).
    pub sale_opens_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The waiting room lets people into a line: no sale was ever set up (older concerts), or
    /// its sale has opened. False before (not scheduled, or scheduled for later).
    pub on_sale: bool,
    /// Every seat is sold: the waiting room is closed (it reopens if seats come back).
    pub sold_out: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTier {
    pub name: String,
    pub from_seat: SeatNumber,
    pub to_seat: SeatNumber,
    pub price: Money,
}

impl From<PriceTierRow> for PriceTier {
    fn from(row: PriceTierRow) -> Self {
        Self {
            name: row.name,
            from_seat: row.from_seat,
            to_seat: row.to_seat,
            price: Money::from_stored(row.price),
        }
    }
}

pub use crate::db::states::SeatStatus;

#[derive(Debug, Clone)]
pub struct Seat {
    pub number: SeatNumber,
    pub status: SeatStatus,
    pub price: Money,
    /// The name of the seat's price tier.
    pub tier: String,
    /// The seat's row, from 1 (nearest the stage).
    pub row: i16,
}

/// All concerts with their dates, tiers and sale, in a fixed number of queries whatever the
/// number of concerts.
pub async fn concerts(services: &Services) -> Result<Vec<Concert>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let rows = concerts::all(conn).await?;
        let mut dates: HashMap<ConcertId, Vec<NaiveDate>> = HashMap::new();
        for d in concerts::all_dates(conn).await? {
            dates.entry(d.concert_id).or_default().push(d.date);
        }
        let mut tiers: HashMap<ConcertId, Vec<PriceTierRow>> = HashMap::new();
        for t in price_tiers::all(conn).await? {
            tiers.entry(t.concert_id.clone()).or_default().push(t);
        }
        let mut sales: HashMap<ConcertId, SaleRow> = sales::all(conn)
            .await?
            .into_iter()
            .map(|s| (s.concert_id.clone(), s))
            .collect();
        let sold_out: HashMap<ConcertId, bool> = queue_rooms::sold_out_flags(conn)
            .await?
            .into_iter()
            .collect();
        Ok(rows
            .into_iter()
            .map(|row| {
                let id = row.id.clone();
                to_concert(
                    row,
                    dates.remove(&id).unwrap_or_default(),
                    tiers.remove(&id).unwrap_or_default(),
                    sales.remove(&id),
                    sold_out.get(&id).copied().unwrap_or(false),
                )
            })
            .collect())
    })
    .await
}

/// One concert with its dates, tiers and sale.
pub async fn concert(services: &Services, concert_id: &ConcertId) -> Result<Concert> {
    with_conn!(services.db, async |conn: &mut Conn| {
        concert_in(conn, concert_id).await
    })
    .await
}

pub(crate) async fn concert_in(conn: &mut Conn, concert_id: &ConcertId) -> Result<Concert> {
    let row = concerts::find(conn, concert_id)
        .await?
        .ok_or(Error::NotFound("concert"))?;
    let dates = concerts::dates_of(conn, concert_id).await?;
    let tiers = price_tiers::of_concert(conn, concert_id).await?;
    let sale = sales::find(conn, concert_id).await?;
    let sold_out = queue_rooms::sold_out(conn, concert_id).await?;
    Ok(to_concert(row, dates, tiers, sale, sold_out))
}

fn to_concert(
    row: ConcertRow,
    dates: Vec<NaiveDate>,
    tiers: Vec<PriceTierRow>,
    sale: Option<SaleRow>,
    sold_out: bool,
) -> Concert {
    let price_tiers: Vec<PriceTier> = tiers.into_iter().map(PriceTier::from).collect();
    let price = price_tiers
        .iter()
        .map(|t| t.price.clone())
        .min()
        .unwrap_or_else(|| Money::from_stored(row.price.clone()));
    Concert {
        id: row.id,
        title: row.title,
        venue: row.venue,
        description: row.description,
        price,
        dates,
        seats_per_date: row.seats_per_date.into(),
        seats_per_row: row.seats_per_row.map(i32::from),
        max_tickets_per_fan: row.max_tickets_per_fan.and_then(|n| u32::try_from(n).ok()),
        price_tiers,
        sale_opens_at: sale.as_ref().and_then(|s| s.opens_at).map(utc),
        on_sale: sale.is_none_or(|s| s.drawn_at.is_some()),
        sold_out,
    }
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
    fn from((number, status, price, tier, row): seats::SeatView) -> Self {
        Self {
            number,
            status,
            price: Money::from_stored(price),
            tier,
            row,
        }
    }
}
