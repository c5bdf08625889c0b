//! What a request carries: the services and the [`Viewer`] the transport resolved once (HTTP
//! headers, or the websocket's `connection_init`). Resolvers only ask it for the signed-in user or
//! the queue token; no resolver verifies a credential.

use async_graphql::{Context, ID};

use super::error::ApiError;
use crate::db::ids::{ConcertId, OrderId, QueueToken, ReservationId, UserId, WaitlistEntryId};
use std::sync::Arc;

use async_graphql::ServerResult;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};

use crate::domain::accounts::auth::{AccountCheck, Viewer};
use crate::domain::inputs::parse_id;
use crate::domain::services::Services;
use crate::domain::{Error, live};

pub fn services<'a>(ctx: &Context<'a>) -> Result<&'a Services, ApiError> {
    ctx.data::<Services>()
        .map_err(|_| Error::Internal(anyhow::anyhow!("Services missing from schema data")).into())
}

/// The caller as the transport resolved it; anonymous when a request carries none.
fn caller<'a>(ctx: &Context<'a>) -> &'a Viewer {
    static ANONYMOUS: std::sync::OnceLock<Viewer> = std::sync::OnceLock::new();
    ctx.data_opt::<Viewer>()
        .unwrap_or_else(|| ANONYMOUS.get_or_init(Viewer::default))
}

/// The signed-in user's id, whose account exists; `UNAUTHENTICATED` without a valid bearer
/// token, or when the token's account is gone (asked once per operation: [`PerOperation`]).
pub async fn viewer<'a>(ctx: &Context<'a>) -> Result<&'a UserId, ApiError> {
    // Every operation has its check (`PerOperation`); a schema built without it asks each time.
    let unshared = AccountCheck::default();
    let check = ctx.data_opt::<AccountCheck>().unwrap_or(&unshared);
    Ok(caller(ctx).existing_user_id(services(ctx)?, check).await?)
}

/// An async-graphql extension giving every operation, over HTTP or a websocket, what it must not
/// share with another: its own [`AccountCheck`], so a socket that outlives an account learns of
/// it at its next operation.
pub struct PerOperation;

impl ExtensionFactory for PerOperation {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerOperation)
    }
}

#[async_trait::async_trait]
impl Extension for PerOperation {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        request.data.insert(AccountCheck::default());
        next.run(ctx, request).await
    }
}

/// The signed-in user's id when a credential was sent (it must then be valid), for the fields
/// a queue token opens (polls, seat maps and their feeds), where the id only has to match the
/// ticket's. Those are answered from memory, so the account is not asked for: the queue token
/// is the credential there.
pub fn optional_viewer<'a>(ctx: &Context<'a>) -> Result<Option<&'a UserId>, ApiError> {
    Ok(caller(ctx).optional_user_id()?)
}

/// The id a valid token names, not checked against the accounts: only for use cases that lock
/// or read the user's row themselves and answer `UNAUTHENTICATED` when it is gone (holds,
/// payments, top-ups, entries, refunds, operator work, `me`); see `Viewer::user_id`.
pub fn claimed_viewer<'a>(ctx: &Context<'a>) -> Result<&'a UserId, ApiError> {
    Ok(caller(ctx).user_id()?)
}

/// The client's address, for per-address rate limits (none for in-process callers).
pub fn client_address(ctx: &Context<'_>) -> Option<std::net::IpAddr> {
    caller(ctx).address()
}

/// The queue token sent, if any (`NOT_ADMITTED` when it cannot name a ticket).
pub fn queue_token<'a>(ctx: &Context<'a>) -> Result<Option<&'a QueueToken>, ApiError> {
    Ok(caller(ctx).queue_token()?)
}

/// The queue token this operation needs: `NOT_ADMITTED` with `missing` as the message without one.
pub fn required_queue_token<'a>(
    ctx: &Context<'a>,
    missing: &str,
) -> Result<&'a QueueToken, ApiError> {
    queue_token(ctx)?.ok_or_else(|| Error::not_admitted(missing).into())
}

/// A concert id argument.
pub fn parse_concert_id(id: &ID) -> Result<ConcertId, ApiError> {
    Ok(parse_id(id, "concertId", ConcertId::parse)?)
}

/// An order id argument.
pub fn parse_order_id(id: &ID) -> Result<OrderId, ApiError> {
    Ok(parse_id(id, "orderId", OrderId::parse)?)
}

/// A waitlist entry id argument.
pub fn parse_entry_id(id: &ID) -> Result<WaitlistEntryId, ApiError> {
    Ok(parse_id(id, "entryId", WaitlistEntryId::parse)?)
}

/// A reservation id argument.
pub fn parse_reservation_id(id: &ID) -> Result<ReservationId, ApiError> {
    Ok(parse_id(id, "reservationId", ReservationId::parse)?)
}

/// The concert an operation names, after checking the caller has an ACTIVE turn for it (and, when
/// signed in, that the queue token is theirs). The gate of the seat map and its live feed.
pub async fn admitted_concert(ctx: &Context<'_>, id: &ID) -> Result<ConcertId, ApiError> {
    let concert = parse_concert_id(id)?;
    let user_id = optional_viewer(ctx)?;
    live::require_turn(services(ctx)?, queue_token(ctx)?, &concert, user_id).await?;
    Ok(concert)
}
