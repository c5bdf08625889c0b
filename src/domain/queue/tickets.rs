//! A fan's ticket: entering the room (or getting back one's live ticket), polling it, presence,
//! and whose it is.

use chrono::{NaiveDateTime, TimeDelta};

use super::challenge::{self, Answer};
use super::{QueueTicket, TicketStatus, Trigger, advance, view};
use crate::db::ids::{ConcertId, QueueToken, TicketId, UserId};
use crate::db::models::QueueTicketRow;
use crate::db::queue_tickets::TicketInRoom;
use crate::db::{self, Conn, queue_rooms, queue_tickets};
use crate::domain::Services;
use crate::domain::accounts::lock_user;
use crate::domain::catalog::ensure_concert;
use crate::domain::error::{Error, Result};
use crate::domain::throttle::Action;

/// A poll refreshes `last_seen_at` at most this often, so polling costs a write only now and then.
const PRESENCE_WRITE_EVERY: TimeDelta = TimeDelta::seconds(5);

/// Joins the concert's queue, or returns the caller's live ticket for it (a refresh never loses
/// one's place). A ticket at the head of an idle room is admitted at once.
pub async fn enter(
    services: &Services,
    address: Option<std::net::IpAddr>,
    user_id: &UserId,
    concert_id: &ConcertId,
    answer: Option<&Answer>,
) -> Result<QueueTicket> {
    services.throttle.check(Action::EnterQueue, address)?;
    services.throttle.check_entry_account(user_id)?;
    // One transaction that returns the ticket and the room's counter it saw, so the usual entry
    // (behind others) takes one checkout; only an entry at the head of an idle room steps
    // admission and reads its ticket again.
    let (row, admitted_seq, now, at_head) = transaction!(services.db, async |conn: &mut Conn| {
        ensure_concert(conn, concert_id).await?;
        lock_user(conn, user_id).await?;
        let now = db::now(conn).await?;
        if let Some(live) = live_ticket(conn, user_id, concert_id, now).await? {
            touch(conn, &live, now).await?;
            let admitted_seq = queue_rooms::admitted_seq(conn, concert_id)
                .await?
                .unwrap_or_default();
            return Ok((live, admitted_seq, now, false));
        }
        // Lock the existing room straight away: INSERT IGNORE on an existing row takes a shared
        // lock first, and N entries upgrading shared locks together deadlock.
        let room = match queue_rooms::lock(conn, concert_id).await? {
            Some(room) => room,
            None => {
                queue_rooms::insert_if_missing(conn, concert_id).await?;
                queue_rooms::lock(conn, concert_id)
                    .await?
                    .ok_or_else(|| Error::corrupt("room vanished"))?
            }
        };
        // A new ticket costs the room's proof of work (a refresh above does not).
        let required = services.challenges.required(room.pow_difficulty);
        challenge::redeem(
            conn,
            &services.challenges,
            answer,
            user_id,
            concert_id,
            required,
        )
        .await?;
        let seq = room.issued + 1;
        queue_rooms::set_issued(conn, concert_id, seq).await?;
        let row = QueueTicketRow {
            id: TicketId::new(),
            token: QueueToken::new(),
            user_id: user_id.clone(),
            concert_id: concert_id.clone(),
            seq,
            status: TicketStatus::Waiting,
            last_seen_at: now,
            activated_at: None,
            expires_at: None,
            created_at: now,
            updated_at: now,
        };
        queue_tickets::insert(conn, &row).await?;
        let at_head = seq == room.admitted_seq + 1;
        Ok((row, room.admitted_seq, now, at_head))
    })
    .await?;
    metrics::counter!("queue_entries_total").increment(1);
    if !at_head {
        return Ok(view(&row, admitted_seq, now, &services.rules));
    }
    // Same step the ticker runs; a failure here only delays admission to the next tick.
    if let Err(err) = advance(services, concert_id, Trigger::Entry).await {
        tracing::warn!(error = ?err, %concert_id, "admission after enterQueue failed");
    }
    with_conn!(services.db, async |conn: &mut Conn| {
        let (row, admitted_seq, now) = queue_tickets::by_id(conn, &row.id).await?;
        Ok(view(&row, admitted_seq, now, &services.rules))
    })
    .await
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
    let (row, admitted_seq, now) = find_by_token(conn, token).await?;
    check_owner(&row, user_id)?;
    touch(conn, &row, now).await?;
    Ok((row, admitted_seq, now))
}

pub(crate) async fn find_by_token(conn: &mut Conn, token: &QueueToken) -> Result<TicketInRoom> {
    queue_tickets::by_token(conn, token)
        .await?
        .ok_or_else(Error::unknown_queue_token)
}

/// The caller's WAITING ticket, or ACTIVE one still inside its turn.
async fn live_ticket(
    conn: &mut Conn,
    user_id: &UserId,
    concert_id: &ConcertId,
    now: NaiveDateTime,
) -> Result<Option<QueueTicketRow>> {
    let candidates = queue_tickets::unfinished(conn, user_id, concert_id).await?;
    Ok(candidates
        .into_iter()
        .find(|t| t.status == TicketStatus::Waiting || t.expires_at.is_some_and(|at| at > now)))
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
