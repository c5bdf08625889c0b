//! `queue_tickets`: one fan's place in one room. A ticket is read together with its room's gauge
//! (`admitted_seq`, sold out, paused, rates) and the database clock, which is all its holder's
//! view needs.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::RunQueryDsl;

use super::ids::{ConcertId, QueueToken, TicketId, UserId};
use super::models::{QueueTicketRow, RoomGaugeRow};
use super::schema::{queue_rooms, queue_tickets};
use super::states::TicketStatus;
use super::{Conn, utc_now};

/// A ticket, its room's gauge, and the database clock.
pub type TicketInRoom = (QueueTicketRow, RoomGaugeRow, NaiveDateTime);

pub async fn by_token(
    conn: &mut Conn,
    token: &QueueToken,
) -> Result<Option<TicketInRoom>, DieselError> {
    queue_tickets::table
        .inner_join(queue_rooms::table.on(queue_rooms::concert_id.eq(queue_tickets::concert_id)))
        .filter(queue_tickets::token.eq(token))
        .select((
            QueueTicketRow::as_select(),
            RoomGaugeRow::as_select(),
            utc_now(),
        ))
        .first(conn)
        .await
        .optional()
}

/// The ticket behind `token`, locked for the rest of the transaction, and the database clock.
/// Without its room's counter: MariaDB would lock the room row read by that subquery too, and
/// every hold and payment of the concert would queue on it.
pub async fn lock_by_token(
    conn: &mut Conn,
    token: &QueueToken,
) -> Result<Option<(QueueTicketRow, NaiveDateTime)>, DieselError> {
    queue_tickets::table
        .filter(queue_tickets::token.eq(token))
        .select((QueueTicketRow::as_select(), utc_now()))
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Which of `users` exist, and their unfinished (PREQUEUED, WAITING, ACTIVE) tickets for
/// `concert`, newest first. Two statements, each on one table by its own index (the primary key,
/// `queue_tickets_user`): one join of the two was seen taking 7-17 ms per entry batch in the
/// rush bench once the room's line was long, with the room locked meanwhile.
pub async fn unfinished_of(
    conn: &mut Conn,
    users: &[UserId],
    concert: &ConcertId,
) -> Result<(Vec<UserId>, Vec<QueueTicketRow>), DieselError> {
    use super::schema::users as u;
    let known: Vec<UserId> = u::table
        .filter(u::id.eq_any(users))
        .select(u::id)
        .load(conn)
        .await?;
    if known.is_empty() {
        return Ok((known, Vec::new()));
    }
    let tickets = queue_tickets::table
        .filter(queue_tickets::user_id.eq_any(&known))
        .filter(queue_tickets::concert_id.eq(concert))
        .filter(queue_tickets::status.eq_any([
            TicketStatus::Prequeued,
            TicketStatus::Waiting,
            TicketStatus::Active,
        ]))
        .order(queue_tickets::seq.desc())
        .select(QueueTicketRow::as_select())
        .load(conn)
        .await?;
    Ok((known, tickets))
}

/// Writes `rows` in one statement. A sequence number taken meanwhile is a write conflict, retried
/// like one: on a Galera cluster the room lock is local, and another node's batch can land first
/// (seen here as a duplicate key rather than at commit).
pub async fn insert_all(conn: &mut Conn, rows: &[QueueTicketRow]) -> Result<(), DieselError> {
    if rows.is_empty() {
        return Ok(());
    }
    match diesel::insert_into(queue_tickets::table)
        .values(rows)
        .execute(conn)
        .await
    {
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info))
            if info.message().contains("queue_tickets_seq") =>
        {
            Err(DieselError::DatabaseError(
                DatabaseErrorKind::SerializationFailure,
                Box::new(info.message().to_owned()),
            ))
        }
        other => other.map(drop),
    }
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

/// Tickets of the room whose turn was given a deadline at or after `deadline` (ACTIVE, or
/// ended: COMPLETED, EXPIRED), read through the `(concert_id, status, expires_at)` index.
pub async fn turns_ending_after(
    conn: &mut Conn,
    concert: &ConcertId,
    deadline: NaiveDateTime,
) -> Result<i64, DieselError> {
    queue_tickets::table
        .filter(queue_tickets::concert_id.eq(concert))
        .filter(queue_tickets::status.eq_any([
            TicketStatus::Active,
            TicketStatus::Completed,
            TicketStatus::Expired,
        ]))
        .filter(queue_tickets::expires_at.ge(deadline))
        .count()
        .get_result(conn)
        .await
}

/// ACTIVE tickets of the room whose turn has not lapsed at `now`.
pub async fn count_live_active(
    conn: &mut Conn,
    concert: &ConcertId,
    now: NaiveDateTime,
) -> Result<i64, DieselError> {
    queue_tickets::table
        .filter(queue_tickets::concert_id.eq(concert))
        .filter(queue_tickets::status.eq(TicketStatus::Active))
        .filter(queue_tickets::expires_at.gt(now))
        .count()
        .get_result(conn)
        .await
}

/// The earliest and latest deadline of the room's ACTIVE tickets (None: none is ACTIVE): the
/// two ends of a range of the `queue_tickets_active` index, not a scan of it.
pub async fn deadlines(
    conn: &mut Conn,
    concert: &ConcertId,
) -> Result<(Option<NaiveDateTime>, Option<NaiveDateTime>), DieselError> {
    use diesel::dsl::{max, min};
    queue_tickets::table
        .filter(queue_tickets::concert_id.eq(concert))
        .filter(queue_tickets::status.eq(TicketStatus::Active))
        .select((
            min(queue_tickets::expires_at),
            max(queue_tickets::expires_at),
        ))
        .get_result(conn)
        .await
}

/// How many of the room's tickets are ACTIVE (one index entry each).
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

/// A changed ticket as the live feeds carry it: id, status, deadline, place (the draw gives a
/// pre-queued ticket its place).
pub type Changed = (TicketId, TicketStatus, Option<NaiveDateTime>, i64);

/// The room's tickets written since `cursor`.
pub async fn changed_since(
    conn: &mut Conn,
    concert: &ConcertId,
    cursor: NaiveDateTime,
) -> Result<Vec<Changed>, DieselError> {
    queue_tickets::table
        .filter(queue_tickets::concert_id.eq(concert))
        .filter(queue_tickets::updated_at.gt(cursor))
        .select((
            queue_tickets::id,
            queue_tickets::status,
            queue_tickets::expires_at,
            queue_tickets::seq,
        ))
        .load(conn)
        .await
}

/// The draw in the database: the room's pre-queued tickets become WAITING with places
/// `after + 1, after + 2, ...` in ascending SHA-256(seed bytes ‖ id) order (ties by id), present
/// from `now`. One statement over the room's pre-queue (`sale::shuffle` is the same order in
/// Rust); returns how many it placed.
pub async fn draw_in_place(
    conn: &mut Conn,
    concert: &ConcertId,
    seed_hex: &str,
    after: i64,
    now: NaiveDateTime,
) -> Result<usize, DieselError> {
    use diesel::sql_types::{BigInt, Datetime, Text};
    diesel::sql_query("SET @place := ?")
        .bind::<BigInt, _>(after)
        .execute(conn)
        .await?;
    diesel::sql_query(
        "UPDATE queue_tickets SET seq = (@place := @place + 1), status = ?, last_seen_at = ?, \
         updated_at = ? WHERE concert_id = ? AND status = ? \
         ORDER BY SHA2(CONCAT(UNHEX(?), id), 256), id",
    )
    .bind::<Text, _>(TicketStatus::Waiting)
    .bind::<Datetime, _>(now)
    .bind::<Datetime, _>(now)
    .bind::<Text, _>(concert)
    .bind::<Text, _>(TicketStatus::Prequeued)
    .bind::<Text, _>(seed_hex)
    .execute(conn)
    .await
}

/// Drawn tickets by place: the ids of places `after + 1 ..= after + limit`.
pub async fn by_place(
    conn: &mut Conn,
    concert: &ConcertId,
    after: i64,
    until: i64,
) -> Result<Vec<TicketId>, DieselError> {
    queue_tickets::table
        .filter(queue_tickets::concert_id.eq(concert))
        .filter(queue_tickets::seq.gt(after))
        .filter(queue_tickets::seq.le(until))
        .order(queue_tickets::seq.asc())
        .select(queue_tickets::id)
        .load(conn)
        .await
}
