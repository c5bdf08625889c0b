//! What a request carries: the services and the [`Viewer`] the transport resolved once (HTTP
//! headers, or the websocket's `connection_init`). Resolvers only ask it for the signed-in user or
//! the queue token; no resolver verifies a credential.

use async_graphql::{Context, ID};

use super::error::ApiError;
use crate::domain::auth::Viewer;
use crate::domain::inputs::parse_id;
use crate::domain::{Error, Services, queue};

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

/// The signed-in user's id; `UNAUTHENTICATED` without a valid bearer token.
pub fn viewer(ctx: &Context<'_>) -> Result<String, ApiError> {
    Ok(caller(ctx).user_id()?.to_owned())
}

/// The signed-in user's id when a credential was sent (and must then be valid).
pub fn optional_viewer(ctx: &Context<'_>) -> Result<Option<String>, ApiError> {
    Ok(caller(ctx).optional_user_id()?.map(str::to_owned))
}

/// The concert an operation names, after checking the caller has an ACTIVE turn for it (and, when
/// signed in, that the queue token is theirs). The gate of the seat map and its live feed.
pub async fn admitted_concert(ctx: &Context<'_>, concert_id: &ID) -> Result<String, ApiError> {
    let concert_id = parse_id(concert_id, "concertId")?;
    let user_id = optional_viewer(ctx)?;
    queue::require_active(
        services(ctx)?,
        queue_token(ctx),
        &concert_id,
        user_id.as_deref(),
    )
    .await?;
    Ok(concert_id)
}

pub fn queue_token<'a>(ctx: &Context<'a>) -> Option<&'a str> {
    caller(ctx).queue_token()
}
