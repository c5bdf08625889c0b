//! Holds and purchases as the API shows them: reservations and payments.

use async_graphql::{Enum, ID, SimpleObject};
use chrono::{DateTime, Utc};

use super::super::scalars::{Date, Decimal};
use crate::domain::reservations::booking;
use crate::domain::reservations::payment;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "booking::ReservationStatus")]
pub enum ReservationStatus {
    Held,
    Paid,
    Expired,
    Cancelled,
    /// Paid, then refunded: the price went back to the wallet and the seat back on sale.
    Refunded,
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
            seat_number: r.seat_number.as_i32(),
            price: r.price.into(),
            status: r.status.into(),
            held_until: r.held_until,
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
