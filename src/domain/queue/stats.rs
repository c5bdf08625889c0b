//! The operator's view of a room: the line, the turns, admissions, the seats, the controls. One
//! read of a handful of indexed statements; the live hub runs it once per tick per watched room,
//! however many operators on the instance watch it.

use chrono::{NaiveDateTime, TimeDelta};

use super::super::accounts::require_operator;
use super::super::catalog;
use super::super::error::Result;
use super::super::services::Services;
use super::super::time::chrono_duration;
use super::controls::{self, QueueControls};
use crate::db::ids::{ConcertId, UserId};
use crate::db::seats::Inventory;
use crate::db::{self, Conn, queue_rooms, queue_tickets, sales, seats};
use crate::domain::rules::Rules;

#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    pub concert_id: ConcertId,
    /// In line with a place (the pre-queue not counted).
    pub waiting: i64,
    /// In the pre-queue of a sale not yet open.
    pub prequeued: i64,
    /// Turns running now.
    pub active: i64,
    pub admitted_total: i64,
    pub admitted_last_minute: i64,
    pub abandoned_total: i64,
    pub seats: Inventory,
    pub sold_out: bool,
    pub controls: QueueControls,
    /// Admissions per second the room achieved lately while people waited (None: not yet seen).
    pub observed_rate: Option<f64>,
    pub read_at: NaiveDateTime,
}

/// `queueStats`, for operators.
pub async fn queue_stats(
    services: &Services,
    operator: &UserId,
    concert_id: &ConcertId,
) -> Result<QueueStats> {
    with_conn!(services.db, async |conn: &mut Conn| {
        require_operator(conn, operator).await?;
        read(conn, concert_id, &services.rules).await
    })
    .await
}

/// Checks that the caller may watch a room's stats (the subscription's one check).
pub async fn check_watcher(
    services: &Services,
    operator: &UserId,
    concert_id: &ConcertId,
) -> Result<()> {
    with_conn!(services.db, async |conn: &mut Conn| {
        require_operator(conn, operator).await?;
        catalog::ensure_concert(conn, concert_id).await
    })
    .await
}

pub(crate) async fn read(
    conn: &mut Conn,
    concert_id: &ConcertId,
    rules: &Rules,
) -> Result<QueueStats> {
    let now = db::now(conn).await?;
    let Some(room) = queue_rooms::find(conn, concert_id).await? else {
        catalog::ensure_concert(conn, concert_id).await?;
        return Ok(QueueStats {
            concert_id: concert_id.clone(),
            waiting: 0,
            prequeued: 0,
            active: 0,
            admitted_total: 0,
            admitted_last_minute: 0,
            abandoned_total: 0,
            seats: seats::inventory(conn, concert_id).await?,
            sold_out: false,
            controls: controls::defaults(rules),
            observed_rate: None,
            read_at: now,
        });
    };
    let prequeued = match sales::find(conn, concert_id).await? {
        Some(sale) if sale.drawn_at.is_none() => sale.prequeued,
        _ => 0,
    };
    Ok(QueueStats {
        concert_id: concert_id.clone(),
        // Beyond admission's cursor every ticket is still waiting (admission marks the others
        // when it reaches them).
        waiting: (room.issued - room.admitted_seq).max(0),
        prequeued,
        active: queue_tickets::count_live_active(conn, concert_id, now).await?,
        admitted_total: room.admitted_total,
        // A turn admitted at t ends at t + QUEUE_ACTIVE_TTL (a payment ends it early but keeps
        // the deadline), so turns admitted in the last minute are those whose deadline is at
        // least a minute minus the turn length from now. No index on admission times needed
        // (one would slow every entry).
        admitted_last_minute: queue_tickets::turns_ending_after(
            conn,
            concert_id,
            now - TimeDelta::minutes(1) + chrono_duration(rules.queue_active_ttl),
        )
        .await?,
        abandoned_total: room.abandoned_total,
        seats: seats::inventory(conn, concert_id).await?,
        sold_out: room.sold_out,
        controls: controls::effective(&room, rules),
        observed_rate: room.observed_rate,
        read_at: now,
    })
}
