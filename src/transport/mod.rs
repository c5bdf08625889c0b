//! HTTP transport: the axum router. `/graphql` (POST for operations, GET for GraphiQL),
//! `/graphql/ws` (subscriptions), `/health` and `/metrics`. Credentials are read from headers here and handed to GraphQL as request data.

use std::time::{Duration, Instant};

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::cors::{Any, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

mod ws;

use crate::domain::Services;
use crate::graphql::{self, AppSchema, Credentials};

pub const QUEUE_TOKEN_HEADER: &str = "queue-token";

/// Requests taking longer are cut off; the transaction they were in rolls back.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub(crate) struct AppState {
    schema: AppSchema,
    services: Services,
    metrics: PrometheusHandle,
}

pub fn router(services: Services, metrics: PrometheusHandle) -> Router {
    let state = AppState {
        schema: graphql::schema(services.clone()),
        services,
        metrics,
    };
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static(QUEUE_TOKEN_HEADER),
        ]);
    Router::new()
        .route("/graphql", get(graphiql).post(graphql_handler))
        .route("/graphql/ws", get(ws::graphql_ws))
        .route("/health", get(health))
        .route("/metrics", get(metrics_page))
        .with_state(state)
        .layer(middleware::from_fn(record_request))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
}

async fn graphql_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let credentials = Credentials {
        authorization: header_str(&headers, header::AUTHORIZATION.as_str()),
        queue_token: header_str(&headers, QUEUE_TOKEN_HEADER),
    };
    let request = request.into_inner();
    let query = request.query.clone();
    let mut response = state.schema.execute(request.data(credentials)).await;
    graphql::error::ensure_codes(&mut response.errors, &query);
    response.into()
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .title("Encore GraphiQL")
            .finish(),
    )
}

/// 200 when the database answers, 503 when it does not.
async fn health(State(state): State<AppState>) -> Response {
    let database_up = match state.services.pool.get().await {
        Ok(mut conn) => {
            diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), &mut conn)
                .await
                .is_ok()
        }
        Err(_) => false,
    };
    let status = if database_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if database_up { "ok" } else { "unavailable" },
        "database": if database_up { "up" } else { "down" },
    });
    (status, Json(body)).into_response()
}

async fn metrics_page(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
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
