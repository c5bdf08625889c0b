//! Orders and their seats as the API shows them: orders, the seed API's reservations (one per
//! seat) and payments.

use async_graphql::{ComplexObject, Context, Enum, ID, SimpleObject};
use chrono::{DateTime, Utc};

use super::super::context::services;
use super::super::error::ApiResult;
use super::super::scalars::{Date, Decimal};
use super::catalog::Concert;
use crate::domain::catalog;
use crate::domain::orders::{self, pay, refund, search};
use crate::domain::time::{chrono_duration, utc};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "orders::ReservationStatus")]
pub enum ReservationStatus {
    Held,
    Paid,
    Expired,
    Cancelled,
    /// Paid, then refunded: the price went back to the wallet and the seat back on sale.
    Refunded,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "orders::OrderStatus")]
pub enum OrderStatus {
    /// Its seats are yours until `heldUntil`; pay with `payOrder`.
    Held,
    Paid,
    /// Given back (`releaseOrder`, or a waitlist offer declined) before it was paid.
    Released,
    /// `heldUntil` passed unpaid: its seats went back on sale.
    Expired,
    /// Every seat of it refunded.
    Refunded,
}

/// One seat of a reservation: the seed API's view of a hold (an order of one seat, or one seat
/// of a bigger order).
#[derive(SimpleObject)]
pub struct Reservation {
    pub id: ID,
    /// The order this seat belongs to.
    pub order_id: ID,
    pub concert_id: ID,
    pub date: Date,
    pub seat_number: i32,
    pub price: Decimal,
    pub status: ReservationStatus,
    pub held_until: DateTime<Utc>,
}

impl From<orders::Reservation> for Reservation {
    fn from(r: orders::Reservation) -> Self {
        Self {
            id: ID(r.id.into()),
            order_id: ID(r.order_id.into()),
            concert_id: ID(r.concert_id.into()),
            date: Date(r.date),
            seat_number: r.seat_number.as_i32(),
            price: r.price.into(),
            status: r.status.into(),
            held_until: r.held_until,
        }
    }
}

/// A reservation of a concert as an operator finds it (`ticketSearch`): the seat, whose it is,
/// and the id `refund` takes.
#[derive(SimpleObject)]
pub struct ConcertTicket {
    pub reservation_id: ID,
    pub order_id: ID,
    pub date: Date,
    pub seat_number: i32,
    /// The seat's price tier when it was taken.
    pub tier: String,
    pub price: Decimal,
    pub status: ReservationStatus,
    pub fan_email: String,
    pub fan_username: String,
    /// Until when it was (or is) held unpaid.
    pub held_until: DateTime<Utc>,
    /// When it was paid (its order's payment); null for a seat never paid.
    pub paid_at: Option<DateTime<Utc>>,
}

impl From<search::ConcertTicket> for ConcertTicket {
    fn from(t: search::ConcertTicket) -> Self {
        let r = t.reservation;
        Self {
            reservation_id: ID(r.id.into()),
            order_id: ID(r.order_id.into()),
            date: Date(r.date),
            seat_number: r.seat_number.as_i32(),
            tier: r.tier,
            price: r.price.into(),
            status: r.status.into(),
            fan_email: t.fan_email,
            fan_username: t.fan_username,
            held_until: r.held_until,
            paid_at: t.paid_at,
        }
    }
}

/// A seat of an order.
#[derive(SimpleObject)]
pub struct OrderSeat {
    pub number: i32,
    pub price: Decimal,
    /// The seat's price tier.
    pub tier: String,
    /// HELD, PAID, EXPIRED, CANCELLED (released on its own) or REFUNDED.
    pub status: ReservationStatus,
    /// The seat's reservation, for the seed API (`pay`, `releaseSeat`, `refund`).
    pub reservation_id: ID,
}

/// The seats you hold on one date, paid, released or refunded together.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Order {
    pub id: ID,
    pub status: OrderStatus,
    pub concert_id: ID,
    pub date: Date,
    /// Its seats by number.
    pub seats: Vec<OrderSeat>,
    /// What it costs (once paid: what was paid), its released seats left out.
    pub total: Decimal,
    /// Until when its seats are yours unpaid (a waitlist offer's deadline for offers).
    pub held_until: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Offered from the waitlist: paying it needs no queue turn.
    pub from_waitlist: bool,
    #[graphql(skip)]
    pub concert: crate::db::ids::ConcertId,
}

#[ComplexObject]
impl Order {
    /// The concert.
    async fn concert(&self, ctx: &Context<'_>) -> ApiResult<Concert> {
        Ok(catalog::concert(services(ctx)?, &self.concert)
            .await?
            .into())
    }

    /// Until when you may `refund` its paid seats yourself: `REFUND_CUTOFF` before its date
    /// begins (UTC); after that `REFUND_WINDOW_CLOSED` (an operator may refund any time).
    async fn refundable_until(&self, ctx: &Context<'_>) -> ApiResult<DateTime<Utc>> {
        let cutoff = chrono_duration(services(ctx)?.rules.refund_cutoff);
        Ok(utc(refund::fan_refunds_close(self.date.0, cutoff)))
    }
}

impl From<orders::Order> for Order {
    fn from(o: orders::Order) -> Self {
        Self {
            id: ID(o.id.into()),
            status: o.status.into(),
            concert_id: ID(o.concert_id.to_string()),
            concert: o.concert_id,
            date: Date(o.date),
            seats: o
                .seats
                .into_iter()
                .map(|s| OrderSeat {
                    number: s.seat_number.as_i32(),
                    price: s.price.into(),
                    tier: s.tier,
                    status: s.status.into(),
                    reservation_id: ID(s.id.into()),
                })
                .collect(),
            total: o.total.into(),
            held_until: o.held_until,
            paid_at: o.paid_at,
            created_at: o.created_at,
            from_waitlist: o.source == orders::OrderSource::Waitlist,
        }
    }
}

#[derive(SimpleObject)]
pub struct Payment {
    pub id: ID,
    /// The whole order's total: one ledger entry.
    pub amount: Decimal,
    pub paid_at: DateTime<Utc>,
    /// The seat `pay` was asked for (for `payOrder`, the order's first).
    pub reservation: Reservation,
    /// The order paid.
    pub order: Order,
}

impl From<pay::Payment> for Payment {
    fn from(p: pay::Payment) -> Self {
        Self {
            id: ID(p.id.into()),
            amount: p.amount.into(),
            paid_at: p.paid_at,
            reservation: p.reservation.into(),
            order: p.order.into(),
        }
    }
}

/// Your fair share of a concert: seats held and paid (every date) against its limit.
#[derive(SimpleObject)]
pub struct TicketAllowance {
    pub limit: i32,
    pub used: i32,
    pub remaining: i32,
}

impl From<orders::Allowance> for TicketAllowance {
    fn from(a: orders::Allowance) -> Self {
        let int = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        Self {
            limit: int(a.limit),
            used: int(a.used),
            remaining: int(a.limit.saturating_sub(a.used)),
        }
    }
}
