//! A fan's ticket: the proof of work asked before entering, entering the room (or getting back
//! one's live ticket), polling it, presence, and whose it is.

use chrono::NaiveDateTime;

use super::challenge::{Answer, Challenge};
use super::entry::{self, Entry, PRESENCE_WRITE_EVERY};
use super::{QueueTicket, TicketStatus};
use crate::db::ids::{ConcertId, QueueToken, UserId};
use crate::db::models::QueueTicketRow;
use crate::db::queue_tickets::TicketInRoom;
use crate::db::{Conn, queue_challenges, queue_rooms, queue_tickets};
use crate::domain::catalog;
use crate::domain::error::{Error, Result};
use crate::domain::services::Services;
use crate::domain::throttle::Action;

/// A challenge for the signed-in fan to enter `concert`'s waiting room.
pub async fn issue_challenge(
    services: &Services,
    user: &UserId,
    concert: &ConcertId,
) -> Result<Challenge> {
    let room = with_conn!(services.db, async |conn: &mut Conn| {
        catalog::ensure_concert(conn, concert).await?;
        Ok(queue_rooms::pow_difficulty(conn, concert).await?)
    })
    .await?;
    let challenges = &services.challenges;
    challenges.issue_for(user, concert, challenges.required(room))
}

/// Forgets spent challenges that have expired (they are refused as expired anyway). Run by the
/// hold sweeper.
pub async fn forget_spent_challenges(services: &Services) -> Result<usize> {
    with_conn!(services.db, async |conn: &mut Conn| {
        Ok(queue_challenges::sweep_expired(conn, 1000).await?)
    })
    .await
}

/// Joins the concert's queue, or returns the caller's live ticket for it (a refresh never loses
/// one's place). The entry is written with others arriving at the same time (see [`entry`]); a
/// ticket at the head of an idle room is admitted at once.
///
/// [`entry`]: super::entry
pub async fn enter(
    services: &Services,
    address: Option<std::net::IpAddr>,
    user_id: &UserId,
    concert_id: &ConcertId,
    answer: Option<&Answer>,
) -> Result<QueueTicket> {
    services.throttle.check(Action::EnterQueue, address)?;
    services.throttle.check_entry_account(user_id)?;
    let entry = Entry {
        user: user_id.clone(),
        answer: answer.cloned(),
    };
    entry::enter(services, concert_id, entry).await
}

/// Checks that `token` names a ticket (of `user_id`, when given); used when a websocket connects.
pub async fn check_token(
    services: &Services,
    token: &QueueToken,
    user_id: Option<&UserId>,
) -> Result<()> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let (row, _, _) = find_by_token(conn, token).await?;
        check_owner(&row, user_id)
    })
    .await
}

/// The ticket behind `token` as its holder reads it (polls, the live feed's first message):
/// checked to be `user_id`'s when given, and counted as presence.
pub(crate) async fn read_for_holder(
    conn: &mut Conn,
    token: &QueueToken,
    user_id: Option<&UserId>,
) -> Result<TicketInRoom> {
    let (row, room, now) = find_by_token(conn, token).await?;
    check_owner(&row, user_id)?;
    touch(conn, &row, now).await?;
    Ok((row, room, now))
}

pub(crate) async fn find_by_token(conn: &mut Conn, token: &QueueToken) -> Result<TicketInRoom> {
    queue_tickets::by_token(conn, token)
        .await?
        .ok_or_else(Error::unknown_queue_token)
}

/// Records presence for a waiting ticket, at most once per [`PRESENCE_WRITE_EVERY`].
pub(crate) async fn touch(conn: &mut Conn, row: &QueueTicketRow, now: NaiveDateTime) -> Result<()> {
    if row.status == TicketStatus::Waiting && now - row.last_seen_at >= PRESENCE_WRITE_EVERY {
        queue_tickets::touch(conn, std::slice::from_ref(&row.id)).await?;
    }
    Ok(())
}

pub(crate) fn check_owner(row: &QueueTicketRow, user_id: Option<&UserId>) -> Result<()> {
    match user_id {
        Some(user) if *user != row.user_id => Err(Error::Forbidden(
            "this queue token belongs to another user".into(),
        )),
        _ => Ok(()),
    }
}
