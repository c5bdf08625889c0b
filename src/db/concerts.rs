//! `concerts` and `concert_dates`.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::ids::ConcertId;
use super::models::{ConcertDateRow, ConcertRow};
use super::schema::{concert_dates, concerts};

/// Every concert, by title.
pub async fn all(conn: &mut Conn) -> Result<Vec<ConcertRow>, DieselError> {
    concerts::table
        .order((concerts::title.asc(), concerts::id.asc()))
        .select(ConcertRow::as_select())
        .load(conn)
        .await
}

/// Every date of every concert, by concert then date.
pub async fn all_dates(conn: &mut Conn) -> Result<Vec<ConcertDateRow>, DieselError> {
    concert_dates::table
        .order((concert_dates::concert_id.asc(), concert_dates::date.asc()))
        .select(ConcertDateRow::as_select())
        .load(conn)
        .await
}

pub async fn find(conn: &mut Conn, id: &ConcertId) -> Result<Option<ConcertRow>, DieselError> {
    concerts::table
        .find(id)
        .select(ConcertRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Locks the concert row for the rest of the transaction (adding dates).
pub async fn lock(conn: &mut Conn, id: &ConcertId) -> Result<Option<ConcertRow>, DieselError> {
    concerts::table
        .find(id)
        .select(ConcertRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// A concert's dates, in order.
pub async fn dates_of(conn: &mut Conn, id: &ConcertId) -> Result<Vec<NaiveDate>, DieselError> {
    concert_dates::table
        .filter(concert_dates::concert_id.eq(id))
        .order(concert_dates::date.asc())
        .select(concert_dates::date)
        .load(conn)
        .await
}

pub async fn insert_dates(conn: &mut Conn, dates: &[ConcertDateRow]) -> Result<(), DieselError> {
    diesel::insert_into(concert_dates::table)
        .values(dates)
        .execute(conn)
        .await
        .map(drop)
}

pub async fn count(conn: &mut Conn) -> Result<i64, DieselError> {
    concerts::table.count().get_result(conn).await
}

pub async fn exists(conn: &mut Conn, id: &ConcertId) -> Result<bool, DieselError> {
    let found: Option<ConcertId> = concerts::table
        .find(id)
        .select(concerts::id)
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

pub async fn has_date(
    conn: &mut Conn,
    id: &ConcertId,
    date: NaiveDate,
) -> Result<bool, DieselError> {
    let found: Option<ConcertId> = concert_dates::table
        .find((id, date))
        .select(concert_dates::concert_id)
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

/// What taking seats of a concert's date depends on: its rows and its fair share (None: the
/// configured defaults). None when the concert does not have that date.
pub async fn hold_terms(
    conn: &mut Conn,
    id: &ConcertId,
    date: NaiveDate,
) -> Result<Option<(Option<i16>, Option<i16>)>, DieselError> {
    concerts::table
        .inner_join(concert_dates::table.on(concert_dates::concert_id.eq(concerts::id)))
        .filter(concerts::id.eq(id))
        .filter(concert_dates::date.eq(date))
        .select((concerts::seats_per_row, concerts::max_tickets_per_fan))
        .first(conn)
        .await
        .optional()
}

/// Sets a concert's fair share (None: the configured default).
pub async fn set_max_tickets_per_fan(
    conn: &mut Conn,
    id: &ConcertId,
    max: Option<i16>,
) -> Result<(), DieselError> {
    diesel::update(concerts::table.find(id))
        .set(concerts::max_tickets_per_fan.eq(max))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn insert(
    conn: &mut Conn,
    concert: &ConcertRow,
    dates: &[ConcertDateRow],
) -> Result<(), DieselError> {
    diesel::insert_into(concerts::table)
        .values(concert)
        .execute(conn)
        .await?;
    diesel::insert_into(concert_dates::table)
        .values(dates)
        .execute(conn)
        .await?;
    Ok(())
}
