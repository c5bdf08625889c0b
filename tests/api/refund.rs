//! Refunds: a paid ticket back to the wallet and the seat back on sale, once, whatever the
//! retries; fans within the policy window, operators always.

use std::time::Duration;

use encore::background::Background;
use encore::config::Rules;
use serde_json::{Value, json};

use crate::common::ws::{MODERN, WsClient};
use crate::common::{Fan, TestApp, assert_invariants, test_rules};

const REFUND: &str =
    "mutation($r: ID!, $k: String) { refund(reservationId: $r, idempotencyKey: $k) { id status } }";

/// A fan who bought seat `seat` of the concert's first date; returns them and the reservation id.
async fn buyer(app: &TestApp, concert: &str, date: chrono::NaiveDate, seat: i32) -> (Fan, String) {
    let fan = app.admitted_fan(concert).await;
    app.charge(&fan, "100.00").await.ok();
    let hold = app.hold(&fan, concert, date, seat).await.ok();
    let reservation = hold["holdSeat"]["id"].as_str().expect("id").to_owned();
    app.pay(&fan, &reservation).await.ok();
    (fan, reservation)
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_refunds_credit_the_wallet_once_and_put_the_seat_back_on_sale() {
    let rules = Rules {
        queue_tick: Duration::from_millis(200),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let (concert, dates) = app.concert("40.00", 1).await;
    let (fan, reservation) = buyer(&app, &concert, dates[0], 7).await;
    assert_eq!(app.balance(&fan).await, "60.00");

    // Someone with a turn watches the seat map.
    let watcher = app.admitted_fan(&concert).await;
    let mut seat_feed = WsClient::connect(
        &app.server.url(),
        MODERN,
        json!({ "authorization": format!("Bearer {}", watcher.token), "queueToken": watcher.queue_token }),
    )
    .await
    .expect("ack");
    seat_feed
        .subscribe(
            "s",
            "subscription($c: ID!, $d: Date!) { seatUpdates(concertId: $c, date: $d) { number status } }",
            json!({ "c": concert, "d": dates[0].to_string() }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Ten retries with one key and ten without, all at once.
    let auth = fan.auth();
    let answers = futures::future::join_all((0..20).map(|i| {
        let key = if i % 2 == 0 {
            json!("refund-7")
        } else {
            Value::Null
        };
        app.gql(REFUND, json!({ "r": reservation, "k": key }), &auth)
    }))
    .await;
    for answer in answers {
        assert_eq!(answer.ok()["refund"]["status"], "REFUNDED");
    }
    assert_eq!(app.balance(&fan).await, "100.00");
    assert_eq!(
        app.count(
            "wallet_transactions",
            &format!("kind = 'REFUND' AND user_id = '{}'", fan.user_id)
        )
        .await,
        1
    );
    let pushed = seat_feed
        .next_data("s", Duration::from_secs(10))
        .await
        .expect("pushed");
    assert_eq!(
        pushed["seatUpdates"],
        json!({ "number": 7, "status": "AVAILABLE" })
    );

    // The seat is on sale again: someone else buys it.
    let (_, resold) = buyer(&app, &concert, dates[0], 7).await;
    let mine = app
        .gql(
            "{ myReservations { id status } wallet { transactions { kind amount } } }",
            json!({}),
            &fan.auth(),
        )
        .await
        .ok();
    assert_eq!(mine["myReservations"][0]["status"], "REFUNDED");
    assert_eq!(
        mine["wallet"]["transactions"][0],
        json!({ "kind": "REFUND", "amount": "40.00" })
    );
    assert_ne!(resold, reservation);
    // The key names this refund only.
    let (_, other) = buyer(&app, &concert, dates[0], 8).await;
    let reused = app
        .gql(REFUND, json!({ "r": other, "k": "refund-7" }), &fan.auth())
        .await;
    assert_eq!(reused.code(), "FORBIDDEN", "someone else's ticket");
    assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fans_refund_their_own_tickets_within_the_window_and_operators_any() {
    // Refunds close 30 days before the show; the concert plays in a week.
    let rules = Rules {
        refund_cutoff: Duration::from_secs(30 * 24 * 3600),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, dates) = app.concert("40.00", 1).await;
    let (fan, reservation) = buyer(&app, &concert, dates[0], 3).await;

    let late = app
        .gql(REFUND, json!({ "r": reservation, "k": null }), &fan.auth())
        .await;
    assert_eq!(late.code(), "REFUND_WINDOW_CLOSED");
    let closed_at = &late.body["errors"][0]["extensions"]["closedAt"];
    assert!(closed_at.is_string());
    // The fan's order said so beforehand: the same moment, 30 days before the date begins.
    let mine = app
        .gql(
            "{ myOrders { nodes { date refundableUntil } } }",
            json!({}),
            &fan.auth(),
        )
        .await
        .ok();
    let order = &mine["myOrders"]["nodes"][0];
    let until = chrono::DateTime::parse_from_rfc3339(
        order["refundableUntil"].as_str().expect("refundableUntil"),
    )
    .expect("a time");
    assert_eq!(
        until,
        chrono::DateTime::parse_from_rfc3339(closed_at.as_str().expect("closedAt"))
            .expect("a time"),
        "refundableUntil is when refunds close"
    );
    assert_eq!(
        until.date_naive() + chrono::Days::new(30),
        dates[0],
        "{order}"
    );
    let stranger = app.fan().await;
    let theirs = app
        .gql(
            REFUND,
            json!({ "r": reservation, "k": null }),
            &stranger.auth(),
        )
        .await;
    assert_eq!(theirs.code(), "FORBIDDEN");
    assert_eq!(app.balance(&fan).await, "60.00");
    assert_eq!(app.count("seats", "status = 'SOLD'").await, 1);

    let operator = app.operator().await;
    let done = app
        .gql(
            REFUND,
            json!({ "r": reservation, "k": "op-1" }),
            &operator.auth(),
        )
        .await
        .ok();
    assert_eq!(done["refund"]["status"], "REFUNDED");
    assert_eq!(app.balance(&fan).await, "100.00", "credited to the owner");
    assert_eq!(app.count("seats", "status = 'SOLD'").await, 0);

    // A hold that was never paid cannot be refunded.
    let holder = app.admitted_fan(&concert).await;
    let hold = app.hold(&holder, &concert, dates[0], 9).await.ok();
    let unpaid = app
        .gql(
            REFUND,
            json!({ "r": hold["holdSeat"]["id"], "k": null }),
            &operator.auth(),
        )
        .await;
    assert_eq!(unpaid.code(), "BAD_USER_INPUT");
    assert_invariants(&app.db.url).await;
}
