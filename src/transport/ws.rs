//! GraphQL over websockets at `/graphql/ws`, with both `graphql-transport-ws` (the `graphql-ws`
//! library Apollo uses) and the legacy `graphql-ws` subprotocol.
//!
//! async-graphql runs the protocol; `ws_protocol` checks it to the letter; this module runs the
//! session and sits in front of its output to
//! - close a refused `connection_init` with the code the refusal chose (4403 "Forbidden" for
//!   credentials, 1013 "try again later" when the database cannot be reached, 4500 for an
//!   internal error) instead of async-graphql's generic 1002, carried beside the session rather
//!   than read back from the reason text;
//! - close a socket that sends no `connection_init` within `WS_INIT_TIMEOUT` with 4408, so
//!   never-initialised sockets cannot hold descriptors;
//! - close every socket with 1001 ("going away") when the instance shuts down;
//! - keep idle connections alive through proxies with ping frames (and the legacy protocol's
//!   `ka` message);
//! - bound open sockets per instance (`WS_MAX_CONNECTIONS`): past it the upgrade is refused with
//!   HTTP 503 and a GraphQL error body with code `SERVICE_UNAVAILABLE`;
//! - hand `ws_protocol` the client address's request budget, so operations over a socket cost
//!   what they cost over HTTP, on both subprotocols.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::header::SEC_WEBSOCKET_PROTOCOL;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, PollSender};

use super::client_address::ClientAddress;
use super::{AppState, ws_protocol};
use crate::domain::accounts::auth::{AccountCheck, Viewer};
use crate::domain::services::Services;
use crate::domain::throttle::Action;
use crate::domain::{Error, queue};
use crate::graphql::error::{ErrorCode, code};

/// How often an idle connection is pinged.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// A message the client does not take within this ends the session (it stopped reading).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a close frame, and the close itself, may take before the socket is just dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// graphql-transport-ws: "Forbidden", for a rejected connection_init.
const CLOSE_FORBIDDEN: u16 = 4403;
/// graphql-transport-ws: "Connection initialisation timeout".
const CLOSE_INIT_TIMEOUT: u16 = 4408;
/// graphql-transport-ws: "Internal server error".
const CLOSE_INTERNAL_ERROR: u16 = 4500;
/// RFC 6455 "try again later": the database could not be reached during `connection_init`.
const CLOSE_TRY_AGAIN_LATER: u16 = 1013;
/// RFC 6455 "going away": the server is shutting down.
const CLOSE_GOING_AWAY: u16 = 1001;

pub async fn graphql_ws(
    State(state): State<AppState>,
    address: Option<Extension<ClientAddress>>,
    protocol: GraphQLProtocol,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let address = address.map(|Extension(ClientAddress(ip))| ip);
    let Ok(slot) = Arc::clone(&state.ws_slots).try_acquire_owned() else {
        metrics::counter!("websocket_refused_total").increment(1);
        return super::error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            "this instance has as many websocket connections as it accepts; try again shortly",
        );
    };
    let legacy = chosen_protocol(&headers).is_some_and(|p| p.eq_ignore_ascii_case("graphql-ws"));
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
        // A frame is read whole before the message cap is checked: bound it too.
        .max_frame_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            // Shutdown waits for this token, so the close frame goes out before the exit.
            let _session = state.sessions.token();
            serve(socket, state, protocol, legacy, header_auth, address).await;
            drop(slot);
        })
}

/// The first subprotocol the client offered that we speak, as async-graphql picks it (its
/// names compared without regard to case), so the guard runs the protocol the session speaks.
fn chosen_protocol(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(SEC_WEBSOCKET_PROTOCOL)?
        .to_str()
        .ok()?
        .split(',')
        .map(str::trim)
        .find(|p| {
            ALL_WEBSOCKET_PROTOCOLS
                .iter()
                .any(|ours| ours.eq_ignore_ascii_case(p))
        })
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    protocol: GraphQLProtocol,
    legacy: bool,
    header_auth: Option<String>,
    address: Option<std::net::IpAddr>,
) {
    let (mut socket_sink, socket_stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    // graphql-transport-ws is checked to the letter (`ws_protocol`); the legacy protocol is
    // passed through as async-graphql speaks it. Both are bounded alike: operations draw from
    // the address's request budget, and at most so many run at once.
    let throttle = Arc::clone(&state.services.throttle);
    let budget: ws_protocol::Budget = Box::new(move || {
        throttle
            .check(Action::Request, address)
            .map_err(|refused| match refused {
                Error::RateLimited { retry_after, .. } => retry_after,
                _ => Duration::from_secs(1),
            })
    });
    let protocol_kind = if legacy {
        ws_protocol::Protocol::Legacy
    } else {
        ws_protocol::Protocol::TransportWs
    };
    let guard = Arc::new(ws_protocol::Guard::new(
        protocol_kind,
        ws_protocol::Bounds {
            max_subscriptions: state.limits.ws_max_subscriptions as usize,
            max_rate_limited: state.limits.ws_max_rate_limited,
            budget: Some(budget),
        },
    ));
    let socket_stream = guarded(socket_stream, Arc::clone(&guard), tx.clone());
    let services = state.services.clone();
    let (initialised_tx, initialised) = oneshot::channel::<()>();
    // async-graphql closes a refused `connection_init` with 1002 whatever the reason; the close
    // code this service means is left here for the writer.
    let refusal = Arc::new(std::sync::Mutex::new(None::<u16>));
    let refused_with = Arc::clone(&refusal);
    let session = GraphQLWebSocket::new_with_pair(
        PollSender::new(tx),
        socket_stream,
        state.schema.clone(),
        protocol,
    )
    .on_connection_init(move |payload| async move {
        let outcome = connection_init(services, payload, header_auth, address).await;
        let _ = initialised_tx.send(());
        outcome.map_err(|refused| {
            *refused_with.lock().unwrap_or_else(|p| p.into_inner()) = Some(refused.close_code);
            async_graphql::Error::new(refused.reason)
        })
    })
    .serve();
    // The writer decides when the socket closes (init timeout, shutdown); the session stops then.
    let closed = CancellationToken::new();
    let session = {
        let closed = closed.clone();
        async move {
            tokio::select! {
                () = session => {}
                () = closed.cancelled() => {}
            }
        }
    };
    let shutdown = state.shutdown.clone();
    let init_timeout = state.limits.ws_init_timeout;
    let writer = async move {
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        let init_deadline = tokio::time::sleep(init_timeout);
        tokio::pin!(init_deadline);
        let mut initialised = Some(initialised);
        loop {
            let step = tokio::select! {
                message = rx.recv() => match message {
                    Some(Message::Close(Some(frame))) => {
                        let refused = *refusal.lock().unwrap_or_else(|p| p.into_inner());
                        Step::Close(with_refusal_code(frame, refused))
                    }
                    Some(message) => Step::Send(message),
                    None => break,
                },
                _ = async { initialised.as_mut()?.await.ok() }, if initialised.is_some() => {
                    // Init succeeded (or failed, and its close frame is on the way through `rx`).
                    initialised = None;
                    continue;
                }
                () = &mut init_deadline, if initialised.is_some() => {
                    metrics::counter!("websocket_init_timeouts_total").increment(1);
                    Step::Close(close_frame(CLOSE_INIT_TIMEOUT, "Connection initialisation timeout"))
                }
                () = shutdown.cancelled() => Step::Close(close_frame(CLOSE_GOING_AWAY, "server shutting down")),
                _ = keepalive.tick() => Step::Keepalive,
            };
            let sent = match step {
                Step::Send(Message::Text(text)) => match guard.outbound(&text) {
                    Some(text) => {
                        send(&mut socket_sink, Message::Text(text.into()), &shutdown).await
                    }
                    None => true,
                },
                Step::Send(message) => send(&mut socket_sink, message, &shutdown).await,
                Step::Keepalive => {
                    let ka = Message::Text(r#"{"type":"ka"}"#.into());
                    (!legacy || send(&mut socket_sink, ka, &shutdown).await)
                        && send(
                            &mut socket_sink,
                            Message::Ping(Default::default()),
                            &shutdown,
                        )
                        .await
                }
                Step::Close(frame) => {
                    let close = socket_sink.send(Message::Close(Some(frame)));
                    let _ = tokio::time::timeout(CLOSE_WAIT, close).await;
                    false
                }
            };
            if !sent {
                break;
            }
        }
        closed.cancel();
        let _ = tokio::time::timeout(CLOSE_WAIT, socket_sink.close()).await;
    };
    metrics::gauge!("websocket_connections").increment(1.0);
    tokio::join!(session, writer);
    metrics::gauge!("websocket_connections").decrement(1.0);
}

/// The client's messages as async-graphql sees them: each checked by `guard` and passed on,
/// answered here, or ending the connection with a close code.
fn guarded(
    stream: futures_util::stream::SplitStream<WebSocket>,
    guard: Arc<ws_protocol::Guard>,
    out: mpsc::Sender<Message>,
) -> impl futures_util::Stream<Item = Result<Message, axum::Error>> + Send + 'static {
    futures_util::stream::unfold(Some(stream), move |stream| {
        let (guard, out) = (guard.clone(), out.clone());
        async move {
            let mut stream = stream?;
            loop {
                let message = stream.next().await?;
                // async-graphql reads protocol messages from binary frames as well as text
                // ones: both are checked alike.
                let text = match &message {
                    Ok(Message::Text(text)) => text.as_str(),
                    Ok(Message::Binary(bytes)) => match std::str::from_utf8(bytes) {
                        Ok(text) => text,
                        Err(_) => {
                            let frame = close_frame(
                                ws_protocol::CLOSE_BAD_REQUEST,
                                "Invalid message received",
                            );
                            let _ = out.send(Message::Close(Some(frame))).await;
                            return None;
                        }
                    },
                    _ => return Some((message, Some(stream))),
                };
                match guard.inbound(text) {
                    ws_protocol::Inbound::Forward => return Some((message, Some(stream))),
                    ws_protocol::Inbound::Answer(answer) => {
                        if out.send(Message::Text(answer.into())).await.is_err() {
                            return None;
                        }
                    }
                    ws_protocol::Inbound::Close(code, reason) => {
                        let frame = CloseFrame {
                            code,
                            reason: reason.into(),
                        };
                        let _ = out.send(Message::Close(Some(frame))).await;
                        return None;
                    }
                }
            }
        }
    })
}

/// What the writer does next.
enum Step {
    Send(Message),
    Keepalive,
    /// Send this close frame (briefly) and end the session.
    Close(CloseFrame),
}

fn close_frame(code: u16, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

/// Sends one message. False when the socket failed, or a client that stopped reading kept the
/// send from completing within `SEND_TIMEOUT`, or the instance is shutting down meanwhile: the
/// session then ends, so a stalled client cannot hold its slot or delay shutdown.
async fn send<S>(sink: &mut S, message: Message, shutdown: &CancellationToken) -> bool
where
    S: futures_util::Sink<Message> + Unpin,
{
    tokio::select! {
        sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(message)) => matches!(sent, Ok(Ok(()))),
        () = shutdown.cancelled() => false,
    }
}

/// The close frame for async-graphql's 1002 after a refused `connection_init`: the code the
/// refusal chose (4403 for credentials, 1013 when the database cannot be reached, 4500 for an
/// internal error). Other frames pass unchanged.
fn with_refusal_code(frame: CloseFrame, refused: Option<u16>) -> CloseFrame {
    match refused {
        Some(code) if frame.code == 1002 => CloseFrame {
            code,
            reason: frame.reason,
        },
        _ => frame,
    }
}

/// Why a `connection_init` was refused: the close code, and a reason that starts with the
/// error's `extensions.code` for people reading it.
struct Refusal {
    close_code: u16,
    reason: String,
}

/// `connection_init` payload: `{ "authorization": "Bearer <jwt>", "queueToken": "<token>" }`.
/// Credentials that are present must be valid; absent ones are checked by each subscription.
async fn connection_init(
    services: Services,
    payload: Value,
    header_auth: Option<String>,
    address: Option<std::net::IpAddr>,
) -> Result<Data, Refusal> {
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| payload.get(*n).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let authorization = field(&["authorization", "Authorization"]).or(header_auth);
    let queue_token = field(&["queueToken", "queue_token", "Queue-Token"]);
    let viewer = Viewer::from_token(
        &services.tokens,
        authorization.as_deref(),
        queue_token.as_deref(),
    )
    .from_address(address);
    // Credentials that are present must be valid: refused at init rather than per subscription,
    // and so must their account, asked once for the connection.
    let user_id = viewer
        .existing_optional_user_id(&services, &AccountCheck::default())
        .await
        .map_err(reject)?;
    if let Some(token) = viewer.queue_token().map_err(reject)? {
        queue::check_token(&services, token, user_id)
            .await
            .map_err(reject)?;
    }
    let mut data = Data::default();
    data.insert(viewer);
    Ok(data)
}

fn reject(error: Error) -> Refusal {
    if error.is_unavailable() {
        tracing::warn!(error = ?error, "connection_init: database unavailable");
        return Refusal {
            close_code: CLOSE_TRY_AGAIN_LATER,
            reason: format!(
                "{}: the service cannot reach its database right now; reconnect shortly",
                code(&error)
            ),
        };
    }
    if error.is_internal() {
        tracing::error!(error = ?error, "connection_init failed");
        return Refusal {
            close_code: CLOSE_INTERNAL_ERROR,
            reason: format!("{}: internal server error", ErrorCode::InternalServerError),
        };
    }
    Refusal {
        close_code: CLOSE_FORBIDDEN,
        reason: format!("{}: {error}", code(&error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_init_closes_with_the_code_the_refusal_chose() {
        let refused = CloseFrame {
            code: 1002,
            reason: format!("{}: invalid access token", ErrorCode::Unauthenticated).into(),
        };
        assert_eq!(with_refusal_code(refused.clone(), Some(4403)).code, 4403);
        assert_eq!(
            with_refusal_code(refused, None).code,
            1002,
            "a protocol error"
        );
        let unavailable = reject(Error::Pool(crate::db::PoolError::Timeout(
            deadpool::managed::TimeoutType::Wait,
        )));
        assert_eq!(unavailable.close_code, 1013);
        assert!(
            unavailable
                .reason
                .starts_with(ErrorCode::ServiceUnavailable.as_str())
        );
        let credentials = reject(Error::Unauthenticated("invalid access token".into()));
        assert_eq!(credentials.close_code, 4403);
    }
}
