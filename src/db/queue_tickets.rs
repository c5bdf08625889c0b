//! `queue_tickets`: one fan's place in one room. A ticket is read together with its room's
//! `admitted_seq` and the database clock, which is all its holder's view needs.

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

use super::ids::{ConcertId, QueueToken, TicketId, UserId};
use super::models::QueueTicketRow;
use super::schema::queue_tickets;
use super::states::TicketStatus;
use super::{Conn, utc_now};

/// A ticket, its room's `admitted_seq`, and the database clock.
pub type TicketInRoom = (QueueTicketRow, i64, NaiveDateTime);

/// `queue_rooms.admitted_seq` of the ticket's room, as a column of the ticket query.
const ROOM_ADMITTED_SEQ: &str =
    "(SELECT r.admitted_seq FROM queue_rooms r WHERE r.concert_id = queue_tickets.concert_id)";

fn in_room() -> (
    diesel::dsl::AsSelect<QueueTicketRow, diesel::mysql::Mysql>,
    diesel::expression::SqlLiteral<BigInt>,
    diesel::expression::SqlLiteral<diesel::sql_types::Datetime>,
) {
    (
        QueueTicketRow::as_select(),
        sql::<BigInt>(ROOM_ADMITTED_SEQ),
        utc_now(),
    )
}

pub async fn by_token(
    conn: &mut Conn,
    token: &QueueToken,
) -> Result<Option<TicketInRoom>, DieselError> {
    queue_tickets::table
        .filter(queue_tickets::token.eq(token))
        .select(in_room())
        .first(conn)
        .await
        .optional()
}

/// [`by_token`], locking the ticket row for the rest of the transaction.
pub async fn lock_by_token(
    conn: &mut Conn,
    token: &QueueToken,
) -> Result<Option<TicketInRoom>, DieselError> {
    queue_tickets::table
        .filter(queue_tickets::token.eq(token))
        .select(in_room())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn by_id(conn: &mut Conn, id: &TicketId) -> Result<TicketInRoom, DieselError> {
    queue_tickets::table
        .find(id)
        .select(in_room())
        .first(conn)
        .await
}

/// The user's WAITING or ACTIVE tickets for the concert, newest first (an ACTIVE one may have
/// lapsed: the caller judges against its clock).
pub async fn unfinished(
    conn: &mut Conn,
    user: &UserId,
    concert: &ConcertId,
) -> Result<Vec<QueueTicketRow>, DieselError> {
    queue_tickets::table
        .filter(queue_tickets::user_id.eq(user))
        .filter(queue_tickets::concert_id.eq(concert))
        .filter(queue_tickets::status.eq_any([TicketStatus::Waiting, TicketStatus::Active]))
        .order(queue_tickets::seq.desc())
        .select(QueueTicketRow::as_select())
        .load(conn)
        .await
}

pub async fn insert(conn: &mut Conn, row: &QueueTicketRow) -> Result<(), DieselError> {
    diesel::insert_into(queue_tickets::table)
        .values(row)
        .execute(conn)
        .await
        .map(drop)
}

/// Records presence now for those of `ids` still waiting.
pub async fn touch(conn: &mut Conn, ids: &[TicketId]) -> Result<(), DieselError> {
    diesel::update(queue_tickets::table.filter(queue_tickets::id.eq_any(ids)))
        .filter(queue_tickets::status.eq(TicketStatus::Waiting))
        .set(queue_tickets::last_seen_at.eq(utc_now()))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn set_status(
    conn: &mut Conn,
    ids: &[TicketId],
    status: TicketStatus,
    now: NaiveDateTime,
) -> Result<(), DieselError> {
    diesel::update(queue_tickets::table.filter(queue_tickets::id.eq_any(ids)))
        .set((
            queue_tickets::status.eq(status),
            queue_tickets::updated_at.eq(now),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Makes `ids` ACTIVE from `now` until `expires_at`.
pub async fn activate(
    conn: &mut Conn,
    ids: &[TicketId],
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> Result<(), DieselError> {
    diesel::update(queue_tickets::table.filter(queue_tickets::id.eq_any(ids)))
        .set((
            queue_tickets::status.eq(TicketStatus::Active),
            queue_tickets::activated_at.eq(now),
            queue_tickets::expires_at.eq(expires_at),
            queue_tickets::updated_at.eq(now),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Writes the room's lapsed ACTIVE tickets as EXPIRED; how many.
pub async fn expire_lapsed(
    conn: &mut Conn,
    concert: &ConcertId,
    now: NaiveDateTime,
) -> Result<usize, DieselError> {
    diesel::update(queue_tickets::table)
        .filter(queue_tickets::concert_id.eq(concert))
        .filter(queue_tickets::status.eq(TicketStatus::Active))
        .filter(queue_tickets::expires_at.le(now))
        .set((
            queue_tickets::status.eq(TicketStatus::Expired),
            queue_tickets::updated_at.eq(now),
        ))
        .execute(conn)
        .await
}

pub async fn count_active(conn: &mut Conn, concert: &ConcertId) -> Result<i64, DieselError> {
    queue_tickets::table
        .filter(queue_tickets::concert_id.eq(concert))
        .filter(queue_tickets::status.eq(TicketStatus::Active))
        .count()
        .get_result(conn)
        .await
}

/// What admission needs of a ticket in line.
pub type InLine = (TicketId, i64, TicketStatus, NaiveDateTime);

/// The next `limit` tickets in line after sequence number `after`, locked.
pub async fn lock_next_in_line(
    conn: &mut Conn,
    concert: &ConcertId,
    after: i64,
    limit: i64,
) -> Result<Vec<InLine>, DieselError> {
    queue_tickets::table
        .filter(queue_tickets::concert_id.eq(concert))
        .filter(queue_tickets::seq.gt(after))
        .order(queue_tickets::seq.asc())
        .limit(limit)
        .select((
            queue_tickets::id,
            queue_tickets::seq,
            queue_tickets::status,
            queue_tickets::last_seen_at,
        ))
        .for_update()
        .load(conn)
        .await
}

/// The room's tickets written since `cursor`: id, status, deadline.
pub async fn changed_since(
    conn: &mut Conn,
    concert: &ConcertId,
    cursor: NaiveDateTime,
) -> Result<Vec<(TicketId, TicketStatus, Option<NaiveDateTime>)>, DieselError> {
    queue_tickets::table
        .filter(queue_tickets::concert_id.eq(concert))
        .filter(queue_tickets::updated_at.gt(cursor))
        .select((
            queue_tickets::id,
            queue_tickets::status,
            queue_tickets::expires_at,
        ))
        .load(conn)
        .await
}
