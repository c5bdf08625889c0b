//! GraphQL over HTTP at `/graphql`, to the letter of the GraphQL-over-HTTP spec:
//!
//! - **POST** with `Content-Type: application/json`: queries and mutations. The body is read only
//!   up to `MAX_BODY_BYTES` (a larger `Content-Length` is refused before reading): HTTP 413,
//!   `PAYLOAD_TOO_LARGE`. A body that is not one GraphQL request object is HTTP 400,
//!   `BAD_REQUEST` (a JSON array, a batch, is refused the same way: batches multiply the cost of
//!   one request). Another content type is HTTP 415.
//! - **GET** with `query`, `variables` (JSON), `operationName` in the URL: queries only, so a CDN
//!   may cache them; a mutation over GET is HTTP 405 with `Allow: POST`. A GET without `query`
//!   from a browser (`Accept: text/html`) gets GraphiQL, when enabled.
//! - **Media types**: a client that accepts `application/graphql-response+json` gets it; one
//!   that accepts `application/json`, anything (`*/*`) or says nothing gets `application/json`. With the new media type, a
//!   request that failed before execution (parse, validation, variables) is HTTP 400 without a
//!   `data` entry; with `application/json` it is 200, as the spec asks for legacy clients.
//! - **CSRF**: a request a browser could send cross-site without a CORS preflight (a "simple"
//!   request: GET, or POST with a form or text content type, and no custom header) is refused
//!   with HTTP 400 `CSRF_PREVENTED` unless it carries a header a browser would preflight
//!   (`Authorization`, `Queue-Token`, `Apollo-Require-Preflight`, `X-Apollo-Operation-Name`,
//!   `GraphQL-Require-Preflight`), as Apollo Router does.
//!
//! Every refusal here is a GraphQL-shaped body with an `extensions.code`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::client_address::ClientAddress;
use super::{AppState, QUEUE_TOKEN_HEADER, error_response};
use crate::domain::accounts::auth::Viewer;
use crate::graphql::error::{ErrorCode, error_code_of};
// A GET marks its request read-only (a client that marks a POST only forbids its own mutation).
use crate::graphql::query_limits::{READ_ONLY, selects_mutation};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";

/// Headers whose presence proves a browser sent a CORS preflight first.
const PREFLIGHT_HEADERS: [&str; 5] = [
    "authorization",
    QUEUE_TOKEN_HEADER,
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "graphql-require-preflight",
];

/// The media type the client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    GraphqlResponseJson,
    Json,
}

pub(super) async fn post(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(media) = accepted_media(&parts.headers) else {
        return not_acceptable();
    };
    if !is_json(&parts.headers) {
        if !preflighted(&parts.headers) {
            return csrf_prevented();
        }
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "send the request as Content-Type: application/json",
        );
    }
    let limit = state.limits.query.max_body_bytes as usize;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => return too_large(limit),
    };
    let request = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Array(_)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "batched requests are not accepted; send one operation per request",
            );
        }
        Ok(value) => {
            if let Err(problem) = check_parameters(&value) {
                return refuse(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, problem);
            }
            serde_json::from_value::<async_graphql::Request>(value)
        }
        Err(e) => Err(e),
    };
    match request {
        Ok(request) => execute(&state, &parts, request, media).await,
        Err(e) => refuse(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            &format!(
                "the body is not a GraphQL request: {}",
                short(&e.to_string())
            ),
        ),
    }
}

/// The shape of a request body: an object whose `query` is a string (absent only for a
/// persisted query sent by its hash), with optional `variables`/`extensions` objects and an
/// optional `operationName` string.
fn check_parameters(body: &serde_json::Value) -> Result<(), &'static str> {
    use serde_json::Value;
    let Value::Object(fields) = body else {
        return Err("the body must be a JSON object");
    };
    let persisted = fields
        .get("extensions")
        .and_then(|e| e.get("persistedQuery"))
        .is_some();
    match fields.get("query") {
        Some(Value::String(_)) => {}
        None | Some(Value::Null) if persisted => {}
        _ => return Err("`query` must be a string"),
    }
    match fields.get("variables") {
        None | Some(Value::Null | Value::Object(_)) => {}
        _ => return Err("`variables` must be an object"),
    }
    match fields.get("extensions") {
        None | Some(Value::Null | Value::Object(_)) => {}
        _ => return Err("`extensions` must be an object"),
    }
    match fields.get("operationName") {
        None | Some(Value::Null | Value::String(_)) => {}
        _ => return Err("`operationName` must be a string"),
    }
    Ok(())
}

/// The parameters of a GET request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: Option<String>,
    variables: Option<String>,
    operation_name: Option<String>,
    extensions: Option<String>,
}

pub(super) async fn get(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let params: GetParams = match serde_urlencoded::from_str(parts.uri.query().unwrap_or("")) {
        Ok(params) => params,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                &format!("the URL parameters are not a GraphQL request: {e}"),
            );
        }
    };
    // A persisted query may come by hash alone: the cacheable form.
    let by_hash = params
        .extensions
        .as_deref()
        .is_some_and(|e| e.contains("persistedQuery"));
    let query = match params.query {
        Some(query) => query,
        None if by_hash => String::new(),
        None if state.limits.production || !accepts_html(&parts.headers) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "a GET request needs a `query` parameter",
            );
        }
        None => return super::graphiql::page(state.graphiql.is_some()),
    };
    let Some(media) = accepted_media(&parts.headers) else {
        return not_acceptable();
    };
    if !preflighted(&parts.headers) {
        return csrf_prevented();
    }
    let mut request = async_graphql::Request::new(query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    for (name, raw) in [
        ("variables", &params.variables),
        ("extensions", &params.extensions),
    ] {
        let Some(raw) = raw else { continue };
        let parsed = serde_json::from_str::<serde_json::Value>(raw)
            .ok()
            .filter(serde_json::Value::is_object);
        let Some(value) = parsed else {
            return refuse(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                &format!("`{name}` must be a JSON object"),
            );
        };
        if name == "variables" {
            request = request.variables(async_graphql::Variables::from_json(value));
        } else if let Ok(extensions) = serde_json::from_value(value) {
            request.extensions = extensions;
        }
    }
    // A document known only by hash is checked once resolved (`query_limits`).
    request
        .extensions
        .insert(READ_ONLY.to_owned(), async_graphql::Value::Boolean(true));
    // Queries only: a GET must never change anything. A document that does not parse, or that
    // the lexical guard refuses (it must not reach the parser), is left to execution, which
    // reports it like any other; execution refuses mutations over GET again (`READ_ONLY`).
    let operation_name = request.operation_name.clone();
    let measured =
        crate::graphql::document_guard::check(&request.query, &state.limits.query).is_ok();
    if measured
        && let Ok(document) = request.parsed_query()
        && selects_mutation(document, operation_name.as_deref())
    {
        let mut response = refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "mutations are accepted only over POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&state, &parts, request, media).await
}

async fn execute(
    state: &AppState,
    parts: &axum::http::request::Parts,
    request: async_graphql::Request,
    media: Media,
) -> Response {
    let headers = &parts.headers;
    let address = parts.extensions.get::<ClientAddress>().map(|a| a.0);
    let viewer = Viewer::from_authorization_header(
        &state.services.tokens,
        header_str(headers, header::AUTHORIZATION.as_str()),
        header_str(headers, QUEUE_TOKEN_HEADER),
    )
    .from_address(address);
    let response = state.schema.execute(request.data(viewer)).await;
    respond(response, media)
}

/// The HTTP answer for a GraphQL response: its status by the spec's rules for the media type.
fn respond(response: async_graphql::Response, media: Media) -> Response {
    let nothing_resolved =
        response.data == async_graphql::Value::Null && !response.errors.is_empty();
    // Errors raised before execution have no path; field errors always have one.
    let request_error = nothing_resolved && response.errors.iter().all(|e| e.path.is_empty());
    // Nothing resolved because the database could not be reached: say so in the status too, so
    // load balancers and HTTP metrics see the outage (a partial result stays 200).
    let unavailable = nothing_resolved
        && response
            .errors
            .iter()
            .all(|e| error_code_of(e) == Some(ErrorCode::ServiceUnavailable));
    let status = if unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else if request_error && media == Media::GraphqlResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = if request_error {
        // Before execution there is no `data`, not even null.
        serde_json::json!({ "errors": response.errors })
    } else {
        match serde_json::to_value(&response) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "serialising a GraphQL response");
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::InternalServerError,
                    "internal server error",
                );
            }
        }
    };
    let content_type = match media {
        Media::GraphqlResponseJson => GRAPHQL_RESPONSE_JSON,
        Media::Json => JSON,
    };
    let mut http = (
        status,
        [(header::CONTENT_TYPE, content_type)],
        body.to_string(),
    )
        .into_response();
    for (name, value) in response.http_headers.iter() {
        http.headers_mut().append(name, value.clone());
    }
    http
}

/// The media type to answer with, or None when the client accepts neither JSON type.
fn accepted_media(headers: &HeaderMap) -> Option<Media> {
    // No Accept, or `*/*`: the spec asks servers to assume the legacy `application/json`.
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Media::Json);
    };
    let types: Vec<&str> = accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';').map(str::trim);
            let media = pieces.next()?;
            // `q=0` means "not this one".
            let refused = pieces.any(|p| p.replace(' ', "") == "q=0");
            (!refused).then_some(media)
        })
        .collect();
    if types
        .iter()
        .any(|t| t.eq_ignore_ascii_case("application/graphql-response+json"))
    {
        Some(Media::GraphqlResponseJson)
    } else if types.is_empty()
        || types.iter().any(|t| {
            t.eq_ignore_ascii_case("application/json") || *t == "*/*" || *t == "application/*"
        })
    {
        Some(Media::Json)
    } else {
        None
    }
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// True when a browser could only have sent this request after a CORS preflight: a
/// non-simple content type (JSON), or one of [`PREFLIGHT_HEADERS`].
fn preflighted(headers: &HeaderMap) -> bool {
    is_json(headers) || PREFLIGHT_HEADERS.iter().any(|h| headers.contains_key(*h))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn refuse(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    metrics::counter!("graphql_errors_total", "code" => code.as_str()).increment(1);
    // Outside execution there is no `data` entry.
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }],
    });
    (
        status,
        [(header::CONTENT_TYPE, GRAPHQL_RESPONSE_JSON)],
        body.to_string(),
    )
        .into_response()
}

fn too_large(limit: usize) -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        &format!("the request body is larger than {limit} bytes"),
    )
}

fn csrf_prevented() -> Response {
    refuse(
        StatusCode::BAD_REQUEST,
        ErrorCode::CsrfPrevented,
        "this request could have been sent by a browser without a CORS preflight; send it as \
         Content-Type: application/json or with an Apollo-Require-Preflight header",
    )
}

fn not_acceptable() -> Response {
    refuse(
        StatusCode::NOT_ACCEPTABLE,
        ErrorCode::NotAcceptable,
        "accept application/graphql-response+json or application/json",
    )
}

/// At most 200 characters of a parser's message, which may quote the input.
fn short(message: &str) -> String {
    let mut cut: String = message.chars().take(200).collect();
    if cut.len() < message.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_media_type_follows_accept() {
        assert_eq!(accepted_media(&headers(&[])), Some(Media::Json));
        assert_eq!(
            accepted_media(&headers(&[("accept", "application/json")])),
            Some(Media::Json)
        );
        assert_eq!(
            accepted_media(&headers(&[(
                "accept",
                "application/graphql-response+json, application/json;q=0.9"
            )])),
            Some(Media::GraphqlResponseJson)
        );
        assert_eq!(
            accepted_media(&headers(&[("accept", "*/*")])),
            Some(Media::Json)
        );
        assert_eq!(accepted_media(&headers(&[("accept", "text/plain")])), None);
    }

    #[test]
    fn only_requests_a_browser_would_preflight_pass_the_csrf_check() {
        assert!(preflighted(&headers(&[(
            "content-type",
            "application/json"
        )])));
        assert!(preflighted(&headers(&[(
            "apollo-require-preflight",
            "true"
        )])));
        assert!(preflighted(&headers(&[("authorization", "Bearer x")])));
        assert!(!preflighted(&headers(&[("content-type", "text/plain")])));
        assert!(!preflighted(&headers(&[])));
    }
}
