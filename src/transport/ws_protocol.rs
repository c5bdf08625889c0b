//! The websocket subprotocols, checked in front of async-graphql, which runs them but deviates
//! from them at their edges and bounds nothing. Every client message is checked here before
//! async-graphql sees it, and every server message on its way out.
//!
//! `graphql-transport-ws` is checked to the letter:
//!
//! | what the client does | what the protocol says | here |
//! |---|---|---|
//! | a message that is not JSON with a known `type` | close 4400 | 4400 |
//! | a second `connection_init` | close 4429 | 4429 |
//! | `subscribe` before `connection_ack` | close 4401 | 4401 (async-graphql: 1011) |
//! | `subscribe` with an id already running | close 4409 | 4409 (async-graphql: ran both) |
//! | an operation that fails validation | one `error` message | `error` (async-graphql: `next` + `complete`) |
//! | `complete` from the client | no answer | no answer (async-graphql: echoes `complete`) |
//!
//! The legacy `graphql-ws` subprotocol (subscriptions-transport-ws) is passed through as
//! async-graphql speaks it, except for what both protocols share here, beyond either spec,
//! because a socket must cost no more than the same work over HTTP:
//! - **the request budget**: every operation a client starts (`subscribe`, or `start` in the
//!   legacy protocol; queries and mutations over a socket are operations too) takes one request
//!   from the client address's budget (`RATE_LIMIT_REQUESTS_PER_SEC`), the same bucket its HTTP
//!   requests and upgrades draw from. Past it the operation gets an `error` message with code
//!   `RATE_LIMITED` and `retryAfter`, and does not run; a socket with more than
//!   `WS_MAX_RATE_LIMITED` such refusals within [`REFUSAL_WINDOW`] is closed with 4429;
//! - **the subscription cap**: at most `WS_MAX_SUBSCRIPTIONS` operations running at once on one
//!   connection; one more gets an `error` message with code `TOO_MANY_SUBSCRIPTIONS`, the others
//!   keep running.
//!
//! (4403 and 4408 are set in `ws`, where `connection_init` is answered and timed.)

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::graphql::error::{ErrorCode, retry_after_seconds};

/// graphql-transport-ws close codes.
pub const CLOSE_BAD_REQUEST: u16 = 4400;
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
pub const CLOSE_SUBSCRIBER_EXISTS: u16 = 4409;
pub const CLOSE_TOO_MANY_INITS: u16 = 4429;
/// The same code, for a socket that keeps going over its request budget.
pub const CLOSE_TOO_MANY_REQUESTS: u16 = 4429;

/// Refusals by the request budget are counted in windows of this length.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(10);

/// Which subprotocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`, checked to the letter.
    TransportWs,
    /// The legacy `graphql-ws` (subscriptions-transport-ws): bounded, otherwise passed through.
    Legacy,
}

/// Takes one request from the caller's budget: `Err(retry_after)` when it is spent.
pub type Budget = Box<dyn Fn() -> Result<(), Duration> + Send + Sync>;

/// What bounds one connection.
pub struct Bounds {
    /// Operations running at once.
    pub max_subscriptions: usize,
    /// Refused operations within [`REFUSAL_WINDOW`] before the socket is closed.
    pub max_rate_limited: u32,
    /// The request budget every operation draws from (none: unlimited).
    pub budget: Option<Budget>,
}

/// What to do with one message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// Pass it on to async-graphql.
    Forward,
    /// Do not pass it on; send this message to the client instead.
    Answer(String),
    /// Close the connection with this code and reason.
    Close(u16, String),
}

/// The protocol state of one connection, shared by its reading and writing halves.
pub struct Guard {
    protocol: Protocol,
    bounds: Bounds,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    initialised: bool,
    acknowledged: bool,
    /// Subscriptions running now.
    running: HashSet<String>,
    /// Subscriptions that have sent something already.
    started: HashSet<String>,
    /// Server `complete`s still to come, by id, for operations that already left `running`
    /// (the client completed them, or they were refused after validation): counted, so one that
    /// arrives after the client reused the id neither frees the new operation's place nor
    /// reaches the client (graphql-transport-ws) as the new one's end.
    ended: HashMap<String, u32>,
    /// Operations the budget refused in the current window, and when that window began.
    refused: u32,
    window_start: Option<Instant>,
}

impl Guard {
    pub fn new(protocol: Protocol, bounds: Bounds) -> Self {
        Self {
            protocol,
            bounds,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks one text message from the client.
    pub fn inbound(&self, text: &str) -> Inbound {
        match self.protocol {
            Protocol::TransportWs => self.inbound_transport_ws(text),
            Protocol::Legacy => self.inbound_legacy(text),
        }
    }

    /// The legacy protocol: operations are bounded, everything else passes as it came.
    fn inbound_legacy(&self, text: &str) -> Inbound {
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
            return Inbound::Forward;
        };
        let Some(id) = message.get("id").and_then(Value::as_str) else {
            return Inbound::Forward;
        };
        let mut state = self.state();
        // async-graphql takes either protocol's names in both.
        match message.get("type").and_then(Value::as_str) {
            Some("start" | "subscribe") => {
                // A running id is replaced (async-graphql drops the old stream): it costs a
                // request, not a place.
                let replacing = state.running.contains(id);
                if let Some(refusal) = self.admit(&mut state, id, !replacing) {
                    return refusal;
                }
                state.running.insert(id.to_owned());
                Inbound::Forward
            }
            Some("stop" | "complete") => {
                if state.running.remove(id) {
                    *state.ended.entry(id.to_owned()).or_default() += 1;
                }
                Inbound::Forward
            }
            _ => Inbound::Forward,
        }
    }

    /// Whether one more operation `id` may start: None, or the answer refusing it (over the
    /// request budget, or, when it takes a new place, the subscription cap) or the close that
    /// ends a socket which keeps going over its budget. A refusal is an `error` message this
    /// guard writes; nothing about it is counted on its way out.
    fn admit(&self, state: &mut State, id: &str, new_place: bool) -> Option<Inbound> {
        if let Some(budget) = &self.bounds.budget
            && let Err(retry_after) = budget()
        {
            let now = Instant::now();
            let window_open = state
                .window_start
                .is_some_and(|start| now.duration_since(start) < REFUSAL_WINDOW);
            if !window_open {
                state.window_start = Some(now);
                state.refused = 0;
            }
            state.refused += 1;
            if state.refused > self.bounds.max_rate_limited {
                metrics::counter!("websocket_rate_limit_closes_total").increment(1);
                return Some(Inbound::Close(
                    CLOSE_TOO_MANY_REQUESTS,
                    "Too many requests".into(),
                ));
            }
            return Some(Inbound::Answer(error_message(
                id,
                "too many requests from this address; slow down",
                json!({
                    "code": ErrorCode::RateLimited.as_str(),
                    "retryAfter": retry_after_seconds(retry_after),
                }),
            )));
        }
        if new_place && state.running.len() >= self.bounds.max_subscriptions {
            metrics::counter!("websocket_subscriptions_refused_total").increment(1);
            return Some(Inbound::Answer(error_message(
                id,
                &format!(
                    "at most {} subscriptions per connection",
                    self.bounds.max_subscriptions
                ),
                json!({ "code": ErrorCode::TooManySubscriptions.as_str() }),
            )));
        }
        None
    }

    fn inbound_transport_ws(&self, text: &str) -> Inbound {
        let bad = |reason: &str| Inbound::Close(CLOSE_BAD_REQUEST, reason.to_owned());
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
            return bad("Invalid message received");
        };
        let id = message.get("id").and_then(Value::as_str);
        let mut state = self.state();
        match message.get("type").and_then(Value::as_str) {
            Some("connection_init") => {
                if state.initialised {
                    return Inbound::Close(
                        CLOSE_TOO_MANY_INITS,
                        "Too many initialisation requests".into(),
                    );
                }
                state.initialised = true;
                Inbound::Forward
            }
            Some("ping" | "pong") => Inbound::Forward,
            Some("subscribe") => {
                if !state.acknowledged {
                    return Inbound::Close(CLOSE_UNAUTHORIZED, "Unauthorized".into());
                }
                let Some(id) = id.filter(|id| !id.is_empty()) else {
                    return bad("subscribe needs an id");
                };
                let has_query = message
                    .get("payload")
                    .and_then(|p| p.get("query"))
                    .is_some_and(Value::is_string);
                if !has_query {
                    return bad("subscribe needs a payload with a query");
                }
                if state.running.contains(id) {
                    return Inbound::Close(
                        CLOSE_SUBSCRIBER_EXISTS,
                        format!("Subscriber for {} already exists", short(id)),
                    );
                }
                if let Some(refusal) = self.admit(&mut state, id, true) {
                    return refusal;
                }
                state.running.insert(id.to_owned());
                state.started.remove(id);
                Inbound::Forward
            }
            Some("complete") => {
                let Some(id) = id else {
                    return bad("complete needs an id");
                };
                if state.running.remove(id) {
                    *state.ended.entry(id.to_owned()).or_default() += 1;
                }
                Inbound::Forward
            }
            _ => bad("Invalid message type"),
        }
    }

    /// Checks one text message from the server: the message to send instead, or None to send
    /// nothing.
    pub fn outbound(&self, text: &str) -> Option<String> {
        // The legacy protocol only counts ends: its pushes (`data`) pass without being parsed.
        if self.protocol == Protocol::Legacy && !text.contains(r#""type":"complete""#) {
            return Some(text.to_owned());
        }
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
            return Some(text.to_owned());
        };
        let id = message.get("id").and_then(Value::as_str).map(str::to_owned);
        let mut state = self.state();
        if self.protocol == Protocol::Legacy {
            // An operation that ended no longer counts against the cap. (`error` messages are
            // this guard's own refusals: async-graphql sends none.)
            if let (Some("complete"), Some(id)) = (message.get("type").and_then(Value::as_str), id)
                && !take_ended(&mut state.ended, &id)
            {
                state.running.remove(&id);
            }
            return Some(text.to_owned());
        }
        match (message.get("type").and_then(Value::as_str), id) {
            (Some("connection_ack"), _) => {
                state.acknowledged = true;
                Some(text.to_owned())
            }
            (Some("next"), Some(id)) => {
                // Left over from an operation the client completed (and has not started again).
                if state.ended.contains_key(&id) && !state.running.contains(&id) {
                    return None;
                }
                let first = state.started.insert(id.clone());
                let payload = message.get("payload");
                if first && payload.is_some_and(is_request_error) {
                    // Refused before it ran: the protocol's `error`, and no `complete` after it.
                    state.running.remove(&id);
                    *state.ended.entry(id.clone()).or_default() += 1;
                    let errors = payload.and_then(|p| p.get("errors")).cloned();
                    return Some(
                        json!({ "id": id, "type": "error", "payload": errors }).to_string(),
                    );
                }
                Some(text.to_owned())
            }
            (Some("complete"), Some(id)) => {
                if take_ended(&mut state.ended, &id) {
                    return None;
                }
                state.running.remove(&id);
                state.started.remove(&id);
                Some(text.to_owned())
            }
            _ => Some(text.to_owned()),
        }
    }
}

/// Consumes one expected server `complete` for `id`; false when none was expected.
fn take_ended(ended: &mut HashMap<String, u32>, id: &str) -> bool {
    match ended.get_mut(id) {
        Some(n) if *n > 1 => {
            *n -= 1;
            true
        }
        Some(_) => {
            ended.remove(id);
            true
        }
        None => false,
    }
}

/// An `error` message for operation `id`: one GraphQL error, as an array (what both protocols'
/// clients read).
fn error_message(id: &str, message: &str, extensions: Value) -> String {
    json!({
        "id": id,
        "type": "error",
        "payload": [{ "message": message, "extensions": extensions }],
    })
    .to_string()
}

/// A result with errors and no data, none of them on a field: the operation never ran.
fn is_request_error(payload: &Value) -> bool {
    let no_data = payload.get("data").is_none_or(Value::is_null);
    let errors = payload.get("errors").and_then(Value::as_array);
    no_data
        && errors.is_some_and(|errors| {
            !errors.is_empty() && errors.iter().all(|e| e.get("path").is_none())
        })
}

/// An id as quoted back: at most 64 characters.
fn short(id: &str) -> String {
    id.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(max_subscriptions: usize) -> Bounds {
        Bounds {
            max_subscriptions,
            max_rate_limited: 3,
            budget: None,
        }
    }

    fn acked(max: usize) -> Guard {
        let guard = Guard::new(Protocol::TransportWs, bounds(max));
        assert_eq!(
            guard.inbound(r#"{"type":"connection_init"}"#),
            Inbound::Forward
        );
        guard.outbound(r#"{"type":"connection_ack"}"#);
        guard
    }

    const SUB: &str = r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { queueTicket { status } }"}}"#;

    #[test]
    fn the_close_codes_of_the_protocol() {
        let guard = Guard::new(Protocol::TransportWs, bounds(10));
        assert!(matches!(guard.inbound("not json"), Inbound::Close(4400, _)));
        assert!(matches!(
            guard.inbound(r#"{"type":"hello"}"#),
            Inbound::Close(4400, _)
        ));
        assert!(
            matches!(guard.inbound(SUB), Inbound::Close(4401, _)),
            "before the ack"
        );
        let guard = acked(10);
        assert!(matches!(
            guard.inbound(r#"{"type":"connection_init"}"#),
            Inbound::Close(4429, _)
        ));
        assert_eq!(guard.inbound(SUB), Inbound::Forward);
        assert!(matches!(guard.inbound(SUB), Inbound::Close(4409, _)));
        // Completed by the server, the id may be used again.
        assert!(guard.outbound(r#"{"id":"1","type":"complete"}"#).is_some());
        assert_eq!(guard.inbound(SUB), Inbound::Forward);
    }

    #[test]
    fn a_refused_operation_is_one_error_message_and_a_client_complete_gets_no_echo() {
        let guard = acked(10);
        guard.inbound(SUB);
        let refused =
            r#"{"id":"1","type":"next","payload":{"data":null,"errors":[{"message":"no"}]}}"#;
        let sent: Value =
            serde_json::from_str(&guard.outbound(refused).expect("sent")).expect("json");
        assert_eq!(sent["type"], "error");
        assert_eq!(sent["payload"][0]["message"], "no");
        assert_eq!(guard.outbound(r#"{"id":"1","type":"complete"}"#), None);

        guard.inbound(SUB);
        let event =
            r#"{"id":"1","type":"next","payload":{"data":{"queueTicket":{"status":"WAITING"}}}}"#;
        assert_eq!(guard.outbound(event).as_deref(), Some(event));
        guard.inbound(r#"{"id":"1","type":"complete"}"#);
        assert_eq!(guard.outbound(r#"{"id":"1","type":"complete"}"#), None);
    }

    #[test]
    fn past_the_cap_a_subscription_gets_an_error_and_the_others_run_on() {
        let guard = acked(2);
        for id in ["a", "b"] {
            let sub = SUB.replace("\"1\"", &format!("\"{id}\""));
            assert_eq!(guard.inbound(&sub), Inbound::Forward);
        }
        let third = SUB.replace("\"1\"", "\"c\"");
        match guard.inbound(&third) {
            Inbound::Answer(text) => {
                assert!(text.contains(ErrorCode::TooManySubscriptions.as_str()))
            }
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn the_legacy_protocol_has_the_same_cap_and_frees_a_place_when_an_operation_ends() {
        let guard = Guard::new(Protocol::Legacy, bounds(2));
        let start = |id: &str| {
            format!(
                r#"{{"id":"{id}","type":"start","payload":{{"query":"subscription {{ x }}"}}}}"#
            )
        };
        assert_eq!(guard.inbound(&start("a")), Inbound::Forward);
        assert_eq!(guard.inbound(&start("b")), Inbound::Forward);
        match guard.inbound(&start("c")) {
            Inbound::Answer(text) => {
                assert!(text.contains(ErrorCode::TooManySubscriptions.as_str()))
            }
            other => panic!("expected an answer, got {other:?}"),
        }
        // The aliases async-graphql also accepts count the same.
        let subscribe = start("d").replace("start", "subscribe");
        assert!(matches!(guard.inbound(&subscribe), Inbound::Answer(_)));
        guard.inbound(r#"{"id":"a","type":"stop"}"#);
        assert_eq!(guard.inbound(&start("c")), Inbound::Forward);
        guard.outbound(r#"{"id":"b","type":"complete"}"#);
        assert_eq!(guard.inbound(&start("e")), Inbound::Forward);
        // Everything else passes as it came.
        assert_eq!(guard.inbound("not json"), Inbound::Forward);
    }

    #[test]
    fn over_the_request_budget_an_operation_is_refused_and_a_persistent_socket_closed() {
        for protocol in [Protocol::TransportWs, Protocol::Legacy] {
            let left = std::sync::atomic::AtomicU32::new(2);
            let budget: Budget = Box::new(move || {
                let n = left.load(std::sync::atomic::Ordering::Relaxed);
                if n == 0 {
                    return Err(Duration::from_millis(300));
                }
                left.store(n - 1, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            });
            let guard = Guard::new(
                protocol,
                Bounds {
                    max_subscriptions: 100,
                    max_rate_limited: 3,
                    budget: Some(budget),
                },
            );
            if protocol == Protocol::TransportWs {
                guard.inbound(r#"{"type":"connection_init"}"#);
                guard.outbound(r#"{"type":"connection_ack"}"#);
            }
            let sub = |id: usize| SUB.replace("\"1\"", &format!("\"{id}\""));
            assert_eq!(guard.inbound(&sub(1)), Inbound::Forward);
            assert_eq!(guard.inbound(&sub(2)), Inbound::Forward);
            for id in 3..6 {
                match guard.inbound(&sub(id)) {
                    Inbound::Answer(text) => {
                        let sent: Value = serde_json::from_str(&text).expect("json");
                        assert_eq!(sent["type"], "error");
                        assert_eq!(
                            sent["payload"][0]["extensions"]["code"],
                            ErrorCode::RateLimited.as_str()
                        );
                        assert_eq!(sent["payload"][0]["extensions"]["retryAfter"], 1);
                    }
                    other => panic!("{protocol:?}: expected RATE_LIMITED, got {other:?}"),
                }
            }
            assert_eq!(
                guard.inbound(&sub(6)),
                Inbound::Close(4429, "Too many requests".into()),
                "{protocol:?}"
            );
        }
    }

    #[test]
    fn a_place_freed_by_the_client_is_not_freed_twice_when_the_id_is_reused_at_once() {
        for protocol in [Protocol::TransportWs, Protocol::Legacy] {
            let guard = if protocol == Protocol::TransportWs {
                acked(1)
            } else {
                Guard::new(Protocol::Legacy, bounds(1))
            };
            let (stop, subscribe) = if protocol == Protocol::Legacy {
                ("stop", "start")
            } else {
                ("complete", "subscribe")
            };
            let sub = SUB.replace("subscribe", subscribe);
            assert_eq!(guard.inbound(&sub), Inbound::Forward, "{protocol:?}");
            // The client completes "1" and starts "1" again in one write, before the server's
            // echo of the first `complete` is on its way out.
            guard.inbound(&format!(r#"{{"id":"1","type":"{stop}"}}"#));
            assert_eq!(guard.inbound(&sub), Inbound::Forward, "{protocol:?}");
            guard.outbound(r#"{"id":"1","type":"complete"}"#);
            // The new "1" still holds the only place.
            let other = sub.replace("\"1\"", "\"2\"");
            assert!(
                matches!(guard.inbound(&other), Inbound::Answer(t) if t.contains(ErrorCode::TooManySubscriptions.as_str())),
                "{protocol:?}"
            );
            // A refusal the guard wrote frees nothing on its way out.
            guard.outbound(r#"{"id":"1","type":"error","payload":[]}"#);
            assert!(
                matches!(guard.inbound(&other), Inbound::Answer(_)),
                "{protocol:?}"
            );
        }
    }

    #[test]
    fn a_legacy_start_that_reuses_a_running_id_replaces_it_and_takes_no_new_place() {
        let guard = Guard::new(Protocol::Legacy, bounds(2));
        let start = |id: &str| {
            format!(
                r#"{{"id":"{id}","type":"start","payload":{{"query":"subscription {{ x }}"}}}}"#
            )
        };
        assert_eq!(guard.inbound(&start("a")), Inbound::Forward);
        assert_eq!(guard.inbound(&start("b")), Inbound::Forward);
        assert_eq!(
            guard.inbound(&start("b")),
            Inbound::Forward,
            "a replacement"
        );
        assert!(matches!(guard.inbound(&start("c")), Inbound::Answer(_)));
        guard.outbound(r#"{"id":"c","type":"error","payload":[]}"#);
        assert!(
            matches!(guard.inbound(&start("d")), Inbound::Answer(_)),
            "still full"
        );
    }
}
