//! HTTP transport: the axum router. `/graphql` (GraphQL over HTTP, see `graphql_http`),
//! `/graphql/ws` (subscriptions), `/health`, `/health/ready`, `/health/live`, the web app under
//! `/app/` and GraphiQL's files under `/graphiql/`; and apart from it,
//! on its own listener (`METRICS_BIND`), `/metrics` ([`metrics_router`]): what an instance
//! counts is for its operators, not for whoever reaches the service port.
//! Credentials are read from headers and resolved into a `Viewer` once per request, here.
//!
//! Every request gets an `x-request-id` (the client's, or a new UUID), echoed on the response and
//! carried by every log line of the request. Every request has a deadline (`REQUEST_TIMEOUT`);
//! past it the work is dropped (its database work rolls back, see `db::pool`) and the client gets
//! a GraphQL error with code `TIMEOUT` and HTTP 504.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

mod client_address;
mod graphiql;
mod graphql_http;
mod health;
pub mod server;
mod ws;
mod ws_protocol;

use crate::config::ServerLimits;
use crate::domain::services::Services;
use crate::graphql::error::{ErrorCode, OUTCOME_UNKNOWN};
use crate::graphql::{self, AppSchema};

pub const QUEUE_TOKEN_HEADER: &str = "queue-token";
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What every handler and middleware reads, shared behind one pointer: axum clones the state for
/// every layer of every request.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub(crate) struct Shared {
    schema: AppSchema,
    services: Services,
    limits: Arc<ServerLimits>,
    /// Cancelled when the instance starts shutting down: readiness turns 503, websockets close
    /// with 1001.
    shutdown: CancellationToken,
    /// Open websocket sessions; shutdown waits for them to send their close frame.
    sessions: TaskTracker,
    /// One permit per open websocket (`WS_MAX_CONNECTIONS`).
    ws_slots: Arc<Semaphore>,
    /// GraphiQL's assets, when installed (`graphiql`).
    graphiql: Option<graphiql::Graphiql>,
}

/// What the router needs beyond the services.
pub struct RouterParts {
    pub persisted: Arc<crate::graphql::persisted_queries::Store>,
    pub limits: ServerLimits,
    pub shutdown: CancellationToken,
    pub sessions: TaskTracker,
}

/// The reference web app (`web/app`, built into `WEB_DIR/app/dist`): its files, and its
/// `index.html` for any other path under `/app/` (the app routes in the browser).
fn web_app(
    web_dir: &std::path::Path,
) -> tower_http::services::ServeDir<tower_http::services::ServeFile> {
    let dist = web_dir.join("app").join("dist");
    let index = tower_http::services::ServeFile::new(dist.join("index.html"));
    tower_http::services::ServeDir::new(dist).fallback(index)
}

pub fn router(services: Services, parts: RouterParts) -> Router {
    let parts_web_dir = parts.limits.web_dir.clone();
    let state = AppState(Arc::new(Shared {
        schema: graphql::schema(
            services.clone(),
            &parts.limits.query,
            parts.persisted,
            parts.limits.production,
        ),
        services,
        ws_slots: Arc::new(Semaphore::new(parts.limits.ws_max_connections as usize)),
        graphiql: graphiql::Graphiql::load(&parts.limits.web_dir.join("graphiql")),
        limits: Arc::new(parts.limits),
        shutdown: parts.shutdown,
        sessions: parts.sessions,
    }));
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static(QUEUE_TOKEN_HEADER),
            HeaderName::from_static(REQUEST_ID_HEADER),
        ])
        .expose_headers([HeaderName::from_static(REQUEST_ID_HEADER)]);
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    // The GraphQL endpoints count requests per client address; health and metrics do not.
    let graphql = Router::new()
        .route("/graphql", get(graphql_http::get).post(graphql_http::post))
        .route("/graphql/ws", get(ws::graphql_ws))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            client_address::limit_requests,
        ));
    Router::new()
        .merge(graphql)
        .route("/health", get(health::health))
        .route("/health/ready", get(health::ready))
        .route("/health/live", get(health::live))
        .route("/graphiql/{file}", get(graphiql::asset))
        .route(
            "/app",
            get(|| async { axum::response::Redirect::permanent("/app/") }),
        )
        .nest_service("/app/", web_app(&parts_web_dir))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit_request_time,
        ))
        .with_state(state)
        .layer(middleware::from_fn(record_request))
        .layer(cors)
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// The span every log line of a request is recorded in.
fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", id, method = %request.method(), path = request.uri().path())
}

/// `/metrics` alone, for the metrics listener.
pub fn metrics_router(services: Services, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .with_state(MetricsState { services, metrics })
}

#[derive(Clone)]
struct MetricsState {
    services: Services,
    metrics: PrometheusHandle,
}

async fn metrics_page(State(state): State<MetricsState>) -> impl IntoResponse {
    let pool = state.services.db.status();
    metrics::gauge!("db_pool_size").set(pool.size as f64);
    metrics::gauge!("db_pool_max").set(pool.max as f64);
    metrics::gauge!("db_pool_idle").set(pool.idle as f64);
    metrics::gauge!("db_pool_waiting").set(pool.waiting as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// The request deadline. Dropping the handler's future is safe at any await (see `db::pool`).
async fn limit_request_time(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.limits.request_timeout;
    // A POST may carry a mutation, stopped perhaps while its COMMIT was on the wire.
    let may_have_written = request.method() == Method::POST;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("graphql_errors_total", "code" => ErrorCode::Timeout.as_str())
                .increment(1);
            let message = format!(
                "the request took longer than {} and was stopped",
                humantime::format_duration(limit)
            );
            let mut body = error_body(ErrorCode::Timeout, &message);
            if may_have_written {
                // Its transaction rolled back, unless it was already committing: the client
                // resends a mutation with the same idempotency key.
                body["errors"][0]["extensions"]["outcome"] = OUTCOME_UNKNOWN.into();
            }
            (StatusCode::GATEWAY_TIMEOUT, Json(body)).into_response()
        }
    }
}

/// A JSON body with a status.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (status, Json(body.clone())).into_response()
}

/// A GraphQL-shaped error body outside GraphQL execution (timeouts, refusals), so clients parse
/// every failure the same way.
pub(crate) fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (status, Json(error_body(code, message))).into_response()
}

fn error_body(code: ErrorCode, message: &str) -> serde_json::Value {
    serde_json::json!({
        "data": null,
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }],
    })
}

async fn record_request(request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("path", path),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
