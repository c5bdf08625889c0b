//! Live queue controls: an operator pauses a room, or sets its admission rate or active limit,
//! while the sale runs. They are stored on the room's row, which every admission step reads
//! under its lock, so every instance obeys a change from its next step (within a tick), and each
//! change is recorded with who made it and when.

use super::super::accounts::require_operator;
use super::super::catalog;
use super::super::error::{Error, Result};
use super::super::services::Services;
use crate::db::ids::{ConcertId, UserId};
use crate::db::models::{ControlChangeRow, QueueRoomRow};
use crate::db::queue_rooms::ControlsSet;
use crate::db::{Conn, queue_control_changes, queue_rooms};
use crate::domain::rules::Rules;

/// A room's controls in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueControls {
    pub paused: bool,
    pub admit_per_sec: u32,
    pub active_limit: u32,
}

/// The largest values an operator may set.
pub const MAX_ADMIT_PER_SEC: i32 = 100_000;
pub const MAX_ACTIVE_LIMIT: i32 = 1_000_000;

/// A change asked for, as sent; a field left out keeps its value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlsChange {
    pub paused: Option<bool>,
    pub admit_per_sec: Option<i32>,
    pub active_limit: Option<i32>,
}

/// A change checked against the bounds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Checked {
    paused: Option<bool>,
    admit_per_sec: Option<u32>,
    active_limit: Option<u32>,
}

impl ControlsChange {
    fn check(&self) -> Result<Checked> {
        let bounded = |v: Option<i32>, max: i32, field: &str| -> Result<Option<u32>> {
            match v {
                None => Ok(None),
                Some(n) if (1..=max).contains(&n) => Ok(Some(n as u32)),
                Some(n) => Err(Error::bad_input(format!(
                    "{field} must be between 1 and {max}, got {n}"
                ))),
            }
        };
        Ok(Checked {
            paused: self.paused,
            admit_per_sec: bounded(self.admit_per_sec, MAX_ADMIT_PER_SEC, "admitPerSecond")?,
            active_limit: bounded(self.active_limit, MAX_ACTIVE_LIMIT, "activeLimit")?,
        })
    }
}

/// The controls in force for a room: what it sets, else the instance defaults.
pub fn effective(room: &QueueRoomRow, rules: &Rules) -> QueueControls {
    QueueControls {
        paused: room.paused,
        admit_per_sec: room.admit_per_sec.unwrap_or(rules.queue_admit_per_sec),
        active_limit: room.active_limit.unwrap_or(rules.queue_active_limit),
    }
}

/// The instance defaults.
pub fn defaults(rules: &Rules) -> QueueControls {
    QueueControls {
        paused: false,
        admit_per_sec: rules.queue_admit_per_sec,
        active_limit: rules.queue_active_limit,
    }
}

/// An operator changes a room's controls; the change and who made it are recorded.
pub async fn set_controls(
    services: &Services,
    operator: &UserId,
    concert_id: &ConcertId,
    change: ControlsChange,
) -> Result<QueueControls> {
    let rules = &services.rules;
    let home = services.db.room_home(concert_id);
    let controls = transaction!(home, async |conn: &mut Conn| {
        require_operator(conn, operator).await?;
        let change = change.check()?;
        let (room, now) = super::room::lock_room(conn, concert_id).await?;
        queue_rooms::set_controls(
            conn,
            concert_id,
            &ControlsSet {
                paused: change.paused,
                admit_per_sec: change.admit_per_sec.map(Some),
                active_limit: change.active_limit.map(Some),
            },
        )
        .await?;
        queue_control_changes::insert(
            conn,
            &ControlChangeRow {
                id: uuid::Uuid::now_v7().hyphenated().to_string(),
                concert_id: concert_id.clone(),
                changed_by: operator.clone(),
                changed_at: now,
                paused: change.paused,
                admit_per_sec: change.admit_per_sec,
                active_limit: change.active_limit,
            },
        )
        .await?;
        let room = QueueRoomRow {
            paused: change.paused.unwrap_or(room.paused),
            admit_per_sec: change.admit_per_sec.or(room.admit_per_sec),
            active_limit: change.active_limit.or(room.active_limit),
            ..room
        };
        Ok(effective(&room, rules))
    })
    .await?;
    tracing::info!(%concert_id, %operator, ?controls, "queue controls changed");
    Ok(controls)
}

/// One recorded change of a room's controls.
#[derive(Debug, Clone)]
pub struct ControlChange {
    pub changed_by: UserId,
    pub changed_at: chrono::DateTime<chrono::Utc>,
    pub paused: Option<bool>,
    pub admit_per_sec: Option<u32>,
    pub active_limit: Option<u32>,
}

/// A room's recorded control changes, oldest first (operators).
pub async fn changes(
    services: &Services,
    operator: &UserId,
    concert_id: &ConcertId,
) -> Result<Vec<ControlChange>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        require_operator(conn, operator).await?;
        catalog::ensure_concert(conn, concert_id).await?;
        let rows = queue_control_changes::of_room(conn, concert_id).await?;
        Ok(rows
            .into_iter()
            .map(|r| ControlChange {
                changed_by: r.changed_by,
                changed_at: r.changed_at.and_utc(),
                paused: r.paused,
                admit_per_sec: r.admit_per_sec,
                active_limit: r.active_limit,
            })
            .collect())
    })
    .await
}
