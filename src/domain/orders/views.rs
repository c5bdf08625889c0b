//! Reading orders and their seats: a fan's own orders (a page at a time), one order, and the
//! seed API's reservations (one row per seat). Statuses are effective on the database clock.

use std::collections::HashMap;

use super::{Order, Reservation, to_order, to_reservation};
use crate::db::ids::{OrderId, ReservationId, UserId};
use crate::db::{Conn, orders, reservations};
use crate::domain::error::{Error, Result};
use crate::domain::paging::{Page, PageCursor, PageRequest};
use crate::domain::services::Services;

/// One of the caller's orders (`NOT_FOUND` for another fan's: an order id tells nothing).
pub async fn my_order(services: &Services, user_id: &UserId, order_id: &OrderId) -> Result<Order> {
    let order = with_conn!(services.db, async |conn: &mut Conn| {
        find_order(conn, order_id).await
    })
    .await?;
    if order.user_id == *user_id {
        Ok(order)
    } else {
        Err(Error::NotFound("order"))
    }
}

/// A page of the caller's orders, newest first (see `paging`).
pub async fn orders_page(
    services: &Services,
    user_id: &UserId,
    page: &PageRequest,
) -> Result<Page<Order>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let after = page.after.as_ref().map(|c| (c.at, c.id.as_str()));
        let rows = orders::page_of_user(conn, user_id, after, page.first + 1).await?;
        let ids: Vec<OrderId> = rows.iter().map(|(r, _)| r.id.clone()).collect();
        let mut seats: HashMap<OrderId, Vec<_>> = HashMap::new();
        for (seat, status) in reservations::of_orders(conn, &ids).await? {
            seats
                .entry(seat.order_id.clone())
                .or_default()
                .push((seat, status));
        }
        let rows = rows
            .into_iter()
            .map(|(row, status)| {
                let cursor = PageCursor {
                    at: row.created_at,
                    id: row.id.to_string(),
                };
                let of_order = seats.remove(&row.id).unwrap_or_default();
                (cursor, to_order(row, status, of_order))
            })
            .collect();
        Ok(Page::from_rows(rows, page.first))
    })
    .await
}

pub(crate) async fn find_order(conn: &mut Conn, order_id: &OrderId) -> Result<Order> {
    let (row, status) = orders::find(conn, order_id)
        .await?
        .ok_or(Error::NotFound("order"))?;
    let seats = reservations::of_order(conn, order_id).await?;
    Ok(to_order(row, status, seats))
}

/// The caller's reservations (one per seat), newest first.
pub async fn my_reservations(services: &Services, user_id: &UserId) -> Result<Vec<Reservation>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let rows = reservations::of_user(conn, user_id).await?;
        Ok(rows
            .into_iter()
            .map(|(row, status)| to_reservation(row, status))
            .collect())
    })
    .await
}

/// A page of the caller's reservations, newest first (see `paging`).
pub async fn reservations_page(
    services: &Services,
    user_id: &UserId,
    page: &PageRequest,
) -> Result<Page<Reservation>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let after = page.after.as_ref().map(|c| (c.at, c.id.as_str()));
        let rows = reservations::page_of_user(conn, user_id, after, page.first + 1).await?;
        let rows = rows
            .into_iter()
            .map(|(row, status)| {
                let cursor = PageCursor {
                    at: row.created_at,
                    id: row.id.to_string(),
                };
                (cursor, to_reservation(row, status))
            })
            .collect();
        Ok(Page::from_rows(rows, page.first))
    })
    .await
}

pub async fn reservation(
    services: &Services,
    reservation_id: &ReservationId,
) -> Result<Reservation> {
    with_conn!(services.db, async |conn: &mut Conn| {
        find_reservation(conn, reservation_id).await
    })
    .await
}

pub(crate) async fn find_reservation(
    conn: &mut Conn,
    reservation_id: &ReservationId,
) -> Result<Reservation> {
    let (row, status) = reservations::find(conn, reservation_id)
        .await?
        .ok_or(Error::NotFound("reservation"))?;
    Ok(to_reservation(row, status))
}
