//! `graphql-transport-ws` to the letter, in front of async-graphql, which runs the protocol but
//! deviates from it at its edges. Every client message is checked here before async-graphql sees
//! it, and every server message on its way out:
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
//! and, beyond the protocol, at most `WS_MAX_SUBSCRIPTIONS` subscriptions per connection: one
//! more gets an `error` message with code `TOO_MANY_SUBSCRIPTIONS`, the others keep running.
//! (4403 and 4408 are set in `ws`, where `connection_init` is answered and timed.)

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::{Value, json};

/// graphql-transport-ws close codes.
pub const CLOSE_BAD_REQUEST: u16 = 4400;
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
pub const CLOSE_SUBSCRIBER_EXISTS: u16 = 4409;
pub const CLOSE_TOO_MANY_INITS: u16 = 4429;

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
    max_subscriptions: usize,
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
    /// Subscriptions whose `complete` from the server must not be sent: the client completed
    /// them, or they ended with an `error` message.
    silent: HashSet<String>,
}

impl Guard {
    pub fn new(max_subscriptions: usize) -> Self {
        Self {
            max_subscriptions,
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
                if state.running.len() >= self.max_subscriptions {
                    metrics::counter!("websocket_subscriptions_refused_total").increment(1);
                    let error = json!({
                        "id": id,
                        "type": "error",
                        "payload": [{
                            "message": format!(
                                "at most {} subscriptions per connection",
                                self.max_subscriptions
                            ),
                            "extensions": { "code": "TOO_MANY_SUBSCRIPTIONS" },
                        }],
                    });
                    return Inbound::Answer(error.to_string());
                }
                state.running.insert(id.to_owned());
                state.started.remove(id);
                state.silent.remove(id);
                Inbound::Forward
            }
            Some("complete") => {
                let Some(id) = id else {
                    return bad("complete needs an id");
                };
                if state.running.remove(id) {
                    state.silent.insert(id.to_owned());
                }
                Inbound::Forward
            }
            _ => bad("Invalid message type"),
        }
    }

    /// Checks one text message from the server: the message to send instead, or None to send
    /// nothing.
    pub fn outbound(&self, text: &str) -> Option<String> {
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
            return Some(text.to_owned());
        };
        let id = message.get("id").and_then(Value::as_str).map(str::to_owned);
        let mut state = self.state();
        match (message.get("type").and_then(Value::as_str), id) {
            (Some("connection_ack"), _) => {
                state.acknowledged = true;
                Some(text.to_owned())
            }
            (Some("next"), Some(id)) => {
                if state.silent.contains(&id) {
                    return None;
                }
                let first = state.started.insert(id.clone());
                let payload = message.get("payload");
                if first && payload.is_some_and(is_request_error) {
                    // Refused before it ran: the protocol's `error`, and no `complete` after it.
                    state.running.remove(&id);
                    state.silent.insert(id.clone());
                    let errors = payload.and_then(|p| p.get("errors")).cloned();
                    return Some(
                        json!({ "id": id, "type": "error", "payload": errors }).to_string(),
                    );
                }
                Some(text.to_owned())
            }
            (Some("complete"), Some(id)) => {
                state.running.remove(&id);
                state.started.remove(&id);
                if state.silent.remove(&id) {
                    return None;
                }
                Some(text.to_owned())
            }
            (Some("error"), Some(id)) => {
                state.running.remove(&id);
                state.started.remove(&id);
                Some(text.to_owned())
            }
            _ => Some(text.to_owned()),
        }
    }
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

    fn acked(max: usize) -> Guard {
        let guard = Guard::new(max);
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
        let guard = Guard::new(10);
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
            Inbound::Answer(text) => assert!(text.contains("TOO_MANY_SUBSCRIPTIONS")),
            other => panic!("expected an answer, got {other:?}"),
        }
    }
}
