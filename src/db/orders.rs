//! `orders`: the seats a fan holds on one date, as one thing to pay, release or refund. Its
//! seats are the `reservations` rows that name it.
//!
//! A HELD order whose `held_until` has passed is over (EXPIRED) by the database clock before
//! any sweeper writes it: [`effective_status`] is that rule for a row in hand, `EffectiveStatus`
//! the same rule inside a query.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{Integer, Text, Unsigned};
use diesel_async::RunQueryDsl;

use super::Conn;
use super::cached::{Cached, fixed_sql};
use super::ids::{OrderId, UserId};
use super::models::OrderRow;
use super::schema::orders;
use super::states::OrderStatus;

fixed_sql!(
    /// SQL for an order's status as clients see it: HELD past its deadline reads EXPIRED.
    EffectiveStatus: Text = "CASE WHEN orders.status = 'HELD' AND orders.held_until <= UTC_TIMESTAMP(6) \
     THEN 'EXPIRED' ELSE orders.status END"
);

/// A row's status as clients see it, against a database time read in the same transaction.
pub fn effective_status(row: &OrderRow, now: NaiveDateTime) -> OrderStatus {
    if row.status == OrderStatus::Held && row.held_until <= now {
        OrderStatus::Expired
    } else {
        row.status
    }
}

pub async fn insert(conn: &mut Conn, row: &OrderRow) -> Result<(), DieselError> {
    Cached(diesel::insert_into(orders::table).values(row))
        .execute(conn)
        .await
        .map(drop)
}

/// An order with its effective status.
pub async fn find(
    conn: &mut Conn,
    id: &OrderId,
) -> Result<Option<(OrderRow, OrderStatus)>, DieselError> {
    orders::table
        .find(id)
        .select((OrderRow::as_select(), EffectiveStatus))
        .first(conn)
        .await
        .optional()
}

/// Locks the order row for the rest of the transaction.
pub async fn lock(conn: &mut Conn, id: &OrderId) -> Result<Option<OrderRow>, DieselError> {
    orders::table
        .find(id)
        .select(OrderRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Writes the order's new status (and its paid time, when paid).
pub async fn set_status(
    conn: &mut Conn,
    id: &OrderId,
    status: OrderStatus,
    paid_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Result<(), DieselError> {
    Cached(diesel::update(orders::table.find(id)).set((
        orders::status.eq(status),
        orders::paid_at.eq(paid_at),
        orders::updated_at.eq(now),
    )))
    .execute(conn)
    .await
    .map(drop)
}

/// Up to `limit` of a user's orders with their effective statuses, newest first, after the one
/// created at `after.0` with id `after.1`.
pub async fn page_of_user(
    conn: &mut Conn,
    user: &UserId,
    after: Option<(NaiveDateTime, &str)>,
    limit: i64,
) -> Result<Vec<(OrderRow, OrderStatus)>, DieselError> {
    let mut query = orders::table.filter(orders::user_id.eq(user)).into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            orders::created_at
                .lt(at)
                .or(orders::created_at.eq(at).and(orders::id.lt(id.to_owned()))),
        );
    }
    query
        .order((orders::created_at.desc(), orders::id.desc()))
        .limit(limit)
        .select((OrderRow::as_select(), EffectiveStatus))
        .load(conn)
        .await
}

/// Writes up to `batch` lapsed held orders as EXPIRED; how many it wrote.
pub async fn sweep_lapsed(conn: &mut Conn, batch: u32) -> Result<usize, DieselError> {
    diesel::sql_query(
        "UPDATE orders SET status = 'EXPIRED', updated_at = UTC_TIMESTAMP(6) \
         WHERE status = 'HELD' AND held_until <= UTC_TIMESTAMP(6) LIMIT ?",
    )
    .bind::<Unsigned<Integer>, _>(batch)
    .execute(conn)
    .await
}
