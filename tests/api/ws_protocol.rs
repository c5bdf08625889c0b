//! graphql-transport-ws to the letter: each close code the protocol defines, one test each; and
//! on both subprotocols, the per-connection subscription cap and the request budget operations
//! share with HTTP. (4403 and 4408 are in `live` and `resilience`.)

use std::time::Duration;

use serde_json::json;

use crate::common::ws::{LEGACY, MODERN, WsClient};
use crate::common::{TestApp, test_pool, test_rules};

const WAIT: Duration = Duration::from_secs(5);
const QUEUE: &str = "subscription { queueTicket { status } }";

async fn acknowledged(app: &TestApp) -> WsClient {
    WsClient::connect(&app.server.url(), MODERN, json!({}))
        .await
        .unwrap_or_else(|_| panic!("connection_ack"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_is_not_the_protocol_closes_with_4400() {
    let app = TestApp::spawn().await;
    let mut ws = acknowledged(&app).await;
    ws.send_text(r#"{"type":"hello"}"#).await;
    assert_eq!(ws.close_code(WAIT).await, Some(4400));

    let mut ws = acknowledged(&app).await;
    ws.send_text("not json at all").await;
    assert_eq!(ws.close_code(WAIT).await, Some(4400));
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribing_before_the_ack_closes_with_4401() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::open(&app.server.url(), MODERN).await;
    ws.subscribe("1", QUEUE, json!({})).await;
    assert_eq!(ws.close_code(WAIT).await, Some(4401));
}

/// A connection of an admitted fan, whose `queueTicket` subscriptions stay open.
async fn admitted(app: &TestApp) -> WsClient {
    admitted_over(app, MODERN).await
}

async fn admitted_over(app: &TestApp, protocol: &str) -> WsClient {
    let (concert, _) = app.concert("10.00", 1).await;
    let fan = app.admitted_fan(&concert).await;
    let payload = json!({
        "authorization": format!("Bearer {}", fan.token),
        "queueToken": fan.queue_token,
    });
    WsClient::connect(&app.server.url(), protocol, payload)
        .await
        .unwrap_or_else(|_| panic!("connection_ack"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_subscription_with_a_running_id_closes_with_4409() {
    let app = TestApp::spawn().await;
    let mut ws = admitted(&app).await;
    ws.subscribe("a", QUEUE, json!({})).await;
    let first = ws.next_data("a", WAIT).await.expect("the ticket");
    assert_eq!(first["queueTicket"]["status"], "ACTIVE");
    ws.subscribe("a", QUEUE, json!({})).await;
    assert_eq!(ws.close_code(WAIT).await, Some(4409));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_connection_init_closes_with_4429() {
    let app = TestApp::spawn().await;
    let mut ws = acknowledged(&app).await;
    ws.send_text(r#"{"type":"connection_init"}"#).await;
    assert_eq!(ws.close_code(WAIT).await, Some(4429));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operation_that_fails_validation_is_one_error_message() {
    let app = TestApp::spawn().await;
    let mut ws = acknowledged(&app).await;
    ws.subscribe("v", "subscription { nope }", json!({})).await;
    let answer = ws.next(WAIT).await.expect("an answer");
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(
        answer["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    // No `complete` follows an `error`.
    assert_eq!(ws.next(Duration::from_millis(300)).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_cap_a_subscription_is_refused_and_the_others_run_on_in_both_protocols() {
    let limits = encore::config::ServerLimits {
        ws_max_subscriptions: 2,
        ..Default::default()
    };
    let app = TestApp::spawn_custom(
        test_rules(),
        encore::background::Background::NONE,
        &test_pool(4),
        limits,
    )
    .await;
    for protocol in [MODERN, LEGACY] {
        let mut ws = admitted_over(&app, protocol).await;
        for id in ["1", "2"] {
            ws.subscribe(id, QUEUE, json!({})).await;
            ws.next_data(id, WAIT).await.expect("the ticket");
        }
        for id in ["3", "4", "5"] {
            ws.subscribe(id, QUEUE, json!({})).await;
            let refused = ws.next(WAIT).await.expect("an answer");
            assert_eq!(
                (refused["id"].as_str(), refused["type"].as_str()),
                (Some(id), Some("error")),
                "{protocol}: {refused}"
            );
            assert_eq!(
                refused["payload"][0]["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS",
                "{protocol}"
            );
        }

        // Completing one frees its place; the connection never closed.
        let stop = if protocol == LEGACY {
            "stop"
        } else {
            "complete"
        };
        ws.send_text(&format!(r#"{{"id":"1","type":"{stop}"}}"#))
            .await;
        ws.subscribe("6", QUEUE, json!({})).await;
        assert!(ws.next_data("6", WAIT).await.is_some(), "{protocol}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn operations_over_a_socket_draw_from_the_http_budget_and_a_persistent_socket_is_closed() {
    let rules = encore::config::Rules {
        quotas: encore::domain::rules::Quotas {
            requests_per_sec: 10,
            ..encore::domain::rules::Quotas::unlimited()
        },
        ..test_rules()
    };
    let limits = encore::config::ServerLimits {
        ws_max_rate_limited: 5,
        ..Default::default()
    };
    let app = TestApp::spawn_custom(
        rules,
        encore::background::Background::NONE,
        &test_pool(4),
        limits,
    )
    .await;
    for (protocol, binary) in [
        (MODERN, false),
        (LEGACY, false),
        (MODERN, true),
        (LEGACY, true),
    ] {
        // A fresh budget: 10 a second, all usable at once.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let mut ws = WsClient::connect(&app.server.url(), protocol, json!({}))
            .await
            .unwrap_or_else(|_| panic!("connection_ack"));
        let mut answered = 0;
        let mut limited = 0;
        let mut closed = None;
        for n in 0..40 {
            if binary {
                // The same operation in a binary frame, which async-graphql reads as well.
                let kind = if protocol == LEGACY {
                    "start"
                } else {
                    "subscribe"
                };
                let message = json!({ "id": n.to_string(), "type": kind,
                                      "payload": { "query": "{ __typename }" } });
                ws.send_binary(message.to_string().as_bytes()).await;
            } else {
                ws.subscribe(&n.to_string(), "{ __typename }", json!({}))
                    .await;
            }
            // One answer per operation: its data (then a complete), or a refusal.
            loop {
                match ws.next(WAIT).await {
                    Some(m) if m["type"] == "complete" => continue,
                    Some(m) if m["type"] == "error" => {
                        let extensions = &m["payload"][0]["extensions"];
                        assert_eq!(extensions["code"], "RATE_LIMITED", "{protocol}: {m}");
                        assert!(extensions["retryAfter"].as_u64() >= Some(1), "{m}");
                        limited += 1;
                    }
                    Some(_) => answered += 1,
                    None => closed = Some(n),
                }
                break;
            }
            if closed.is_some() {
                break;
            }
        }
        // The upgrade took one request; at most nine operations (plus what refilled meanwhile)
        // ran, five were refused, the sixth refusal closed the socket.
        assert!(
            (8..=12).contains(&answered),
            "{protocol}: {answered} answered"
        );
        assert_eq!(limited, 5, "{protocol}");
        assert!(closed.is_some(), "{protocol}: never closed");
        assert_eq!(ws.closed_with, Some(4429), "{protocol}");
        // The same bucket as HTTP: a request from this address right now is refused too.
        let (status, _) = app
            .send("{ __typename }", json!({}), &crate::common::Auth::none())
            .await
            .expect("an answer");
        assert_eq!(status, 429, "{protocol}");
    }
}
