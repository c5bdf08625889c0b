//! A fan's ticket: entering the room (or getting back one's live ticket), polling it, presence,
//! and the token that names it.

use base64::Engine;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

use super::admission::lock_room;
use super::{QueueTicket, TicketStatus, Trigger, advance, view};
use crate::db::models::QueueTicketRow;
use crate::db::schema::{queue_rooms, queue_tickets};
use crate::db::{self, Conn};
use crate::domain::accounts::lock_user;
use crate::domain::catalog::ensure_concert;
use crate::domain::error::{Error, Result};
use crate::domain::{Services, new_id};

/// A poll refreshes `last_seen_at` at most this often, so polling costs a write only now and then.
const PRESENCE_WRITE_EVERY: TimeDelta = TimeDelta::seconds(5);

/// `queue_rooms.admitted_seq` of the ticket's room, as a column of the ticket query.
pub(super) const ROOM_ADMITTED_SEQ: &str =
    "(SELECT r.admitted_seq FROM queue_rooms r WHERE r.concert_id = queue_tickets.concert_id)";

/// Joins the concert's queue, or returns the caller's live ticket for it (a refresh never loses
/// one's place). A ticket at the head of an idle room is admitted at once.
pub async fn enter(services: &Services, user_id: &str, concert_id: &str) -> Result<QueueTicket> {
    // One transaction that returns the ticket and the room's counter it saw, so the usual entry
    // (behind others) takes one checkout; only an entry at the head of an idle room steps
    // admission and reads its ticket again.
    let (row, admitted_seq, now, at_head) = transaction!(services.db, async |conn: &mut Conn| {
        ensure_concert(conn, concert_id).await?;
        lock_user(conn, user_id).await?;
        let now = db::now(conn).await?;
        if let Some(live) = live_ticket(conn, user_id, concert_id, now).await? {
            touch(conn, &live, now).await?;
            let admitted_seq: i64 = queue_rooms::table
                .find(concert_id)
                .select(queue_rooms::admitted_seq)
                .first(conn)
                .await?;
            return Ok((live, admitted_seq, now, false));
        }
        // Lock the existing room straight away: INSERT IGNORE on an existing row takes a shared
        // lock first, and N entries upgrading shared locks together deadlock.
        let room = match lock_room(conn, concert_id).await? {
            Some(room) => room,
            None => {
                diesel::insert_or_ignore_into(queue_rooms::table)
                    .values(queue_rooms::concert_id.eq(concert_id))
                    .execute(conn)
                    .await?;
                lock_room(conn, concert_id)
                    .await?
                    .ok_or_else(|| Error::corrupt("room vanished"))?
            }
        };
        let seq = room.issued + 1;
        diesel::update(queue_rooms::table.find(concert_id))
            .set(queue_rooms::issued.eq(seq))
            .execute(conn)
            .await?;
        let row = QueueTicketRow {
            id: new_id(),
            token: new_token(),
            user_id: user_id.to_owned(),
            concert_id: concert_id.to_owned(),
            seq,
            status: TicketStatus::Waiting,
            last_seen_at: now,
            activated_at: None,
            expires_at: None,
            created_at: now,
            updated_at: now,
        };
        diesel::insert_into(queue_tickets::table)
            .values(&row)
            .execute(conn)
            .await?;
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
        tracing::warn!(error = ?err, concert_id, "admission after enterQueue failed");
    }
    let ticket_id = row.id;
    with_conn!(services.db, async |conn: &mut Conn| {
        let (row, admitted_seq, now) = queue_tickets::table
            .find(&ticket_id)
            .select((
                QueueTicketRow::as_select(),
                sql::<BigInt>(ROOM_ADMITTED_SEQ),
                db::utc_now(),
            ))
            .first::<(QueueTicketRow, i64, NaiveDateTime)>(conn)
            .await?;
        Ok(view(&row, admitted_seq, now, &services.rules))
    })
    .await
}

/// The ticket behind a queue token, as its holder polls it. Polling counts as presence.
pub async fn poll(services: &Services, token: &str, user_id: Option<&str>) -> Result<QueueTicket> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let (row, admitted_seq, now) = find_by_token(conn, token).await?;
        check_owner(&row, user_id)?;
        touch(conn, &row, now).await?;
        Ok(view(&row, admitted_seq, now, &services.rules))
    })
    .await
}

/// Checks that `token` names a ticket (of `user_id`, when given); used when a websocket connects.
pub async fn check_token(services: &Services, token: &str, user_id: Option<&str>) -> Result<()> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let (row, _, _) = find_by_token(conn, token).await?;
        check_owner(&row, user_id)
    })
    .await
}

pub(crate) async fn find_by_token(
    conn: &mut Conn,
    token: &str,
) -> Result<(QueueTicketRow, i64, NaiveDateTime)> {
    check_token_shape(token)?;
    queue_tickets::table
        .filter(queue_tickets::token.eq(token))
        .select((
            QueueTicketRow::as_select(),
            sql::<BigInt>(ROOM_ADMITTED_SEQ),
            db::utc_now(),
        ))
        .first(conn)
        .await
        .optional()?
        .ok_or_else(unknown_token)
}

async fn live_ticket(
    conn: &mut Conn,
    user_id: &str,
    concert_id: &str,
    now: NaiveDateTime,
) -> Result<Option<QueueTicketRow>> {
    let candidates: Vec<QueueTicketRow> = queue_tickets::table
        .filter(queue_tickets::user_id.eq(user_id))
        .filter(queue_tickets::concert_id.eq(concert_id))
        .filter(queue_tickets::status.eq_any([TicketStatus::Waiting, TicketStatus::Active]))
        .order(queue_tickets::seq.desc())
        .select(QueueTicketRow::as_select())
        .load(conn)
        .await?;
    Ok(candidates
        .into_iter()
        .find(|t| t.status == TicketStatus::Waiting || t.expires_at.is_some_and(|at| at > now)))
}

/// Records presence for a waiting ticket, at most once per [`PRESENCE_WRITE_EVERY`].
pub(crate) async fn touch(conn: &mut Conn, row: &QueueTicketRow, now: NaiveDateTime) -> Result<()> {
    if row.status == TicketStatus::Waiting && now - row.last_seen_at >= PRESENCE_WRITE_EVERY {
        diesel::update(queue_tickets::table.find(&row.id))
            .filter(queue_tickets::status.eq(TicketStatus::Waiting))
            .set(queue_tickets::last_seen_at.eq(db::utc_now()))
            .execute(conn)
            .await?;
    }
    Ok(())
}

pub(crate) fn check_owner(row: &QueueTicketRow, user_id: Option<&str>) -> Result<()> {
    match user_id {
        Some(user) if user != row.user_id => Err(Error::Forbidden(
            "this queue token belongs to another user".into(),
        )),
        _ => Ok(()),
    }
}

/// Tokens are 43 URL-safe characters; anything else cannot name a ticket and is refused before
/// it reaches a query (a non-ASCII value would not even compare with the ASCII column).
pub(super) fn check_token_shape(token: &str) -> Result<()> {
    let well_formed = token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed {
        Ok(())
    } else {
        Err(unknown_token())
    }
}

pub(super) fn unknown_token() -> Error {
    Error::not_admitted("unknown queue token; call enterQueue")
}

/// 256 random bits, URL-safe: unguessable, and safe in a header.
fn new_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters_and_differ() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, b);
    }
}
