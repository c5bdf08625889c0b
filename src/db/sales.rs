//! `sales`: a concert's scheduled sale (pre-queue and opening times, the committed seed, the
//! draw). A concert without a row is on sale.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::RunQueryDsl;

use super::cached::Cached;
use super::ids::ConcertId;
use super::models::SaleRow;
use super::schema::sales;
use super::{Conn, utc_now};

pub async fn find(conn: &mut Conn, concert: &ConcertId) -> Result<Option<SaleRow>, DieselError> {
    sales::table
        .find(concert)
        .select(SaleRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Locks the sale row for the rest of the transaction (after the room row).
pub async fn lock(conn: &mut Conn, concert: &ConcertId) -> Result<Option<SaleRow>, DieselError> {
    sales::table
        .find(concert)
        .select(SaleRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Writes the sale (a new one, or a reschedule before its pre-queue opened).
pub async fn upsert(conn: &mut Conn, row: &SaleRow) -> Result<(), DieselError> {
    diesel::replace_into(sales::table)
        .values(row)
        .execute(conn)
        .await
        .map(drop)
}

/// Every sale, for the concert list.
pub async fn all(conn: &mut Conn) -> Result<Vec<SaleRow>, DieselError> {
    sales::table.select(SaleRow::as_select()).load(conn).await
}

/// Sales whose opening time has come (database clock) and whose pre-queue is not drawn yet.
pub async fn due(conn: &mut Conn) -> Result<Vec<ConcertId>, DieselError> {
    sales::table
        .filter(sales::drawn_at.is_null())
        .filter(sales::opens_at.assume_not_null().le(utc_now()))
        .filter(sales::opens_at.is_not_null())
        .select(sales::concert_id)
        .load(conn)
        .await
}

pub async fn set_prequeued(
    conn: &mut Conn,
    concert: &ConcertId,
    prequeued: i64,
) -> Result<(), DieselError> {
    Cached(diesel::update(sales::table.find(concert)).set(sales::prequeued.eq(prequeued)))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn mark_drawn(
    conn: &mut Conn,
    concert: &ConcertId,
    at: NaiveDateTime,
) -> Result<(), DieselError> {
    diesel::update(sales::table.find(concert))
        .set(sales::drawn_at.eq(at))
        .execute(conn)
        .await
        .map(drop)
}
