//! The turn gate: the seat map, holds and payment go through here. A turn is an ACTIVE ticket,
//! unexpired on the database clock, for the right concert and (when signed in) the right user.

use chrono::NaiveDateTime;

use super::tickets::find_by_token;
use super::{QueueStatus, RoomGauge, TicketStatus, check_owner, view};
use crate::db::ids::{ConcertId, QueueToken, TicketId, UserId};
use crate::db::models::QueueTicketRow;
use crate::db::{Conn, queue_rooms, queue_tickets};
use crate::domain::error::{Error, Result};
use crate::domain::rules::Rules;
use crate::domain::services::Services;

/// Checks that `token` is an ACTIVE, unexpired ticket for `concert_id` (and, when the caller is
/// signed in, that it is theirs). Guards the seat map, holds and payment.
pub async fn require_active(
    services: &Services,
    token: Option<&QueueToken>,
    concert_id: &ConcertId,
    user_id: Option<&UserId>,
) -> Result<()> {
    let token = token
        .ok_or_else(|| Error::not_admitted("a Queue-Token header is required; call enterQueue"))?;
    with_conn!(services.db, async |conn: &mut Conn| {
        let (row, room, now) = find_by_token(conn, token).await?;
        check_admitted(&row, &room, now, concert_id, user_id, &services.rules)
    })
    .await
}

/// Inside a transaction: locks the ticket and checks it as [`require_active`] does. Taken last in
/// the lock order (user, seat, reservation, queue ticket).
pub(crate) async fn lock_active(
    conn: &mut Conn,
    token: &QueueToken,
    concert_id: &ConcertId,
    user_id: &UserId,
    rules: &Rules,
) -> Result<QueueTicketRow> {
    let (row, room, now) = lock_ticket(conn, token).await?;
    check_admitted(&row, &room, now, concert_id, Some(user_id), rules)?;
    Ok(row)
}

/// Locks the ticket of `token`, with its room's gauge when it is waiting (the gauge only words
/// the refusal of a waiting ticket: its position) and the database clock.
async fn lock_ticket(
    conn: &mut Conn,
    token: &QueueToken,
) -> Result<(QueueTicketRow, RoomGauge, NaiveDateTime)> {
    let (row, now) = queue_tickets::lock_by_token(conn, token)
        .await?
        .ok_or_else(Error::unknown_queue_token)?;
    let room = if row.status == TicketStatus::Waiting {
        queue_rooms::gauge(conn, &row.concert_id)
            .await?
            .unwrap_or_default()
    } else {
        RoomGauge::default()
    };
    Ok((row, room, now))
}

/// Inside a transaction: locks the ticket an order taken at `held_at` was held in, for paying it.
/// A live turn will do, as for [`lock_active`]; so will a turn that has ended (lapsed, or marked
/// EXPIRED) if the order was taken during it: a hold taken in a turn can be paid until the hold
/// itself lapses, even when the turn ends first. A turn that ended in a payment, one not begun,
/// or one that began after the order (another turn) still refuses.
pub(crate) async fn lock_turn_of_order(
    conn: &mut Conn,
    token: &QueueToken,
    concert_id: &ConcertId,
    user_id: &UserId,
    held_at: NaiveDateTime,
    rules: &Rules,
) -> Result<QueueTicketRow> {
    let (row, room, now) = lock_ticket(conn, token).await?;
    let refused = match check_admitted(&row, &room, now, concert_id, Some(user_id), rules) {
        Ok(()) => return Ok(row),
        Err(refused) => refused,
    };
    let ended = matches!(row.status, TicketStatus::Active | TicketStatus::Expired);
    let during = row.activated_at.is_some_and(|began| began <= held_at)
        && row.expires_at.is_some_and(|ends| held_at <= ends);
    if ended && during && row.user_id == *user_id && row.concert_id == *concert_id {
        Ok(row)
    } else {
        Err(refused)
    }
}

/// A successful payment ends the ticket's turn and frees its slot at once.
pub(crate) async fn complete(
    conn: &mut Conn,
    ticket_id: &TicketId,
    now: NaiveDateTime,
) -> Result<()> {
    let ids = std::slice::from_ref(ticket_id);
    Ok(queue_tickets::set_status(conn, ids, TicketStatus::Completed, now).await?)
}

/// Whether a ticket read at `now` with its room's gauge `room` is an ACTIVE turn for
/// `concert_id` (of `user_id`, when given).
pub(crate) fn check_admitted(
    row: &QueueTicketRow,
    room: &RoomGauge,
    now: NaiveDateTime,
    concert_id: &ConcertId,
    user_id: Option<&UserId>,
    rules: &Rules,
) -> Result<()> {
    check_owner(row, user_id)?;
    if row.concert_id != *concert_id {
        return Err(Error::not_admitted(
            "this queue token is for another concert",
        ));
    }
    let ticket = view(row, room, now, rules);
    match ticket.status {
        QueueStatus::Active => Ok(()),
        QueueStatus::Waiting => Err(Error::not_admitted(format!(
            "still waiting in the queue: {} ahead of you",
            ticket.position
        ))),
        QueueStatus::Expired => Err(Error::not_admitted(
            "your turn has expired; enter the queue again",
        )),
        QueueStatus::Completed => Err(Error::not_admitted(
            "this turn ended with a payment; enter the queue again",
        )),
        QueueStatus::Prequeued => Err(Error::not_admitted(
            "the sale has not opened yet: your place in line is drawn when it opens",
        )),
        QueueStatus::SoldOut => Err(Error::not_admitted(
            "every seat is sold; you keep your place in case seats come back",
        )),
    }
}
