//! Input objects of the operator API: shapes only; `domain::lineup` checks them.

use async_graphql::InputObject;

use super::scalars::{Date, Decimal};
use crate::domain::lineup;

/// Seats `fromSeat` to `toSeat` (inclusive) of every date cost `price`.
#[derive(InputObject)]
pub struct PriceTierInput {
    pub name: String,
    pub from_seat: i32,
    pub to_seat: i32,
    pub price: Decimal,
}

/// A new concert. Give `price` (one price for every seat) or `priceTiers` (ranges covering seats
/// 1 to `seatsPerDate` without a gap or an overlap).
#[derive(InputObject)]
pub struct CreateConcertInput {
    pub title: String,
    pub venue: String,
    pub description: Option<String>,
    pub dates: Vec<Date>,
    #[graphql(default = 50)]
    pub seats_per_date: i32,
    /// Seats per row, numbered from the stage: seat 1 is the first of row 1. Left out, the whole
    /// date is one row.
    pub seats_per_row: Option<i32>,
    /// Most seats of this concert (every date) one fan may hold and own at once. Left out:
    /// `MAX_TICKETS_PER_FAN`.
    pub max_tickets_per_fan: Option<i32>,
    pub price: Option<Decimal>,
    pub price_tiers: Option<Vec<PriceTierInput>>,
}

impl From<CreateConcertInput> for lineup::ConcertRequest {
    fn from(i: CreateConcertInput) -> Self {
        Self {
            title: i.title,
            venue: i.venue,
            description: i.description,
            dates: i.dates.into_iter().map(|d| d.0).collect(),
            seats_per_date: i.seats_per_date,
            seats_per_row: i.seats_per_row,
            max_tickets_per_fan: i.max_tickets_per_fan,
            price: i.price.map(|p| p.0),
            tiers: i.price_tiers.map(|tiers| {
                tiers
                    .into_iter()
                    .map(|t| lineup::TierRequest {
                        name: t.name,
                        from_seat: t.from_seat,
                        to_seat: t.to_seat,
                        price: t.price.0,
                    })
                    .collect()
            }),
        }
    }
}

/// What to change on a concert; a field left out keeps its value.
#[derive(InputObject)]
pub struct UpdateConcertInput {
    /// The concert's fair share (1 to 1000); null: back to `MAX_TICKETS_PER_FAN`. Applies to
    /// seats taken from then on.
    pub max_tickets_per_fan: async_graphql::MaybeUndefined<i32>,
}

impl From<UpdateConcertInput> for lineup::ConcertUpdate {
    fn from(i: UpdateConcertInput) -> Self {
        Self {
            max_tickets_per_fan: match i.max_tickets_per_fan {
                async_graphql::MaybeUndefined::Undefined => None,
                async_graphql::MaybeUndefined::Null => Some(None),
                async_graphql::MaybeUndefined::Value(n) => Some(Some(n)),
            },
        }
    }
}

/// Queue controls to change; a field left out keeps its value.
#[derive(InputObject)]
pub struct QueueControlsInput {
    pub paused: Option<bool>,
    pub admit_per_second: Option<i32>,
    pub active_limit: Option<i32>,
}
