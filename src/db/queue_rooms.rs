//! `queue_rooms`: one row per concert's waiting room, with its two counters (`issued`, the last
//! sequence number handed out; `admitted_seq`, how far admission has walked) and the admission
//! pace. Locking this row serialises admission steps for the room across instances.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::RunQueryDsl;

use super::cached::Cached;

use super::ids::ConcertId;
use super::models::{QueueRoomRow, RoomGaugeRow, SaleRow, TurnsRow};
use super::schema::{queue_rooms, sales};
use super::{Conn, utc_now};

pub async fn insert(conn: &mut Conn, concert: &ConcertId) -> Result<(), DieselError> {
    diesel::insert_into(queue_rooms::table)
        .values(queue_rooms::concert_id.eq(concert))
        .execute(conn)
        .await
        .map(drop)
}

/// Creates the room unless it exists (a concert made before rooms were).
pub async fn insert_if_missing(conn: &mut Conn, concert: &ConcertId) -> Result<(), DieselError> {
    diesel::insert_or_ignore_into(queue_rooms::table)
        .values(queue_rooms::concert_id.eq(concert))
        .execute(conn)
        .await
        .map(drop)
}

/// [`lock_at_now`], with the concert's sale (if any) read, and locked, in the same statement:
/// the entry batch's one read before it judges its entries.
pub async fn lock_with_sale_at_now(
    conn: &mut Conn,
    concert: &ConcertId,
) -> Result<Option<(QueueRoomRow, Option<SaleRow>, NaiveDateTime)>, DieselError> {
    queue_rooms::table
        .left_join(sales::table.on(sales::concert_id.eq(queue_rooms::concert_id)))
        .filter(queue_rooms::concert_id.eq(concert))
        .select((
            QueueRoomRow::as_select(),
            Option::<SaleRow>::as_select(),
            utc_now(),
        ))
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// The room row locked, or None at once when another transaction holds the row (or there is no room).
pub async fn try_lock(
    conn: &mut Conn,
    concert: &ConcertId,
) -> Result<Option<QueueRoomRow>, DieselError> {
    queue_rooms::table
        .find(concert)
        .select(QueueRoomRow::as_select())
        .for_update()
        .skip_locked()
        .first(conn)
        .await
        .optional()
}

/// Locks the room row for the rest of the transaction, with the database clock read in the same
/// statement.
pub async fn lock_at_now(
    conn: &mut Conn,
    concert: &ConcertId,
) -> Result<Option<(QueueRoomRow, NaiveDateTime)>, DieselError> {
    queue_rooms::table
        .find(concert)
        .select((QueueRoomRow::as_select(), utc_now()))
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// What the room's ticket holders see of it.
pub async fn gauge(
    conn: &mut Conn,
    concert: &ConcertId,
) -> Result<Option<RoomGaugeRow>, DieselError> {
    queue_rooms::table
        .find(concert)
        .select(RoomGaugeRow::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn set_issued(
    conn: &mut Conn,
    concert: &ConcertId,
    issued: i64,
) -> Result<(), DieselError> {
    Cached(diesel::update(queue_rooms::table.find(concert)).set(queue_rooms::issued.eq(issued)))
        .execute(conn)
        .await
        .map(drop)
}

/// What an admission step moved, saved on the room.
#[derive(Debug, Clone, PartialEq, AsChangeset)]
#[diesel(table_name = queue_rooms, treat_none_as_null = true)]
pub struct Step {
    /// The last sequence number handed out, as the step's transaction saw it (an entry batch
    /// that steps writes its new count here).
    pub issued: i64,
    /// How far admission has walked.
    pub admitted_seq: i64,
    /// The pace clock.
    pub admit_clock: NaiveDateTime,
    /// The tick claimed (an inline step at entry keeps the last one).
    pub last_tick_at: Option<NaiveDateTime>,
    pub sold_out: bool,
    pub admitted_total: i64,
    pub abandoned_total: i64,
    pub rate_sample_at: Option<NaiveDateTime>,
    pub rate_sample_total: i64,
    pub rate_prior: Option<f64>,
    pub observed_rate: Option<f64>,
    /// The turns running after the step.
    #[diesel(embed)]
    pub turns: TurnsRow,
}

pub async fn record_step(
    conn: &mut Conn,
    concert: &ConcertId,
    step: &Step,
) -> Result<(), DieselError> {
    Cached(diesel::update(queue_rooms::table.find(concert)).set(step))
        .execute(conn)
        .await
        .map(drop)
}

/// The room's controls as set (None: the instance default).
#[derive(Debug, Clone, Default, PartialEq, AsChangeset)]
#[diesel(table_name = queue_rooms)]
pub struct ControlsSet {
    pub paused: Option<bool>,
    pub admit_per_sec: Option<Option<u32>>,
    pub active_limit: Option<Option<u32>>,
}

pub async fn set_controls(
    conn: &mut Conn,
    concert: &ConcertId,
    controls: &ControlsSet,
) -> Result<(), DieselError> {
    if controls == &ControlsSet::default() {
        return Ok(());
    }
    diesel::update(queue_rooms::table.find(concert))
        .set(controls)
        .execute(conn)
        .await
        .map(drop)
}

pub async fn find(
    conn: &mut Conn,
    concert: &ConcertId,
) -> Result<Option<QueueRoomRow>, DieselError> {
    queue_rooms::table
        .find(concert)
        .select(QueueRoomRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Rooms with someone not yet reached by admission.
pub async fn with_waiting(conn: &mut Conn) -> Result<Vec<ConcertId>, DieselError> {
    queue_rooms::table
        .filter(queue_rooms::issued.gt(queue_rooms::admitted_seq))
        .select(queue_rooms::concert_id)
        .load(conn)
        .await
}

/// The room's own proof-of-work difficulty, if it sets one (None: no room, or no override).
pub async fn pow_difficulty(
    conn: &mut Conn,
    concert: &ConcertId,
) -> Result<Option<u8>, DieselError> {
    let found: Option<Option<u8>> = queue_rooms::table
        .find(concert)
        .select(queue_rooms::pow_difficulty)
        .first(conn)
        .await
        .optional()?;
    Ok(found.flatten())
}

/// Opens a sold-out room again (a refund put a seat back on sale).
pub async fn reopen(conn: &mut Conn, concert: &ConcertId) -> Result<(), DieselError> {
    diesel::update(queue_rooms::table.find(concert))
        .filter(queue_rooms::sold_out.eq(true))
        .set(queue_rooms::sold_out.eq(false))
        .execute(conn)
        .await
        .map(drop)
}

/// Whether the room closed because every seat is sold (false for a concert without a room).
pub async fn sold_out(conn: &mut Conn, concert: &ConcertId) -> Result<bool, DieselError> {
    let found: Option<bool> = queue_rooms::table
        .find(concert)
        .select(queue_rooms::sold_out)
        .first(conn)
        .await
        .optional()?;
    Ok(found.unwrap_or(false))
}

/// Every room's sold-out flag.
pub async fn sold_out_flags(conn: &mut Conn) -> Result<Vec<(ConcertId, bool)>, DieselError> {
    queue_rooms::table
        .select((queue_rooms::concert_id, queue_rooms::sold_out))
        .load(conn)
        .await
}
