//! Health endpoints, three questions for three askers:
//! - `/health/live` (the process supervisor): is the process serving HTTP at all? Always 200.
//! - `/health/ready` (the load balancer): should traffic come here? 200 when the database answers
//!   and the instance is not shutting down, else 503.
//! - `/health` (people, dashboards): the database and the pool reported separately, so an
//!   exhausted pool is not mistaken for a database outage (200 when the database is up).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

/// How long a health probe may wait on the database before answering "down".
const HEALTH_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) async fn health(State(state): State<AppState>) -> Response {
    let database_up = state.services.db.probe(HEALTH_PROBE_TIMEOUT).await;
    let pool = state.services.db.status();
    let status = if database_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if database_up { "ok" } else { "unavailable" },
        "database": if database_up { "up" } else { "down" },
        "pool": pool,
        "shuttingDown": state.shutdown.is_cancelled(),
    });
    (status, Json(body)).into_response()
}

pub(super) async fn ready(State(state): State<AppState>) -> Response {
    if state.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": "shutting down" })),
        )
            .into_response();
    }
    if !state.services.db.probe(HEALTH_PROBE_TIMEOUT).await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": "database down" })),
        )
            .into_response();
    }
    (StatusCode::OK, Json(json!({ "ready": true }))).into_response()
}

pub(super) async fn live() -> Response {
    (StatusCode::OK, Json(json!({ "live": true }))).into_response()
}
