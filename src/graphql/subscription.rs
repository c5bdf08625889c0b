//! Subscription root. Streams come from the instance's live hub, so an open subscription costs
//! no database work per tick of its own.

use async_graphql::{Context, ID, Subscription};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::context::{
    admitted_concert, claimed_viewer, optional_viewer, parse_concert_id, required_queue_token,
    services,
};
use super::error::ApiResult;
use super::scalars::Date;
use super::types::{QueueStats, QueueTicket, Seat, WaitlistEntry};
use crate::domain::live;

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Your place in line, pushed: the ticket at once, then whenever status or `paused` changes,
    /// the position moves (every step within 100 of the front; further back, a twentieth of the
    /// way or 5 s after the last push) or the expected admission moment moves by more than 2 s or
    /// a tenth of the wait (count the wait down yourself between pushes); completes after EXPIRED
    /// or COMPLETED. Needs `queueToken` in `connection_init`. An open subscription counts as
    /// presence.
    async fn queue_ticket(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<BoxStream<'static, QueueTicket>> {
        Ok(queue_ticket_stream(ctx).await?)
    }

    /// OPERATOR. The concert's waiting room statistics at once, then every tick. Needs
    /// `authorization` in `connection_init`.
    async fn queue_stats(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
    ) -> async_graphql::Result<BoxStream<'static, QueueStats>> {
        Ok(stats_stream(ctx, concert_id).await?)
    }

    /// Your waitlist entries (the 50 most recent), pushed at once and whenever one changes:
    /// an offer arrives (with its order and deadline), is paid, lapses or is declined, or your
    /// position moves. Needs `authorization` in `connection_init`; no queue turn.
    async fn my_waitlist(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<BoxStream<'static, Vec<WaitlistEntry>>> {
        Ok(waitlist_stream(ctx).await?)
    }

    /// Each seat of the date whose status changes (held, released, expired, sold), from any
    /// instance, within about one tick. Needs an ACTIVE `queueToken` for the concert.
    async fn seat_updates(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
        date: Date,
    ) -> async_graphql::Result<BoxStream<'static, Seat>> {
        Ok(seat_stream(ctx, concert_id, date).await?)
    }
}

async fn queue_ticket_stream(ctx: &Context<'_>) -> ApiResult<BoxStream<'static, QueueTicket>> {
    let services = services(ctx)?;
    let token = required_queue_token(ctx, "send queueToken in connection_init")?;
    let user_id = optional_viewer(ctx)?;
    let stream = live::watch_ticket(services, token, user_id).await?;
    Ok(stream.map(QueueTicket::from).boxed())
}

async fn waitlist_stream(ctx: &Context<'_>) -> ApiResult<BoxStream<'static, Vec<WaitlistEntry>>> {
    // Reads the fan's entries: UNAUTHENTICATED without a valid token.
    let user_id = claimed_viewer(ctx)?;
    let stream = live::watch_waitlist(services(ctx)?, user_id).await?;
    Ok(stream
        .map(|entries| entries.into_iter().map(WaitlistEntry::from).collect())
        .boxed())
}

async fn stats_stream(
    ctx: &Context<'_>,
    concert_id: ID,
) -> ApiResult<BoxStream<'static, QueueStats>> {
    // The operator's role is read in the use case's own unit of work.
    let operator = claimed_viewer(ctx)?;
    let concert_id = parse_concert_id(&concert_id)?;
    let stream = live::watch_stats(services(ctx)?, operator, &concert_id).await?;
    Ok(stream.map(|s| QueueStats::from(s.as_ref())).boxed())
}

async fn seat_stream(
    ctx: &Context<'_>,
    concert_id: ID,
    date: Date,
) -> ApiResult<BoxStream<'static, Seat>> {
    // The date is checked by the feed's first read (an existing feed implies a valid date).
    let concert_id = admitted_concert(ctx, &concert_id).await?;
    let services = services(ctx)?;
    let stream = live::watch_seats(services, &concert_id, date.0).await?;
    Ok(stream.map(Seat::from).boxed())
}
