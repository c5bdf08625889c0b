//! `price_tiers`: which seats of a concert's dates cost what, and what they are called.

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::ids::ConcertId;
use super::models::PriceTierRow;
use super::schema::price_tiers;

pub async fn insert(conn: &mut Conn, rows: &[PriceTierRow]) -> Result<(), DieselError> {
    diesel::insert_into(price_tiers::table)
        .values(rows)
        .execute(conn)
        .await
        .map(drop)
}

/// A concert's tiers by first seat.
pub async fn of_concert(
    conn: &mut Conn,
    concert: &ConcertId,
) -> Result<Vec<PriceTierRow>, DieselError> {
    price_tiers::table
        .filter(price_tiers::concert_id.eq(concert))
        .order(price_tiers::from_seat.asc())
        .select(PriceTierRow::as_select())
        .load(conn)
        .await
}

/// Every tier of every concert, by concert then first seat.
pub async fn all(conn: &mut Conn) -> Result<Vec<PriceTierRow>, DieselError> {
    price_tiers::table
        .order((price_tiers::concert_id.asc(), price_tiers::from_seat.asc()))
        .select(PriceTierRow::as_select())
        .load(conn)
        .await
}

/// Whether the concert has a tier called `name`.
pub async fn has_name(
    conn: &mut Conn,
    concert: &ConcertId,
    name: &str,
) -> Result<bool, DieselError> {
    let found: Option<String> = price_tiers::table
        .filter(price_tiers::concert_id.eq(concert))
        .filter(price_tiers::name.eq(name))
        .select(price_tiers::name)
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}
