//! Waiting rooms as the API shows them: tickets, proofs of work, sales and their draw, the
//! controls and the operator's view.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::super::context::services;
use super::super::error::ApiResult;
use crate::domain::queue;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "queue::QueueStatus")]
pub enum QueueStatus {
    /// In a scheduled sale's pre-queue: the place in line is drawn when the sale opens.
    Prequeued,
    Waiting,
    Active,
    Expired,
    Completed,
    /// Every seat is sold: nobody is admitted. The ticket keeps its place and reads WAITING
    /// again if seats come back (a hold lapses, a ticket is refunded).
    SoldOut,
}

/// A proof of work to enter a waiting room: find any `solution` such that
/// SHA-256(`nonce` + ":" + `solution`) starts with `difficulty` zero bits, and send both with
/// `enterQueue` before `expiresAt`. Difficulty 0 asks for nothing.
#[derive(SimpleObject)]
pub struct QueueChallenge {
    pub nonce: String,
    pub difficulty: i32,
    pub expires_at: DateTime<Utc>,
    /// Always "sha256-leading-zero-bits".
    pub algorithm: String,
}

impl From<queue::challenge::Challenge> for QueueChallenge {
    fn from(c: queue::challenge::Challenge) -> Self {
        Self {
            nonce: c.nonce,
            difficulty: c.difficulty.into(),
            expires_at: c.expires_at,
            algorithm: "sha256-leading-zero-bits".into(),
        }
    }
}

/// A solved `QueueChallenge`.
#[derive(async_graphql::InputObject)]
pub struct QueueChallengeAnswer {
    pub nonce: String,
    pub solution: String,
}

#[derive(SimpleObject)]
pub struct QueueTicket {
    /// The ticket's public id: the opening draw orders the pre-queue by it (see `Sale`).
    pub id: ID,
    /// Send as the `Queue-Token` header. Secret: it is your turn.
    pub token: String,
    pub concert_id: ID,
    pub status: QueueStatus,
    /// People ahead of you; 0 once ACTIVE.
    pub position: i32,
    /// When admission reaches you: places free under the active limit, then the running turns'
    /// places as they end, one turn length per round after that (the longest a turn can be
    /// until turns have ended, then what they actually last); never faster than the rate set.
    pub estimated_wait_seconds: i32,
    /// Admissions per second over the long run the estimate assumes: the rate set, or how fast
    /// turns end when the active limit binds.
    pub admission_rate: f64,
    /// An operator paused admission; your place is kept.
    pub paused: bool,
    /// When an ACTIVE turn ends.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<queue::QueueTicket> for QueueTicket {
    fn from(t: queue::QueueTicket) -> Self {
        Self {
            id: ID(t.id.into()),
            token: t.token.into(),
            concert_id: ID(t.concert_id.into()),
            status: t.status.into(),
            position: saturate(t.position),
            estimated_wait_seconds: saturate(t.estimated_wait_seconds),
            admission_rate: (t.admission_rate * 1000.0).round() / 1000.0,
            paused: t.paused,
            expires_at: t.expires_at,
        }
    }
}

/// A concert's scheduled sale. Its fair start can be checked by anyone: `seedCommitment` is
/// published when the sale is scheduled; once it opens, `seed` is revealed and `drawOrder`
/// lists the pre-queue's public ticket ids in the order drawn, which must equal those ids sorted
/// by SHA-256(seed bytes ‖ id) (see `scripts/verify-draw`).
pub struct Sale(pub queue::sale::Sale);

#[Object]
impl Sale {
    async fn concert_id(&self) -> ID {
        ID(self.0.concert_id.to_string())
    }

    /// Entries are refused before this (`SALE_NOT_OPEN`); from it they join the pre-queue.
    /// Null: the pre-queue opens with the sale.
    async fn prequeue_opens_at(&self) -> Option<DateTime<Utc>> {
        self.0.prequeue_opens_at
    }

    async fn opens_at(&self) -> DateTime<Utc> {
        self.0.opens_at
    }

    /// Lowercase hex SHA-256 of the seed's 32 bytes.
    async fn seed_commitment(&self) -> &str {
        &self.0.seed_commitment
    }

    /// The seed as lowercase hex; null until the sale opens and the pre-queue is drawn.
    async fn seed(&self) -> Option<&str> {
        self.0.seed.as_deref()
    }

    async fn drawn_at(&self) -> Option<DateTime<Utc>> {
        self.0.drawn_at
    }

    /// Entries in the pre-queue.
    async fn prequeued(&self) -> i32 {
        saturate(self.0.prequeued)
    }

    /// The pre-queue's ticket ids in drawn order, places `offset + 1` to `offset + limit`
    /// (limit 1 to 1000); empty until the draw.
    async fn draw_order(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 0)] offset: i32,
        #[graphql(default = 1000)] limit: i32,
    ) -> ApiResult<Vec<ID>> {
        let ids = queue::sale::draw_order(
            services(ctx)?,
            &self.0.concert_id,
            offset.into(),
            limit.into(),
        )
        .await?;
        Ok(ids.into_iter().map(|id| ID(id.into())).collect())
    }
}

/// A waiting room's controls in force.
#[derive(SimpleObject)]
pub struct QueueControls {
    pub paused: bool,
    pub admit_per_second: i32,
    pub active_limit: i32,
}

impl From<queue::controls::QueueControls> for QueueControls {
    fn from(c: queue::controls::QueueControls) -> Self {
        Self {
            paused: c.paused,
            admit_per_second: saturate(c.admit_per_sec.into()),
            active_limit: saturate(c.active_limit.into()),
        }
    }
}

/// One recorded change of a room's queue controls: who, when, and the values set (null: left
/// as it was).
#[derive(SimpleObject)]
pub struct QueueControlChange {
    pub changed_by: ID,
    pub changed_at: DateTime<Utc>,
    pub paused: Option<bool>,
    pub admit_per_second: Option<i32>,
    pub active_limit: Option<i32>,
}

impl From<queue::controls::ControlChange> for QueueControlChange {
    fn from(c: queue::controls::ControlChange) -> Self {
        Self {
            changed_by: ID(c.changed_by.into()),
            changed_at: c.changed_at,
            paused: c.paused,
            admit_per_second: c.admit_per_sec.map(|n| saturate(n.into())),
            active_limit: c.active_limit.map(|n| saturate(n.into())),
        }
    }
}

/// A waiting room as its operator watches it.
#[derive(SimpleObject)]
pub struct QueueStats {
    pub concert_id: ID,
    /// In line with a place (the pre-queue not counted).
    pub waiting: i32,
    /// In the pre-queue of a sale not yet open.
    pub prequeued: i32,
    /// Turns running now.
    pub active: i32,
    pub admitted_total: i32,
    pub admitted_last_minute: i32,
    pub abandoned_total: i32,
    /// Seats of dates from today on.
    pub seats_available: i32,
    pub seats_held: i32,
    pub seats_sold: i32,
    pub sold_out: bool,
    pub controls: QueueControls,
    /// Admissions per second achieved lately while people waited; null until seen.
    pub observed_admission_rate: Option<f64>,
    pub read_at: DateTime<Utc>,
}

impl From<&queue::stats::QueueStats> for QueueStats {
    fn from(s: &queue::stats::QueueStats) -> Self {
        Self {
            concert_id: ID(s.concert_id.to_string()),
            waiting: saturate(s.waiting),
            prequeued: saturate(s.prequeued),
            active: saturate(s.active),
            admitted_total: saturate(s.admitted_total),
            admitted_last_minute: saturate(s.admitted_last_minute),
            abandoned_total: saturate(s.abandoned_total),
            seats_available: saturate(s.seats.available),
            seats_held: saturate(s.seats.held),
            seats_sold: saturate(s.seats.sold),
            sold_out: s.sold_out,
            controls: s.controls.into(),
            observed_admission_rate: s.observed_rate.map(|r| (r * 1000.0).round() / 1000.0),
            read_at: s.read_at.and_utc(),
        }
    }
}

fn saturate(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
