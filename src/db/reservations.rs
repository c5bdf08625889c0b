//! `reservations`: one hold of one seat, and later its payment or end.
//!
//! A HELD reservation whose `held_until` has passed is over (EXPIRED) by the database clock
//! before any sweeper writes it: [`effective_status`] is that rule for a row in hand,
//! `EffectiveStatus` the same rule inside a query.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{Date, Datetime, Integer, SmallInt, Text, Unsigned};
use diesel_async::RunQueryDsl;

use super::Conn;
use super::cached::{Cached, fixed_sql};
use super::ids::{ConcertId, OrderId, ReservationId, SeatNumber, UserId};
use super::models::ReservationRow;
use super::schema::{orders, reservations, users};
use super::states::ReservationStatus;

fixed_sql!(
    /// SQL for a reservation's status as clients see it: HELD past its deadline reads EXPIRED.
    EffectiveStatus: Text = "CASE WHEN reservations.status = 'HELD' AND reservations.held_until <= UTC_TIMESTAMP(6) \
     THEN 'EXPIRED' ELSE reservations.status END"
);

/// A row's status as clients see it, against a database time read in the same transaction.
pub fn effective_status(row: &ReservationRow, now: NaiveDateTime) -> ReservationStatus {
    if row.status == ReservationStatus::Held && row.held_until <= now {
        ReservationStatus::Expired
    } else {
        row.status
    }
}

/// A reservation with its effective status.
pub async fn find(
    conn: &mut Conn,
    id: &ReservationId,
) -> Result<Option<(ReservationRow, ReservationStatus)>, DieselError> {
    reservations::table
        .find(id)
        .select((ReservationRow::as_select(), EffectiveStatus))
        .first(conn)
        .await
        .optional()
}

/// A user's reservations with their effective statuses, newest first.
pub async fn of_user(
    conn: &mut Conn,
    user: &UserId,
) -> Result<Vec<(ReservationRow, ReservationStatus)>, DieselError> {
    reservations::table
        .filter(reservations::user_id.eq(user))
        .order((reservations::created_at.desc(), reservations::id.desc()))
        .select((ReservationRow::as_select(), EffectiveStatus))
        .load(conn)
        .await
}

/// Up to `limit` of a user's reservations with their effective statuses, newest first, after the
/// one created at `after.0` with id `after.1`.
pub async fn page_of_user(
    conn: &mut Conn,
    user: &UserId,
    after: Option<(NaiveDateTime, &str)>,
    limit: i64,
) -> Result<Vec<(ReservationRow, ReservationStatus)>, DieselError> {
    let mut query = reservations::table
        .filter(reservations::user_id.eq(user))
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            reservations::created_at.lt(at).or(reservations::created_at
                .eq(at)
                .and(reservations::id.lt(id.to_owned()))),
        );
    }
    query
        .order((reservations::created_at.desc(), reservations::id.desc()))
        .limit(limit)
        .select((ReservationRow::as_select(), EffectiveStatus))
        .load(conn)
        .await
}

/// What an operator's ticket search matches; every filter given applies.
#[derive(Debug, Clone, Copy, Default)]
pub struct TicketFilter<'a> {
    /// Part of the fan's stored (normalised) e-mail, matched literally.
    pub email_contains: Option<&'a str>,
    pub seat: Option<SeatNumber>,
    pub order: Option<&'a OrderId>,
}

/// A reservation found by a ticket search: with its effective status, its fan's e-mail and
/// username, and its order's payment time.
pub type TicketRow = (
    ReservationRow,
    ReservationStatus,
    String,
    String,
    Option<NaiveDateTime>,
);

/// A `LIKE` pattern matching values that contain `fragment` literally: its `%`, `_` and `\`
/// escaped with `\` (the statement names the escape character, so the server's `sql_mode`
/// cannot change it).
fn contains_pattern(fragment: &str) -> String {
    let mut pattern = String::with_capacity(fragment.len() + 2);
    pattern.push('%');
    for c in fragment.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Up to `limit` reservations of a concert (every date, every status) matching `filter`, newest
/// first, with what an operator needs to tell whose they are: one statement, the fan and the
/// order joined in. Reads the concert's reservations through `reservations_seat` (its first
/// column): a concert's history, not the whole table.
pub async fn search_of_concert(
    conn: &mut Conn,
    concert: &ConcertId,
    filter: TicketFilter<'_>,
    limit: i64,
) -> Result<Vec<TicketRow>, DieselError> {
    let mut query = reservations::table
        .inner_join(users::table.on(users::id.eq(reservations::user_id)))
        .inner_join(orders::table.on(orders::id.eq(reservations::order_id)))
        .filter(reservations::concert_id.eq(concert))
        .into_boxed();
    if let Some(fragment) = filter.email_contains {
        query = query.filter(users::email.like(contains_pattern(fragment)).escape('\\'));
    }
    if let Some(seat) = filter.seat {
        query = query.filter(reservations::seat_number.eq(seat));
    }
    if let Some(order) = filter.order {
        query = query.filter(reservations::order_id.eq(order));
    }
    query
        .order((reservations::created_at.desc(), reservations::id.desc()))
        .limit(limit)
        .select((
            ReservationRow::as_select(),
            EffectiveStatus,
            users::email,
            users::username,
            orders::paid_at,
        ))
        .load(conn)
        .await
}

/// Locks the reservation row for the rest of the transaction.
pub async fn lock(
    conn: &mut Conn,
    id: &ReservationId,
) -> Result<Option<ReservationRow>, DieselError> {
    reservations::table
        .find(id)
        .select(ReservationRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Writes the seats of a new order in one statement.
pub async fn insert_all(conn: &mut Conn, rows: &[ReservationRow]) -> Result<(), DieselError> {
    diesel::insert_into(reservations::table)
        .values(rows)
        .execute(conn)
        .await
        .map(drop)
}

/// The seats of an order with their effective statuses, by seat number.
pub async fn of_order(
    conn: &mut Conn,
    order: &OrderId,
) -> Result<Vec<(ReservationRow, ReservationStatus)>, DieselError> {
    reservations::table
        .filter(reservations::order_id.eq(order))
        .order(reservations::seat_number.asc())
        .select((ReservationRow::as_select(), EffectiveStatus))
        .load(conn)
        .await
}

/// The seats of several orders with their effective statuses, by order then seat number.
pub async fn of_orders(
    conn: &mut Conn,
    orders: &[OrderId],
) -> Result<Vec<(ReservationRow, ReservationStatus)>, DieselError> {
    reservations::table
        .filter(reservations::order_id.eq_any(orders))
        .order((
            reservations::order_id.asc(),
            reservations::seat_number.asc(),
        ))
        .select((ReservationRow::as_select(), EffectiveStatus))
        .load(conn)
        .await
}

/// Writes `status` on the seats of an order that are `from` now.
pub async fn set_status_of_order(
    conn: &mut Conn,
    order: &OrderId,
    from: ReservationStatus,
    status: ReservationStatus,
    now: NaiveDateTime,
) -> Result<usize, DieselError> {
    Cached(
        diesel::update(
            reservations::table
                .filter(reservations::order_id.eq(order))
                .filter(reservations::status.eq(from)),
        )
        .set((
            reservations::status.eq(status),
            reservations::updated_at.eq(now),
        )),
    )
    .execute(conn)
    .await
}

pub async fn set_status(
    conn: &mut Conn,
    id: &ReservationId,
    status: ReservationStatus,
    now: NaiveDateTime,
) -> Result<(), DieselError> {
    Cached(diesel::update(reservations::table.find(id)).set((
        reservations::status.eq(status),
        reservations::updated_at.eq(now),
    )))
    .execute(conn)
    .await
    .map(drop)
}

/// Marks EXPIRED the lapsed hold of a seat that is being taken over, so its record says so.
///
/// Through the seat's index, named: left to choose, MariaDB reads the (status, deadline) index,
/// whose range is almost empty, and then every hold of every seat waits on the same entry at its
/// end (one lock wait per hold, 33 ms each, in the rush bench).
pub async fn expire_lapsed_of_seat(
    conn: &mut Conn,
    (concert, date, number): super::seats::SeatKey<'_>,
    now: NaiveDateTime,
) -> Result<(), DieselError> {
    Cached(
        diesel::sql_query(
            "UPDATE reservations FORCE INDEX (reservations_seat) SET status = ?, updated_at = ? \
             WHERE concert_id = ? AND date = ? AND seat_number = ? AND status = ? AND held_until <= ?",
        )
        .bind::<Text, _>(ReservationStatus::Expired)
        .bind::<Datetime, _>(now)
        .bind::<Text, _>(concert)
        .bind::<Date, _>(date)
        .bind::<SmallInt, _>(number)
        .bind::<Text, _>(ReservationStatus::Held)
        .bind::<Datetime, _>(now),
    )
    .execute(conn)
    .await
    .map(drop)
}

/// The fan's share used: seats of the concert (every date) held now or paid, by the database
/// time `now` read in the same transaction. Refunded, released and lapsed seats do not count.
pub async fn held_or_paid_of_concert(
    conn: &mut Conn,
    user: &UserId,
    concert: &ConcertId,
    now: NaiveDateTime,
) -> Result<i64, DieselError> {
    reservations::table
        .filter(reservations::user_id.eq(user))
        .filter(reservations::concert_id.eq(concert))
        .filter(
            reservations::status
                .eq(ReservationStatus::Paid)
                .or(reservations::status
                    .eq(ReservationStatus::Held)
                    .and(reservations::held_until.gt(now))),
        )
        .count()
        .get_result(conn)
        .await
}

/// How many live holds the user has for one date of a concert.
pub async fn live_holds_for_date(
    conn: &mut Conn,
    user: &UserId,
    concert: &ConcertId,
    date: NaiveDate,
    now: NaiveDateTime,
) -> Result<i64, DieselError> {
    reservations::table
        .filter(reservations::user_id.eq(user))
        .filter(reservations::concert_id.eq(concert))
        .filter(reservations::date.eq(date))
        .filter(reservations::status.eq(ReservationStatus::Held))
        .filter(reservations::held_until.gt(now))
        .count()
        .get_result(conn)
        .await
}

/// How many live holds the user has for the concert outside the order `except`.
pub async fn other_live_holds(
    conn: &mut Conn,
    user: &UserId,
    concert: &ConcertId,
    except: &OrderId,
    now: NaiveDateTime,
) -> Result<i64, DieselError> {
    reservations::table
        .filter(reservations::user_id.eq(user))
        .filter(reservations::concert_id.eq(concert))
        .filter(reservations::status.eq(ReservationStatus::Held))
        .filter(reservations::order_id.ne(except))
        .filter(reservations::held_until.gt(now))
        .count()
        .get_result(conn)
        .await
}

/// Writes up to `batch` lapsed holds as EXPIRED; how many it wrote.
pub async fn sweep_lapsed(conn: &mut Conn, batch: u32) -> Result<usize, DieselError> {
    diesel::sql_query(
        "UPDATE reservations SET status = 'EXPIRED', updated_at = UTC_TIMESTAMP(6) \
         WHERE status = 'HELD' AND held_until <= UTC_TIMESTAMP(6) LIMIT ?",
    )
    .bind::<Unsigned<Integer>, _>(batch)
    .execute(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_a_fragment_match_only_themselves() {
        assert_eq!(contains_pattern("ann"), "%ann%");
        assert_eq!(contains_pattern(r"50%_a\b"), r"%50\%\_a\\b%");
    }
}
