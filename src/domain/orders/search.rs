//! The operator's ticket search: a concert's reservations found by their fan's e-mail, their seat
//! number or their order, so an operator can find the ticket a fan asks about (and its
//! reservation id, which `refund` takes) without the fan knowing it.

use chrono::{DateTime, Utc};

use super::{Reservation, ReservationStatus, to_reservation};
use crate::db::Conn;
use crate::db::ids::{ConcertId, OrderId, UserId};
use crate::db::reservations::{self, TicketFilter};
use crate::domain::accounts::require_operator;
use crate::domain::catalog;
use crate::domain::error::{Error, Result};
use crate::domain::inputs::{self, EmailFragment};
use crate::domain::paging::page_size;
use crate::domain::services::Services;
use crate::domain::time::utc;

/// A search as the operator sent it; every filter given applies, and at least one is needed.
#[derive(Debug, Clone)]
pub struct TicketSearch {
    /// Part of the fan's e-mail, any case.
    pub email: Option<String>,
    pub seat_number: Option<i32>,
    pub order_id: Option<OrderId>,
    /// How many at most (1 to `MAX_PAGE`).
    pub first: i32,
}

/// A reservation found, with whose it is.
#[derive(Debug, Clone)]
pub struct ConcertTicket {
    pub reservation: Reservation,
    pub fan_email: String,
    pub fan_username: String,
    /// When its order was paid, for a seat that was paid (PAID or REFUNDED); a seat released
    /// before its order was paid was never paid.
    pub paid_at: Option<DateTime<Utc>>,
}

/// `ticketSearch`, for operators: the concert's matching reservations (every date, every
/// status), newest first, at most `first`. One read in one unit of work.
pub async fn search(
    services: &Services,
    operator: &UserId,
    concert_id: &ConcertId,
    search: TicketSearch,
) -> Result<Vec<ConcertTicket>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        require_operator(conn, operator).await?;
        let email = search
            .email
            .as_deref()
            .map(EmailFragment::parse)
            .transpose()?;
        let seat = search.seat_number.map(inputs::seat_number).transpose()?;
        let limit = page_size(search.first)?;
        if email.is_none() && seat.is_none() && search.order_id.is_none() {
            return Err(Error::bad_input(
                "give at least one of email, seatNumber or orderId to search by",
            ));
        }
        let filter = TicketFilter {
            email_contains: email.as_ref().map(EmailFragment::as_str),
            seat,
            order: search.order_id.as_ref(),
        };
        let rows = reservations::search_of_concert(conn, concert_id, filter, limit).await?;
        if rows.is_empty() {
            // Nothing found and no such concert are different answers.
            catalog::ensure_concert(conn, concert_id).await?;
        }
        Ok(rows
            .into_iter()
            .map(|(row, status, fan_email, fan_username, order_paid_at)| {
                let paid = matches!(
                    status,
                    ReservationStatus::Paid | ReservationStatus::Refunded
                );
                ConcertTicket {
                    reservation: to_reservation(row, status),
                    fan_email,
                    fan_username,
                    paid_at: order_paid_at.filter(|_| paid).map(utc),
                }
            })
            .collect())
    })
    .await
}
