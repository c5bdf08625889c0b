//! A minimal GraphQL-over-websocket client for tests, speaking either `graphql-transport-ws` or
//! the legacy `graphql-ws` subprotocol.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub const MODERN: &str = "graphql-transport-ws";
pub const LEGACY: &str = "graphql-ws";

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    legacy: bool,
    /// The close code the server sent, once [`WsClient::next`] met its close frame.
    pub closed_with: Option<u16>,
}

/// How a connection attempt ended when it was not acknowledged.
#[derive(Debug)]
pub enum Refused {
    Closed(u16, String),
    ConnectionError(Value),
}

impl WsClient {
    /// Connects to `server_url` (http://host:port) and completes `connection_init`.
    pub async fn connect(
        server_url: &str,
        protocol: &str,
        payload: Value,
    ) -> Result<Self, Refused> {
        let mut client = Self::open(server_url, protocol).await;
        client
            .send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), client.socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let msg: Value = serde_json::from_str(&text).expect("json");
                    match msg["type"].as_str() {
                        Some("connection_ack") => return Ok(client),
                        Some("connection_error") => {
                            return Err(Refused::ConnectionError(msg["payload"].clone()));
                        }
                        _ => continue,
                    }
                }
                Ok(Some(Ok(Message::Close(Some(frame))))) => {
                    return Err(Refused::Closed(frame.code.into(), frame.reason.to_string()));
                }
                Ok(Some(Ok(_))) => continue,
                other => panic!("no connection_ack: {other:?}"),
            }
        }
    }

    /// Opens the socket and sends nothing.
    pub async fn open(server_url: &str, protocol: &str) -> Self {
        let url = format!("{}/graphql/ws", server_url.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().expect("request");
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().expect("header"));
        let (socket, response) = connect_async(request).await.expect("websocket connect");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol)
        );
        Self {
            socket,
            legacy: protocol == LEGACY,
            closed_with: None,
        }
    }

    /// Sends one binary frame as it is (async-graphql reads protocol messages from those too).
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.socket
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .expect("send");
    }

    /// Sends one text message as it is.
    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("send");
    }

    /// The close code the server ends the connection with, skipping other messages; None when
    /// nothing closes it within `wait`.
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
            {
                Ok(Message::Close(Some(frame))) => return Some(frame.code.into()),
                Ok(Message::Close(None)) => return Some(1005),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    async fn send(&mut self, msg: Value) {
        self.socket
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(json!({ "id": id, "type": kind, "payload": { "query": query, "variables": variables } })).await;
    }

    /// The next data/error/complete message (type, id, payload), or None after `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
                .ok()?;
            if let Message::Close(frame) = &msg {
                self.closed_with = Some(frame.as_ref().map_or(1005, |f| f.code.into()));
            }
            let Message::Text(text) = msg else { continue };
            let msg: Value = serde_json::from_str(&text).expect("json");
            match msg["type"].as_str() {
                Some("ping") => self.send(json!({ "type": "pong" })).await,
                Some("next" | "data" | "error" | "complete") => return Some(msg),
                _ => {}
            }
        }
    }

    /// The next `data` payload of subscription `id`, skipping others.
    pub async fn next_data(&mut self, id: &str, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self.next(left).await?;
            if msg["id"] == id && matches!(msg["type"].as_str(), Some("next" | "data")) {
                return Some(msg["payload"]["data"].clone());
            }
        }
    }
}
