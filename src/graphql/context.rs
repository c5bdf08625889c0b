//! What a request carries: the services and the caller's credentials. Transports (HTTP headers
//! now, websocket `connection_init` later) build a [`Credentials`] and put it in the request data;
//! resolvers only ask for the signed-in user or the queue token.

use async_graphql::{Context, ID};

use super::error::ApiError;
use crate::domain::inputs::parse_id;
use crate::domain::{Error, Services, queue};

#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The raw `Authorization` value, e.g. "Bearer eyJ...".
    pub authorization: Option<String>,
    pub queue_token: Option<String>,
}

pub fn services<'a>(ctx: &Context<'a>) -> Result<&'a Services, ApiError> {
    ctx.data::<Services>()
        .map_err(|_| Error::Internal(anyhow::anyhow!("Services missing from schema data")).into())
}

fn credentials<'a>(ctx: &Context<'a>) -> Option<&'a Credentials> {
    ctx.data_opt::<Credentials>()
}

/// The signed-in user's id; `UNAUTHENTICATED` without a valid bearer token.
pub fn viewer(ctx: &Context<'_>) -> Result<String, ApiError> {
    optional_viewer(ctx)?.ok_or_else(|| {
        Error::Unauthenticated("sign in: send Authorization: Bearer <token>".into()).into()
    })
}

/// The signed-in user's id when an `Authorization` header was sent (and must then be valid).
pub fn optional_viewer(ctx: &Context<'_>) -> Result<Option<String>, ApiError> {
    let Some(header) = credentials(ctx).and_then(|c| c.authorization.as_deref()) else {
        return Ok(None);
    };
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Unauthenticated("Authorization must be \"Bearer <token>\"".into()))?;
    Ok(Some(services(ctx)?.tokens.verify(token)?))
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
    credentials(ctx)
        .and_then(|c| c.queue_token.as_deref())
        .filter(|t| !t.is_empty())
}
