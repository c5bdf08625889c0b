//! `waitlist_entries` and the waitlist counters of `concert_dates` (issued, served, waiting).
//!
//! An OFFERED entry whose `offer_expires_at` has passed is EXPIRED by the database clock before
//! any sweeper writes it: `EffectiveStatus` is that rule inside a query.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{BigInt, Date, Integer, Text, Unsigned};
use diesel_async::RunQueryDsl;

use super::Conn;
use super::cached::{Cached, fixed_sql};
use super::ids::{ConcertId, OrderId, UserId, WaitlistEntryId};
use super::models::WaitlistEntryRow;
use super::schema::{concert_dates, waitlist_entries};
use super::states::WaitlistStatus;

fixed_sql!(
    /// SQL for an entry's status as clients see it: an offer past its deadline reads EXPIRED.
    EffectiveStatus: Text = "CASE WHEN waitlist_entries.status = 'OFFERED' \
     AND waitlist_entries.offer_expires_at <= UTC_TIMESTAMP(6) THEN 'EXPIRED' \
     ELSE waitlist_entries.status END"
);

/// A date's waitlist counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName)]
pub struct Counters {
    #[diesel(sql_type = BigInt)]
    pub issued: i64,
    #[diesel(sql_type = BigInt)]
    pub served: i64,
    #[diesel(sql_type = Integer)]
    pub waiting: i32,
}

/// How a transaction holds a date's row: shared (named holds, side by side; a join waits for
/// them) or exclusive (joins, offer rounds, best-available choices: one at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowLock {
    Shared,
    Exclusive,
}

/// The date's counters, its row locked `lock` for the rest of the transaction.
pub async fn locked_counters(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
    lock: RowLock,
) -> Result<Option<Counters>, DieselError> {
    let clause = match lock {
        RowLock::Shared => "LOCK IN SHARE MODE",
        RowLock::Exclusive => "FOR UPDATE",
    };
    Cached(
        diesel::sql_query(format!(
            "SELECT waitlist_issued AS issued, waitlist_served AS served, \
             waitlist_waiting AS waiting FROM concert_dates \
             WHERE concert_id = ? AND date = ? {clause}"
        ))
        .bind::<Text, _>(concert)
        .bind::<Date, _>(date),
    )
    .get_result(conn)
    .await
    .optional()
}

/// The date's counters, read plainly (positions).
pub async fn counters(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
) -> Result<Counters, DieselError> {
    concert_dates::table
        .find((concert, date))
        .select((
            concert_dates::waitlist_issued,
            concert_dates::waitlist_served,
            concert_dates::waitlist_waiting,
        ))
        .first::<(i64, i64, i32)>(conn)
        .await
        .map(|(issued, served, waiting)| Counters {
            issued,
            served,
            waiting,
        })
}

pub async fn set_counters(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
    counters: Counters,
) -> Result<(), DieselError> {
    diesel::update(concert_dates::table.find((concert, date)))
        .set((
            concert_dates::waitlist_issued.eq(counters.issued),
            concert_dates::waitlist_served.eq(counters.served),
            concert_dates::waitlist_waiting.eq(counters.waiting),
        ))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn insert(conn: &mut Conn, row: &WaitlistEntryRow) -> Result<(), DieselError> {
    diesel::insert_into(waitlist_entries::table)
        .values(row)
        .execute(conn)
        .await
        .map(drop)
}

/// An entry with its effective status.
pub async fn find(
    conn: &mut Conn,
    id: &WaitlistEntryId,
) -> Result<Option<(WaitlistEntryRow, WaitlistStatus)>, DieselError> {
    waitlist_entries::table
        .find(id)
        .select((WaitlistEntryRow::as_select(), EffectiveStatus))
        .first(conn)
        .await
        .optional()
}

/// Locks an entry for the rest of the transaction.
pub async fn lock(
    conn: &mut Conn,
    id: &WaitlistEntryId,
) -> Result<Option<WaitlistEntryRow>, DieselError> {
    waitlist_entries::table
        .find(id)
        .select(WaitlistEntryRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// The entry whose offer is `order`, if any.
pub async fn by_order(
    conn: &mut Conn,
    order: &OrderId,
) -> Result<Option<WaitlistEntryRow>, DieselError> {
    waitlist_entries::table
        .filter(waitlist_entries::order_id.eq(order))
        .select(WaitlistEntryRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The fan's entry of the date that is still waiting or holds a live offer.
pub async fn live_of(
    conn: &mut Conn,
    user: &UserId,
    concert: &ConcertId,
    date: NaiveDate,
) -> Result<Option<(WaitlistEntryRow, WaitlistStatus)>, DieselError> {
    waitlist_entries::table
        .filter(waitlist_entries::user_id.eq(user))
        .filter(waitlist_entries::concert_id.eq(concert))
        .filter(waitlist_entries::date.eq(date))
        .select((WaitlistEntryRow::as_select(), EffectiveStatus))
        .load::<(WaitlistEntryRow, WaitlistStatus)>(conn)
        .await
        .map(|rows| {
            rows.into_iter().find(|(_, status)| {
                matches!(status, WaitlistStatus::Waiting | WaitlistStatus::Offered)
            })
        })
}

/// Up to `limit` WAITING entries of the date in join order; `lock` takes their row locks.
pub async fn waiting_in_order(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
    limit: i64,
    lock: bool,
) -> Result<Vec<WaitlistEntryRow>, DieselError> {
    let query = waitlist_entries::table
        .filter(waitlist_entries::concert_id.eq(concert))
        .filter(waitlist_entries::date.eq(date))
        .filter(waitlist_entries::status.eq(WaitlistStatus::Waiting))
        .order(waitlist_entries::seq.asc())
        .limit(limit)
        .select(WaitlistEntryRow::as_select());
    if lock {
        query.for_update().load(conn).await
    } else {
        query.load(conn).await
    }
}

/// The lowest seq still WAITING on the date, if any.
pub async fn first_waiting_seq(
    conn: &mut Conn,
    concert: &ConcertId,
    date: NaiveDate,
) -> Result<Option<i64>, DieselError> {
    waitlist_entries::table
        .filter(waitlist_entries::concert_id.eq(concert))
        .filter(waitlist_entries::date.eq(date))
        .filter(waitlist_entries::status.eq(WaitlistStatus::Waiting))
        .select(diesel::dsl::min(waitlist_entries::seq))
        .first(conn)
        .await
}

/// Records the offer made to an entry.
pub async fn set_offered(
    conn: &mut Conn,
    id: &WaitlistEntryId,
    order: &OrderId,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), DieselError> {
    diesel::update(waitlist_entries::table.find(id))
        .set((
            waitlist_entries::status.eq(WaitlistStatus::Offered),
            waitlist_entries::order_id.eq(order),
            waitlist_entries::offer_expires_at.eq(expires_at),
            waitlist_entries::updated_at.eq(now),
        ))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn set_status(
    conn: &mut Conn,
    id: &WaitlistEntryId,
    status: WaitlistStatus,
    now: NaiveDateTime,
) -> Result<(), DieselError> {
    diesel::update(waitlist_entries::table.find(id))
        .set((
            waitlist_entries::status.eq(status),
            waitlist_entries::updated_at.eq(now),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// A fan's most recent entries (at most `limit`), newest first, with their effective statuses.
pub async fn of_user(
    conn: &mut Conn,
    user: &UserId,
    limit: i64,
) -> Result<Vec<(WaitlistEntryRow, WaitlistStatus)>, DieselError> {
    waitlist_entries::table
        .filter(waitlist_entries::user_id.eq(user))
        .order((
            waitlist_entries::created_at.desc(),
            waitlist_entries::id.desc(),
        ))
        .limit(limit)
        .select((WaitlistEntryRow::as_select(), EffectiveStatus))
        .load(conn)
        .await
}

/// Dates from today on (database clock) whose waitlist has entries waiting.
pub async fn dates_waiting(conn: &mut Conn) -> Result<Vec<(ConcertId, NaiveDate)>, DieselError> {
    concert_dates::table
        .filter(concert_dates::waitlist_waiting.gt(0))
        .filter(concert_dates::date.ge(diesel::dsl::sql::<Date>("UTC_DATE()")))
        .select((concert_dates::concert_id, concert_dates::date))
        .load(conn)
        .await
}

/// Writes up to `batch` lapsed offers as EXPIRED; how many it wrote.
pub async fn sweep_lapsed_offers(conn: &mut Conn, batch: u32) -> Result<usize, DieselError> {
    diesel::sql_query(
        "UPDATE waitlist_entries SET status = 'EXPIRED', updated_at = UTC_TIMESTAMP(6) \
         WHERE status = 'OFFERED' AND offer_expires_at <= UTC_TIMESTAMP(6) LIMIT ?",
    )
    .bind::<Unsigned<Integer>, _>(batch)
    .execute(conn)
    .await
}

/// Entries written since `cursor`, with effective statuses, plus those whose offer lapsed since
/// then (a change without a write): what the live feeds of waitlisted fans need.
pub async fn changed_since(
    conn: &mut Conn,
    cursor: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Vec<(WaitlistEntryRow, WaitlistStatus)>, DieselError> {
    waitlist_entries::table
        .filter(
            waitlist_entries::updated_at
                .gt(cursor)
                .or(waitlist_entries::status
                    .eq(WaitlistStatus::Offered)
                    .and(
                        waitlist_entries::offer_expires_at
                            .assume_not_null()
                            .gt(cursor),
                    )
                    .and(waitlist_entries::offer_expires_at.assume_not_null().le(now))),
        )
        .select((WaitlistEntryRow::as_select(), EffectiveStatus))
        .load(conn)
        .await
}
