//! The waitlist as the API shows it.

use async_graphql::{ComplexObject, Context, Enum, ID, SimpleObject};
use chrono::{DateTime, Utc};

use super::super::context::{services, viewer};
use super::super::error::ApiResult;
use super::super::scalars::Date;
use super::orders::Order;
use crate::db::ids::OrderId;
use crate::domain::orders::{views, waitlist};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::db::states::WaitlistStatus")]
pub enum WaitlistStatus {
    /// In line: `position` entries ahead.
    Waiting,
    /// Seats are held for you until `offerExpiresAt`: pay the `offer` with `payOrder` (no queue
    /// turn needed), or decline it with `releaseOrder`.
    Offered,
    /// You paid the offer.
    Accepted,
    /// The offer lapsed unpaid; its seats went to the next fan.
    Expired,
    /// You left the waitlist or declined the offer.
    Left,
}

/// Your place on a sold-out date's waitlist.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct WaitlistEntry {
    pub id: ID,
    pub concert_id: ID,
    pub date: Date,
    /// Seats asked for.
    pub count: i32,
    pub status: WaitlistStatus,
    /// At most this many entries ahead of yours (0: you are next); null unless WAITING. Never
    /// grows.
    pub position: Option<i32>,
    /// When the offer passes to the next fan unless paid.
    pub offer_expires_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub offer_id: Option<OrderId>,
}

#[ComplexObject]
impl WaitlistEntry {
    /// The order offered to you (OFFERED, and kept after).
    async fn offer(&self, ctx: &Context<'_>) -> ApiResult<Option<Order>> {
        let Some(order) = &self.offer_id else {
            return Ok(None);
        };
        let user_id = viewer(ctx).await?;
        Ok(Some(
            views::my_order(services(ctx)?, user_id, order)
                .await?
                .into(),
        ))
    }
}

impl From<waitlist::WaitlistEntry> for WaitlistEntry {
    fn from(e: waitlist::WaitlistEntry) -> Self {
        Self {
            id: ID(e.id.into()),
            concert_id: ID(e.concert_id.into()),
            date: Date(e.date),
            count: e.count.into(),
            status: e.status.into(),
            position: e.position.map(|p| i32::try_from(p).unwrap_or(i32::MAX)),
            offer_expires_at: e.offer_expires_at,
            offer_id: e.offer,
        }
    }
}
