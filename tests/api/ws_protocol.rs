//! graphql-transport-ws to the letter: each close code the protocol defines, one test each, plus
//! the per-connection subscription cap. (4403 and 4408 are in `live` and `resilience`.)

use std::time::Duration;

use serde_json::json;

use crate::common::TestApp;
use crate::common::ws::{MODERN, WsClient};

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
    let (concert, _) = app.concert("10.00", 1).await;
    let fan = app.admitted_fan(&concert).await;
    let payload = json!({
        "authorization": format!("Bearer {}", fan.token),
        "queueToken": fan.queue_token,
    });
    WsClient::connect(&app.server.url(), MODERN, payload)
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
async fn past_the_cap_a_subscription_is_refused_and_the_others_run_on() {
    let limits = encore::config::ServerLimits {
        ws_max_subscriptions: 2,
        ..Default::default()
    };
    let app = TestApp::spawn_custom(
        crate::common::test_rules(),
        encore::background::Background::NONE,
        &crate::common::test_pool(4),
        limits,
    )
    .await;
    let mut ws = admitted(&app).await;
    for id in ["1", "2"] {
        ws.subscribe(id, QUEUE, json!({})).await;
        ws.next_data(id, WAIT).await.expect("the ticket");
    }
    ws.subscribe("3", QUEUE, json!({})).await;
    let refused = ws.next(WAIT).await.expect("an answer");
    assert_eq!(
        (refused["id"].as_str(), refused["type"].as_str()),
        (Some("3"), Some("error"))
    );
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );

    // Completing one frees its place; the connection never closed.
    ws.send_text(r#"{"id":"1","type":"complete"}"#).await;
    ws.subscribe("4", QUEUE, json!({})).await;
    assert!(ws.next_data("4", WAIT).await.is_some());
}
