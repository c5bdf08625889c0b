//! The operator's side of the catalog: making a concert (its dates, a seat count per date, price
//! tiers over seat ranges) and adding dates to it. A concert and all its seats are written in one
//! transaction; a date's seats take their prices and tier names from the concert's tiers.

use chrono::NaiveDate;

use crate::db::ids::{ConcertId, SeatNumber, UserId};
use crate::db::models::{ConcertDateRow, ConcertRow, PriceTierRow, SeatRow};
use crate::db::states::SeatStatus;
use crate::db::{self, Conn, concerts, price_tiers, queue_rooms, sales, seats};
use crate::domain::accounts::require_operator;
use crate::domain::catalog::{self, Concert};
use crate::domain::error::{Error, Result};
use crate::domain::money::Money;
use crate::domain::services::Services;

mod request;

pub use request::{
    ConcertRequest, MAX_DATES, MAX_FAIR_SHARE, MAX_SEATS_PER_REQUEST, MAX_TIERS, NewConcert,
    SINGLE_TIER, TierRequest,
};
use request::{check_size, distinct_dates, fair_share};

/// An operator makes a concert: its row, tiers, every seat of every date, an empty waiting room
/// that takes nobody until the sale is scheduled. The caller's role is checked before the request.
pub async fn create_concert(
    services: &Services,
    operator: &UserId,
    request: ConcertRequest,
) -> Result<Concert> {
    let max_seats = services.rules.max_seats_per_date;
    transaction!(services.db, async |conn: &mut Conn| {
        require_operator(conn, operator).await?;
        let concert = NewConcert::parse(request.clone(), max_seats)?;
        ensure_future(conn, &concert.dates).await?;
        let id = insert(conn, &concert).await?;
        // Not on sale until its sale is scheduled: nobody gets in before the fair start.
        let now = db::now(conn).await?;
        sales::upsert(
            conn,
            &crate::domain::queue::sale::unscheduled(&id, operator, now),
        )
        .await?;
        catalog::concert_in(conn, &id).await
    })
    .await
}

/// What an operator may change on a concert after making it.
#[derive(Debug, Clone, Default)]
pub struct ConcertUpdate {
    /// Some(None): back to `MAX_TICKETS_PER_FAN`.
    pub max_tickets_per_fan: Option<Option<i32>>,
}

/// An operator changes a concert. A lower fair share applies to seats taken from then on:
/// nobody loses a seat already held or paid.
pub async fn update_concert(
    services: &Services,
    operator: &UserId,
    concert_id: &ConcertId,
    update: ConcertUpdate,
) -> Result<Concert> {
    let share = match update.max_tickets_per_fan {
        None => None,
        Some(None) => Some(None),
        Some(Some(n)) => Some(Some(fair_share(n)?)),
    };
    transaction!(services.db, async |conn: &mut Conn| {
        require_operator(conn, operator).await?;
        concerts::lock(conn, concert_id)
            .await?
            .ok_or(Error::NotFound("concert"))?;
        if let Some(share) = share {
            concerts::set_max_tickets_per_fan(conn, concert_id, share).await?;
        }
        catalog::concert_in(conn, concert_id).await
    })
    .await
}

/// An operator adds dates to a concert; each gets the concert's seats and tiers.
pub async fn add_dates(
    services: &Services,
    operator: &UserId,
    concert_id: &ConcertId,
    dates: &[NaiveDate],
) -> Result<Concert> {
    transaction!(services.db, async |conn: &mut Conn| {
        require_operator(conn, operator).await?;
        let dates = distinct_dates(dates)?;
        let row = concerts::lock(conn, concert_id)
            .await?
            .ok_or(Error::NotFound("concert"))?;
        check_size(dates.len(), row.seats_per_date)?;
        ensure_future(conn, &dates).await?;
        let existing = concerts::dates_of(conn, concert_id).await?;
        if let Some(taken) = dates.iter().find(|d| existing.contains(d)) {
            return Err(Error::bad_input(format!(
                "the concert already plays on {taken}"
            )));
        }
        if existing.len() + dates.len() > MAX_DATES {
            return Err(Error::bad_input(format!(
                "a concert may have at most {MAX_DATES} dates"
            )));
        }
        let tiers: Vec<catalog::PriceTier> = price_tiers::of_concert(conn, concert_id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect();
        let now = db::now(conn).await?;
        let date_rows: Vec<ConcertDateRow> = dates
            .iter()
            .map(|&date| ConcertDateRow {
                concert_id: concert_id.clone(),
                date,
            })
            .collect();
        concerts::insert_dates(conn, &date_rows).await?;
        insert_seats(
            conn,
            concert_id,
            &dates,
            row.seats_per_date,
            row.seats_per_row,
            &tiers,
            now,
        )
        .await?;
        catalog::concert_in(conn, concert_id).await
    })
    .await
}

/// Dates must be today or later on the database clock.
async fn ensure_future(conn: &mut Conn, dates: &[NaiveDate]) -> Result<()> {
    let today = db::now(conn).await?.date();
    if let Some(past) = dates.iter().find(|d| **d < today) {
        return Err(Error::bad_input(format!("{past} is in the past")));
    }
    Ok(())
}

/// Writes a checked concert: row, dates, tiers, seats, room. Returns its id.
pub(crate) async fn insert(conn: &mut Conn, concert: &NewConcert) -> Result<ConcertId> {
    let now = db::now(conn).await?;
    let id = ConcertId::new();
    let lowest = concert
        .tiers
        .iter()
        .map(|t| t.price.clone())
        .min()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("a concert without tiers")))?;
    let row = ConcertRow {
        id: id.clone(),
        title: concert.title.clone(),
        venue: concert.venue.clone(),
        price: lowest.as_decimal().clone(),
        created_at: now,
        description: concert.description.clone(),
        seats_per_date: concert.seats_per_date,
        seats_per_row: concert.seats_per_row,
        max_tickets_per_fan: concert.max_tickets_per_fan,
    };
    let date_rows: Vec<ConcertDateRow> = concert
        .dates
        .iter()
        .map(|&date| ConcertDateRow {
            concert_id: id.clone(),
            date,
        })
        .collect();
    concerts::insert(conn, &row, &date_rows).await?;
    let tier_rows: Vec<PriceTierRow> = concert
        .tiers
        .iter()
        .map(|t| PriceTierRow {
            concert_id: id.clone(),
            from_seat: t.from_seat,
            to_seat: t.to_seat,
            name: t.name.clone(),
            price: t.price.as_decimal().clone(),
        })
        .collect();
    price_tiers::insert(conn, &tier_rows).await?;
    insert_seats(
        conn,
        &id,
        &concert.dates,
        concert.seats_per_date,
        concert.seats_per_row,
        &concert.tiers,
        now,
    )
    .await?;
    queue_rooms::insert(conn, &id).await?;
    Ok(id)
}

/// Rows per seat insert: a 1,000-seat date is a few statements, not one huge one.
const SEAT_INSERT_CHUNK: usize = 2000;

async fn insert_seats(
    conn: &mut Conn,
    concert_id: &ConcertId,
    dates: &[NaiveDate],
    seats_per_date: i16,
    seats_per_row: Option<i16>,
    tiers: &[catalog::PriceTier],
    now: chrono::NaiveDateTime,
) -> Result<()> {
    let mut rows: Vec<SeatRow> = Vec::new();
    for &date in dates {
        for number in 1..=seats_per_date {
            let number = SeatNumber::new(number.into())
                .ok_or_else(|| Error::corrupt(format!("seat {number}")))?;
            let tier = tiers
                .iter()
                .find(|t| (t.from_seat..=t.to_seat).contains(&number))
                .ok_or_else(|| Error::corrupt(format!("no tier for seat {number}")))?;
            rows.push(SeatRow {
                concert_id: concert_id.clone(),
                date,
                number,
                seat_row: match seats_per_row {
                    Some(per_row) if per_row > 0 => (number.get() - 1) / per_row + 1,
                    _ => 1,
                },
                price: tier.price.as_decimal().clone(),
                status: SeatStatus::Available,
                held_by: None,
                held_until: None,
                reservation_id: None,
                updated_at: now,
                tier: tier.name.clone(),
            });
        }
    }
    for chunk in rows.chunks(SEAT_INSERT_CHUNK) {
        seats::insert(conn, chunk).await?;
    }
    Ok(())
}

/// Creates a concert with its dates, 50 seats per date at one price and an empty waiting room
/// (the demo seed, tests and benches; operators use [`create_concert`]).
pub async fn create_single_price_concert(
    conn: &mut Conn,
    title: &str,
    venue: &str,
    price: &Money,
    dates: &[NaiveDate],
) -> Result<ConcertId> {
    let spec = NewConcert::single_price(title, venue, price, dates);
    insert(conn, &spec).await
}
