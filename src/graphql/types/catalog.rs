//! Concerts, their price tiers and seats as the API shows them.

use async_graphql::{ComplexObject, Context, Enum, ID, SimpleObject};
use chrono::{DateTime, Utc};

use super::super::scalars::{Date, Decimal};
use crate::domain::catalog;
use crate::domain::services::Services;

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Concert {
    pub id: ID,
    pub title: String,
    pub venue: String,
    pub description: Option<String>,
    /// The lowest seat price.
    pub price: Decimal,
    pub dates: Vec<Date>,
    pub seats_per_date: i32,
    /// Seats per row, numbered from the stage (equal to `seatsPerDate` for a concert without
    /// rows: one row).
    pub seats_per_row: i32,
    #[graphql(skip)]
    pub own_share: Option<u32>,
    /// Seat ranges and their prices, by first seat.
    pub price_tiers: Vec<PriceTier>,
    /// When the scheduled sale opens; null when none is scheduled.
    pub sale_opens_at: Option<DateTime<Utc>>,
    /// Fans can join the line (`enterQueue`); false for a concert whose sale is not scheduled
    /// yet or has not opened (entries then get `SALE_NOT_OPEN`, or a pre-queue place).
    pub on_sale: bool,
    /// Every seat of every date is sold; the waiting room admits nobody until seats come back.
    pub sold_out: bool,
}

impl From<catalog::Concert> for Concert {
    fn from(c: catalog::Concert) -> Self {
        Self {
            id: ID(c.id.into()),
            title: c.title,
            venue: c.venue,
            description: c.description,
            price: c.price.into(),
            dates: c.dates.into_iter().map(Date).collect(),
            seats_per_date: c.seats_per_date,
            seats_per_row: c.seats_per_row.unwrap_or(c.seats_per_date),
            own_share: c.max_tickets_per_fan,
            price_tiers: c.price_tiers.into_iter().map(Into::into).collect(),
            sale_opens_at: c.sale_opens_at,
            on_sale: c.on_sale,
            sold_out: c.sold_out,
        }
    }
}

#[ComplexObject]
impl Concert {
    /// Most seats of this concert (every date together) one fan may hold and own at once;
    /// refunded, released and lapsed seats give the allowance back.
    async fn max_tickets_per_fan(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let default = ctx.data::<Services>()?.rules.max_tickets_per_fan;
        let share = self.own_share.unwrap_or(u32::from(default));
        Ok(i32::try_from(share).unwrap_or(i32::MAX))
    }
}

/// Seats `fromSeat` to `toSeat` (inclusive) of every date cost `price`.
#[derive(SimpleObject)]
pub struct PriceTier {
    pub name: String,
    pub from_seat: i32,
    pub to_seat: i32,
    pub price: Decimal,
}

impl From<catalog::PriceTier> for PriceTier {
    fn from(t: catalog::PriceTier) -> Self {
        Self {
            name: t.name,
            from_seat: t.from_seat.as_i32(),
            to_seat: t.to_seat.as_i32(),
            price: t.price.into(),
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
    /// The name of the seat's price tier.
    pub tier: String,
    /// The seat's row, from 1 (nearest the stage); 1 for every seat of a concert without rows.
    pub row: i32,
}

impl From<catalog::Seat> for Seat {
    fn from(s: catalog::Seat) -> Self {
        Self {
            number: s.number.as_i32(),
            status: s.status.into(),
            price: s.price.into(),
            tier: s.tier,
            row: s.row.into(),
        }
    }
}
