//! GraphQL over websockets at `/graphql/ws`, with both `graphql-transport-ws` (the `graphql-ws`
//! library Apollo uses) and the legacy `graphql-ws` subprotocol.
//!
//! async-graphql runs the protocol; this module sits in front of its output to (1) turn a
//! rejected `connection_init` into close code 4403 (the protocol's "Forbidden") instead of a
//! generic 1002, and (2) keep idle connections alive through proxies with ping frames (and the
//! legacy protocol's `ka` message).

use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::http::header::SEC_WEBSOCKET_PROTOCOL;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use super::AppState;
use crate::domain::{Error, Services, queue};
use crate::graphql::Credentials;
use crate::graphql::error::code;

/// How often an idle connection is pinged.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// graphql-transport-ws: "Forbidden", for a rejected connection_init.
const CLOSE_FORBIDDEN: u16 = 4403;

pub async fn graphql_ws(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let legacy = chosen_protocol(&headers) == Some("graphql-ws");
    let header_auth = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // GraphQL messages here are small; tungstenite's 128 KiB default buffers would cost
        // ~256 KiB per idle subscriber. The message cap also bounds what a client can send.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve(socket, state, protocol, legacy, header_auth))
}

/// The first subprotocol the client offered that we speak, as async-graphql picks it.
fn chosen_protocol(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(SEC_WEBSOCKET_PROTOCOL)?
        .to_str()
        .ok()?
        .split(',')
        .map(str::trim)
        .find(|p| ALL_WEBSOCKET_PROTOCOLS.contains(p))
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    protocol: GraphQLProtocol,
    legacy: bool,
    header_auth: Option<String>,
) {
    let (mut socket_sink, socket_stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let services = state.services.clone();
    let session = GraphQLWebSocket::new_with_pair(
        PollSender::new(tx),
        socket_stream,
        state.schema.clone(),
        protocol,
    )
    .on_connection_init(move |payload| connection_init(services, payload, header_auth))
    .serve();
    let writer = async move {
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        loop {
            tokio::select! {
                message = rx.recv() => match message {
                    Some(Message::Close(Some(frame))) => {
                        let _ = socket_sink.send(Message::Close(Some(forbidden_if_rejected(frame)))).await;
                        break;
                    }
                    Some(message) => {
                        if socket_sink.send(message).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                _ = keepalive.tick() => {
                    if legacy && socket_sink.send(Message::Text(r#"{"type":"ka"}"#.into())).await.is_err() {
                        break;
                    }
                    if socket_sink.send(Message::Ping(Default::default())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = socket_sink.close().await;
    };
    metrics::gauge!("websocket_connections").increment(1.0);
    tokio::join!(session, writer);
    metrics::gauge!("websocket_connections").decrement(1.0);
}

/// async-graphql closes a rejected `connection_init` with 1002; our rejections start with their
/// error code, which tells them apart from protocol errors.
fn forbidden_if_rejected(frame: CloseFrame) -> CloseFrame {
    let rejected = ["UNAUTHENTICATED", "FORBIDDEN", "NOT_ADMITTED"]
        .iter()
        .any(|c| frame.reason.starts_with(c));
    if frame.code == 1002 && rejected {
        CloseFrame {
            code: CLOSE_FORBIDDEN,
            reason: frame.reason,
        }
    } else {
        frame
    }
}

/// `connection_init` payload: `{ "authorization": "Bearer <jwt>", "queueToken": "<token>" }`.
/// Credentials that are present must be valid; absent ones are checked by each subscription.
async fn connection_init(
    services: Services,
    payload: Value,
    header_auth: Option<String>,
) -> async_graphql::Result<Data> {
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| payload.get(*n).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let authorization = field(&["authorization", "Authorization"])
        .or(header_auth)
        .map(|a| {
            if a.starts_with("Bearer ") || a.starts_with("bearer ") {
                a
            } else {
                format!("Bearer {a}")
            }
        });
    let queue_token = field(&["queueToken", "queue_token", "Queue-Token"]);

    let mut user_id = None;
    if let Some(header) = &authorization {
        let token = header.get(7..).unwrap_or_default().trim();
        user_id = Some(services.tokens.verify(token).map_err(reject)?);
    }
    if let Some(token) = &queue_token {
        queue::check_token(&services, token, user_id.as_deref())
            .await
            .map_err(reject)?;
    }
    let mut data = Data::default();
    data.insert(Credentials {
        authorization,
        queue_token,
    });
    Ok(data)
}

fn reject(error: Error) -> async_graphql::Error {
    if error.is_internal() {
        tracing::error!(error = ?error, "connection_init failed");
        return async_graphql::Error::new("INTERNAL_SERVER_ERROR: internal server error");
    }
    async_graphql::Error::new(format!("{}: {error}", code(&error)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_credential_rejections_become_4403() {
        let rejected = CloseFrame {
            code: 1002,
            reason: "UNAUTHENTICATED: invalid access token".into(),
        };
        assert_eq!(forbidden_if_rejected(rejected).code, 4403);
        let protocol_error = CloseFrame {
            code: 1002,
            reason: "invalid message".into(),
        };
        assert_eq!(forbidden_if_rejected(protocol_error).code, 1002);
    }
}
