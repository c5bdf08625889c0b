//! Output types: the public shape of domain values. Conversions only; no rules here.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::services;
use super::error::ApiResult;
use super::scalars::{Date, Decimal};
use crate::domain::{accounts, booking, catalog, payment, queue, wallet};

#[derive(SimpleObject)]
pub struct AuthPayload {
    pub token: String,
    pub user: User,
}

impl From<accounts::Session> for AuthPayload {
    fn from(s: accounts::Session) -> Self {
        Self {
            token: s.token,
            user: s.user.into(),
        }
    }
}

#[derive(SimpleObject)]
pub struct User {
    pub id: ID,
    pub username: String,
    pub email: String,
    pub balance: Decimal,
    /// FAN for everyone; OPERATOR for accounts that run sales (`encore operator grant`).
    pub role: Role,
}

/// What a user may do.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "accounts::Role")]
pub enum Role {
    Fan,
    Operator,
}

impl From<accounts::User> for User {
    fn from(u: accounts::User) -> Self {
        Self {
            id: ID(u.id.into()),
            username: u.username,
            email: u.email,
            balance: u.balance.into(),
            role: u.role.into(),
        }
    }
}

#[derive(SimpleObject)]
pub struct Concert {
    pub id: ID,
    pub title: String,
    pub venue: String,
    /// Base price of a seat.
    pub price: Decimal,
    pub dates: Vec<Date>,
}

impl From<catalog::Concert> for Concert {
    fn from(c: catalog::Concert) -> Self {
        Self {
            id: ID(c.id.into()),
            title: c.title,
            venue: c.venue,
            price: c.price.into(),
            dates: c.dates.into_iter().map(Date).collect(),
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "catalog::SeatStatus")]
pub enum SeatStatus {
    Available,
    Held,
    Sold,
}

#[derive(SimpleObject)]
pub struct Seat {
    pub number: i32,
    pub status: SeatStatus,
    pub price: Decimal,
}

impl From<catalog::Seat> for Seat {
    fn from(s: catalog::Seat) -> Self {
        Self {
            number: s.number,
            status: s.status.into(),
            price: s.price.into(),
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "queue::QueueStatus")]
pub enum QueueStatus {
    Waiting,
    Active,
    Expired,
    Completed,
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
    /// Send as the `Queue-Token` header.
    pub token: String,
    pub concert_id: ID,
    pub status: QueueStatus,
    /// People ahead of you; 0 once ACTIVE.
    pub position: i32,
    pub estimated_wait_seconds: i32,
    /// When an ACTIVE turn ends.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<queue::QueueTicket> for QueueTicket {
    fn from(t: queue::QueueTicket) -> Self {
        Self {
            token: t.token.into(),
            concert_id: ID(t.concert_id.into()),
            status: t.status.into(),
            position: saturate(t.position),
            estimated_wait_seconds: saturate(t.estimated_wait_seconds),
            expires_at: t.expires_at,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "booking::ReservationStatus")]
pub enum ReservationStatus {
    Held,
    Paid,
    Expired,
    Cancelled,
}

#[derive(SimpleObject)]
pub struct Reservation {
    pub id: ID,
    pub concert_id: ID,
    pub date: Date,
    pub seat_number: i32,
    pub price: Decimal,
    pub status: ReservationStatus,
    pub held_until: DateTime<Utc>,
}

impl From<booking::Reservation> for Reservation {
    fn from(r: booking::Reservation) -> Self {
        Self {
            id: ID(r.id.into()),
            concert_id: ID(r.concert_id.into()),
            date: Date(r.date),
            seat_number: r.seat_number,
            price: r.price.into(),
            status: r.status.into(),
            held_until: r.held_until,
        }
    }
}

pub struct Wallet(pub wallet::Wallet);

#[Object]
impl Wallet {
    async fn balance(&self) -> Decimal {
        (&self.0.balance).into()
    }

    /// Newest first; `first` from 1 to 100.
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> ApiResult<Vec<WalletTransaction>> {
        let list = wallet::transactions(services(ctx)?, &self.0.user_id, first).await?;
        Ok(list.into_iter().map(Into::into).collect())
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "wallet::TransactionKind")]
pub enum WalletTransactionKind {
    Charge,
    Payment,
}

#[derive(SimpleObject)]
pub struct WalletTransaction {
    pub id: ID,
    pub kind: WalletTransactionKind,
    /// Signed: positive for a charge, negative for a payment.
    pub amount: Decimal,
    pub balance_after: Decimal,
    pub created_at: DateTime<Utc>,
}

impl From<wallet::WalletTransaction> for WalletTransaction {
    fn from(t: wallet::WalletTransaction) -> Self {
        Self {
            id: ID(t.id.into()),
            kind: t.kind.into(),
            amount: t.amount.into(),
            balance_after: t.balance_after.into(),
            created_at: t.created_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct Payment {
    pub id: ID,
    pub amount: Decimal,
    pub paid_at: DateTime<Utc>,
    pub reservation: Reservation,
}

impl From<payment::Payment> for Payment {
    fn from(p: payment::Payment) -> Self {
        Self {
            id: ID(p.id.into()),
            amount: p.amount.into(),
            paid_at: p.paid_at,
            reservation: p.reservation.into(),
        }
    }
}

fn saturate(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
