//! `seats`: one row per seat of a date, the row whose conditional UPDATE decides who gets it.
//!
//! A HELD seat whose `held_until` has passed is free, by the database clock, before any sweeper
//! writes it. That rule is spelt once, as SQL text ([`lapsed_sql!`], [`free_sql!`],
//! [`live_hold_sql!`]), and every statement here that asks "can it be taken", "what do clients
//! see" or "how many are left" is built from those spellings.

use bigdecimal::BigDecimal;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{Bool, Integer, Text, Unsigned};
use diesel_async::RunQueryDsl;

use super::Conn;
use super::cached::{Cached, fixed_sql};
use super::ids::{ConcertId, ReservationId, SeatNumber, UserId};
use super::models::SeatRow;
use super::schema::seats;
use super::states::SeatStatus;

/// SQL: a HELD seat whose deadline has passed (free by the database clock, not yet swept).
macro_rules! lapsed_sql {
    () => {
        "(seats.status = 'HELD' AND seats.held_until <= UTC_TIMESTAMP(6))"
    };
}
/// SQL: the seat can be taken now (AVAILABLE, or its hold lapsed).
macro_rules! free_sql {
    () => {
        concat!("(seats.status = 'AVAILABLE' OR ", lapsed_sql!(), ")")
    };
}
/// SQL: the seat's date has no waitlist waiting (else its free seats are the waitlist's, not on
/// sale).
macro_rules! not_for_waitlist_sql {
    () => {
        "NOT EXISTS (SELECT 1 FROM concert_dates w WHERE w.concert_id = seats.concert_id \
         AND w.date = seats.date AND w.waitlist_waiting > 0)"
    };
}
/// SQL: the seat is held and its hold still runs.
macro_rules! live_hold_sql {
    () => {
        "(seats.status = 'HELD' AND seats.held_until > UTC_TIMESTAMP(6))"
    };
}

/// One seat: concert, date, number.
pub type SeatKey<'a> = (&'a ConcertId, NaiveDate, SeatNumber);

fixed_sql!(
    /// SQL condition: the seat can be taken now.
    IsFree: Bool = free_sql!()
);

fixed_sql!(
    /// SQL for a seat's status as clients see it: a HELD seat whose deadline has passed is
    /// AVAILABLE.
    pub EffectiveStatus: Text = concat!("CASE WHEN ", lapsed_sql!(), " THEN 'AVAILABLE' ELSE seats.status END")
);

fixed_sql!(
    /// SQL condition: the seat is held and its hold still runs.
    LiveHold: Bool = live_hold_sql!()
);

fixed_sql!(
    /// SQL condition: the seat's date has no waitlist waiting.
    NotForWaitlist: Bool = not_for_waitlist_sql!()
);

fixed_sql!(
    /// SQL condition: the seat's date is today or later, on the database clock.
    NotPast: Bool = "seats.date >= UTC_DATE()"
);

/// A seat as clients see it, read with [`view`]: number, effective status, price, tier, row.
pub type SeatView = (SeatNumber, SeatStatus, BigDecimal, String, i16);

/// The columns of [`SeatView`], the status computed on the database clock.
pub fn view() -> (
    seats::number,
    EffectiveStatus,
    seats::price,
    seats::tier,
    seats::seat_row,
) {
    (
        seats::number,
        EffectiveStatus,
        seats::price,
        seats::tier,
        seats::seat_row,
    )
}

/// The seat map of one date, by number.
pub async fn of_date(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
) -> Result<Vec<SeatView>, DieselError> {
    seats::table
        .filter(seats::concert_id.eq(concert))
        .filter(seats::date.eq(date))
        .order(seats::number.asc())
        .select(view())
        .load(conn)
        .await
}

/// Seats of one date written since `cursor`, or whose hold lapsed since then (those change
/// status without a write).
pub async fn changed_since(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
    cursor: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Vec<SeatView>, DieselError> {
    seats::table
        .filter(seats::concert_id.eq(concert))
        .filter(seats::date.eq(date))
        .filter(
            seats::updated_at.gt(cursor).or(seats::status
                .eq(SeatStatus::Held)
                .and(seats::held_until.assume_not_null().gt(cursor))
                .and(seats::held_until.assume_not_null().le(now))),
        )
        .select(view())
        .load(conn)
        .await
}

/// How many seats of a concert's dates from today on are free, held and sold now (database
/// clock: a lapsed hold counts as free).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName)]
pub struct Inventory {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub available: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub held: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub sold: i64,
}

pub async fn inventory(conn: &mut Conn, concert: &ConcertId) -> Result<Inventory, DieselError> {
    Cached(
        diesel::sql_query(concat!(
            "SELECT CAST(COALESCE(SUM(",
            free_sql!(),
            " AND ",
            not_for_waitlist_sql!(),
            "), 0) AS SIGNED) AS available, CAST(COALESCE(SUM(",
            live_hold_sql!(),
            "), 0) AS SIGNED) AS held, \
                 CAST(COALESCE(SUM(seats.status = 'SOLD'), 0) AS SIGNED) AS sold \
                 FROM seats WHERE concert_id = ? AND date >= UTC_DATE()"
        ))
        .bind::<Text, _>(concert),
    )
    .get_result(conn)
    .await
}

/// Whether a concert's dates from today on have a seat free now, a live hold, a sold seat: each
/// stops at the first match, so the statement is short unless the answer is no.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName)]
pub struct Availability {
    #[diesel(sql_type = Bool)]
    pub free: bool,
    #[diesel(sql_type = Bool)]
    pub held: bool,
    #[diesel(sql_type = Bool)]
    pub sold: bool,
}

pub async fn availability(
    conn: &mut Conn,
    concert: &ConcertId,
) -> Result<Availability, DieselError> {
    Cached(
        diesel::sql_query(
            concat!(
                "SELECT EXISTS(SELECT 1 FROM seats WHERE concert_id = ? AND date >= UTC_DATE() AND ",
                free_sql!(),
                " AND ",
                not_for_waitlist_sql!(),
                ") AS free, EXISTS(SELECT 1 FROM seats WHERE concert_id = ? AND date >= UTC_DATE() AND ",
                live_hold_sql!(),
                ") AS held, EXISTS(SELECT 1 FROM seats WHERE concert_id = ? AND date >= UTC_DATE() \
                 AND seats.status = 'SOLD') AS sold"
            ),
        )
        .bind::<Text, _>(concert)
        .bind::<Text, _>(concert)
        .bind::<Text, _>(concert),
    )
    .get_result(conn)
    .await
}

/// Dates from today on (database clock) with a seat one could take now.
pub async fn dates_with_free_seats(
    conn: &mut Conn,
    concert: &ConcertId,
) -> Result<Vec<NaiveDate>, DieselError> {
    seats::table
        .filter(seats::concert_id.eq(concert))
        .filter(NotPast)
        .filter(IsFree)
        .filter(NotForWaitlist)
        .select(seats::date)
        .distinct()
        .order(seats::date.asc())
        .load(conn)
        .await
}

/// The seats of one date that are free now (in `tier` when given), by number: a plain read,
/// for choosing; taking them is decided under lock.
pub async fn free_numbers(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
    tier: Option<&str>,
) -> Result<Vec<SeatNumber>, DieselError> {
    let mut query = seats::table
        .filter(seats::concert_id.eq(concert))
        .filter(seats::date.eq(date))
        .filter(IsFree)
        .into_boxed();
    if let Some(tier) = tier {
        query = query.filter(seats::tier.eq(tier.to_owned()));
    }
    query
        .order(seats::number.asc())
        .select(seats::number)
        .load(conn)
        .await
}

/// Locks those of `numbers` that are free now and not locked by another transaction (which are
/// skipped, never waited for): the seats this transaction may take without a lock wait.
pub async fn lock_free_skipping_locked(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
    numbers: &[SeatNumber],
) -> Result<Vec<SeatNumber>, DieselError> {
    seats::table
        .filter(seats::concert_id.eq(concert))
        .filter(seats::date.eq(date))
        .filter(seats::number.eq_any(numbers))
        .filter(IsFree)
        .order(seats::number.asc())
        .select(seats::number)
        .for_update()
        .skip_locked()
        .load(conn)
        .await
}

/// Locks the `count` lowest-numbered seats of the date (in `tier` when given) that are free and
/// not locked by another transaction (skipped, never waited for).
pub async fn lock_lowest_free(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
    tier: Option<&str>,
    count: usize,
) -> Result<Vec<SeatNumber>, DieselError> {
    let limit = i64::try_from(count).unwrap_or(i64::MAX);
    let of_date = seats::table
        .filter(seats::concert_id.eq(concert))
        .filter(seats::date.eq(date))
        .filter(IsFree)
        .order(seats::number.asc())
        .limit(limit)
        .select(seats::number);
    match tier {
        None => of_date.for_update().skip_locked().load(conn).await,
        Some(tier) => {
            of_date
                .filter(seats::tier.eq(tier))
                .for_update()
                .skip_locked()
                .load(conn)
                .await
        }
    }
}

/// Whether a seat of the date is held now (a live hold, database clock).
pub async fn has_live_hold(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
) -> Result<bool, DieselError> {
    let found: Option<SeatNumber> = seats::table
        .filter(seats::concert_id.eq(concert))
        .filter(seats::date.eq(date))
        .filter(LiveHold)
        .select(seats::number)
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

/// Of `numbers`, the seats of the date that exist (by number).
pub async fn existing(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
    numbers: &[SeatNumber],
) -> Result<Vec<SeatNumber>, DieselError> {
    seats::table
        .filter(seats::concert_id.eq(concert))
        .filter(seats::date.eq(date))
        .filter(seats::number.eq_any(numbers))
        .order(seats::number.asc())
        .select(seats::number)
        .load(conn)
        .await
}

/// Of `numbers`, the seats that cannot be taken now (held or sold), by number.
pub async fn taken_among(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
    numbers: &[SeatNumber],
) -> Result<Vec<SeatNumber>, DieselError> {
    seats::table
        .filter(seats::concert_id.eq(concert))
        .filter(seats::date.eq(date))
        .filter(seats::number.eq_any(numbers))
        .filter(diesel::dsl::not(IsFree))
        .order(seats::number.asc())
        .select(seats::number)
        .load(conn)
        .await
}

/// The prices of `numbers` (by number), read in the transaction that holds them.
pub async fn prices(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
    numbers: &[SeatNumber],
) -> Result<Vec<(SeatNumber, BigDecimal, String)>, DieselError> {
    seats::table
        .filter(seats::concert_id.eq(concert))
        .filter(seats::date.eq(date))
        .filter(seats::number.eq_any(numbers))
        .order(seats::number.asc())
        .select((seats::number, seats::price, seats::tier))
        .load(conn)
        .await
}

/// The decisive statement of a hold: marks the seat HELD for `holder` until `until` if it is free
/// now. True for exactly one of any number of racing callers.
pub async fn take(
    conn: &mut Conn,
    seat: SeatKey<'_>,
    holder: &UserId,
    reservation: &ReservationId,
    until: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<bool, DieselError> {
    let taken = Cached(diesel::update(seats::table.find(seat)).filter(IsFree).set((
        seats::status.eq(SeatStatus::Held),
        seats::held_by.eq(holder),
        seats::held_until.eq(until),
        seats::reservation_id.eq(reservation),
        seats::updated_at.eq(now),
    )))
    .execute(conn)
    .await?;
    Ok(taken == 1)
}

/// Locks the seats `numbers` of one date for the rest of the transaction, in number order (the
/// global lock order among seats).
pub async fn lock_all(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
    numbers: &[SeatNumber],
) -> Result<(), DieselError> {
    seats::table
        .filter(seats::concert_id.eq(concert))
        .filter(seats::date.eq(date))
        .filter(seats::number.eq_any(numbers))
        .order(seats::number.asc())
        .select(seats::number)
        .for_update()
        .load::<SeatNumber>(conn)
        .await
        .map(drop)
}

/// Makes the seat AVAILABLE again, only if it is `from` (HELD: a hold released; SOLD: a ticket
/// refunded) for `reservation`; true when it did.
pub async fn make_available(
    conn: &mut Conn,
    seat: SeatKey<'_>,
    reservation: &ReservationId,
    from: SeatStatus,
    now: NaiveDateTime,
) -> Result<bool, DieselError> {
    let freed = Cached(
        diesel::update(seats::table.find(seat))
            .filter(seats::reservation_id.eq(reservation))
            .filter(seats::status.eq(from))
            .set((
                seats::status.eq(SeatStatus::Available),
                seats::held_by.eq(None::<UserId>),
                seats::held_until.eq(None::<NaiveDateTime>),
                seats::reservation_id.eq(None::<ReservationId>),
                seats::updated_at.eq(now),
            )),
    )
    .execute(conn)
    .await?;
    Ok(freed == 1)
}

/// Marks the seat SOLD, only if `reservation` holds it; true when it did.
pub async fn sell(
    conn: &mut Conn,
    seat: SeatKey<'_>,
    reservation: &ReservationId,
    now: NaiveDateTime,
) -> Result<bool, DieselError> {
    let sold = Cached(
        diesel::update(seats::table.find(seat))
            .filter(seats::reservation_id.eq(reservation))
            .filter(seats::status.eq(SeatStatus::Held))
            .set((
                seats::status.eq(SeatStatus::Sold),
                seats::held_until.eq(None::<NaiveDateTime>),
                seats::updated_at.eq(now),
            )),
    )
    .execute(conn)
    .await?;
    Ok(sold == 1)
}

/// Writes up to `batch` lapsed holds back to AVAILABLE; how many it wrote.
pub async fn sweep_lapsed(conn: &mut Conn, batch: u32) -> Result<usize, DieselError> {
    diesel::sql_query(concat!(
        "UPDATE seats SET status = 'AVAILABLE', held_by = NULL, held_until = NULL, \
         reservation_id = NULL, updated_at = UTC_TIMESTAMP(6) WHERE ",
        lapsed_sql!(),
        " LIMIT ?"
    ))
    .bind::<Unsigned<Integer>, _>(batch)
    .execute(conn)
    .await
}

pub async fn insert(conn: &mut Conn, rows: &[SeatRow]) -> Result<(), DieselError> {
    diesel::insert_into(seats::table)
        .values(rows)
        .execute(conn)
        .await
        .map(drop)
}
