//! Paying for a hold: all of it happens or none of it does.

use std::time::Duration;

use encore::background::Background;
use encore::config::Rules;
use serde_json::json;

use crate::common::{TestApp, test_rules};

const PAY_WITH_KEY: &str = "mutation($r: ID!, $k: String) { pay(reservationId: $r, idempotencyKey: $k) { id amount paidAt reservation { status } } }";

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_holds_tops_up_and_pays_for_a_seat() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("50000.00", 1).await;
    let fan = app.admitted_fan(&concert).await;
    let hold = app.hold(&fan, &concert, dates[0], 12).await.ok();
    let reservation = hold["holdSeat"]["id"].as_str().expect("id").to_owned();
    app.charge(&fan, "80000.00").await.ok();

    let paid = app.pay(&fan, &reservation).await.ok();
    assert_eq!(paid["pay"]["amount"], "50000.00");
    assert_eq!(paid["pay"]["reservation"]["status"], "PAID");
    assert_eq!(app.balance(&fan).await, "30000.00");

    let ledger = app
        .gql(
            "{ wallet { transactions { kind amount balanceAfter } } }",
            json!({}),
            &fan.auth(),
        )
        .await
        .ok();
    assert_eq!(
        ledger["wallet"]["transactions"][0],
        json!({ "kind": "PAYMENT", "amount": "-50000.00", "balanceAfter": "30000.00" })
    );
    // The seat is sold and the queue turn is over, freeing its slot.
    let other = app.admitted_fan(&concert).await;
    assert_eq!(
        app.seat_status(&other, &concert, dates[0], 12).await,
        "SOLD"
    );
    assert_eq!(app.client().poll(&fan).await["status"], "COMPLETED");
    assert_eq!(
        app.hold(&other, &concert, dates[0], 12).await.code(),
        "SEAT_UNAVAILABLE"
    );
    app.assert_ledgers_balance().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paying_without_enough_balance_changes_nothing() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("50000.00", 1).await;
    let fan = app.admitted_fan(&concert).await;
    let hold = app.hold(&fan, &concert, dates[0], 1).await.ok();
    app.charge(&fan, "49999.99").await.ok();

    let r = app
        .pay(&fan, hold["holdSeat"]["id"].as_str().expect("id"))
        .await;
    assert_eq!(r.code(), "INSUFFICIENT_BALANCE");
    assert_eq!(r.body["errors"][0]["extensions"]["needed"], "50000.00");
    assert_eq!(app.balance(&fan).await, "49999.99");
    assert_eq!(app.count("payments", "1=1").await, 0);
    assert_eq!(app.count("reservations", "status = 'HELD'").await, 1);
    assert_eq!(app.count("seats", "status = 'SOLD'").await, 0);
    assert_eq!(app.client().poll(&fan).await["status"], "ACTIVE");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lapsed_hold_cannot_be_paid() {
    let rules = Rules {
        hold_ttl: Duration::from_secs(60),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let fan = app.admitted_fan(&concert).await;
    app.charge(&fan, "100.00").await.ok();
    let hold = app.hold(&fan, &concert, dates[0], 1).await.ok();
    app.time_passes(Duration::from_secs(61)).await;
    let r = app
        .pay(&fan, hold["holdSeat"]["id"].as_str().expect("id"))
        .await;
    assert_eq!(r.code(), "HOLD_EXPIRED");
    assert_eq!(app.balance(&fan).await, "100.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_holder_with_an_active_turn_pays() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let alice = app.admitted_fan(&concert).await;
    let bob = app.admitted_fan(&concert).await;
    app.charge(&bob, "100.00").await.ok();
    let hold = app.hold(&alice, &concert, dates[0], 1).await.ok();
    let id = hold["holdSeat"]["id"].as_str().expect("id").to_owned();

    assert_eq!(app.pay(&bob, &id).await.code(), "FORBIDDEN");
    let mut no_turn = alice.clone();
    no_turn.queue_token = None;
    app.charge(&alice, "100.00").await.ok();
    assert_eq!(app.pay(&no_turn, &id).await.code(), "NOT_ADMITTED");
    assert_eq!(
        app.pay(&alice, &uuid::Uuid::now_v7().to_string())
            .await
            .code(),
        "NOT_FOUND"
    );
    assert_eq!(app.pay(&alice, "not-an-id").await.code(), "BAD_USER_INPUT");
    assert_eq!(app.count("payments", "1=1").await, 0);

    app.pay(&alice, &id).await.ok();
    assert_eq!(
        app.pay(&alice, &id).await.code(),
        "BAD_USER_INPUT",
        "already paid"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_pay_with_one_key_returns_the_first_payment() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let fan = app.admitted_fan(&concert).await;
    app.charge(&fan, "100.00").await.ok();
    let first_hold = app.hold(&fan, &concert, dates[0], 1).await.ok();
    let second_hold = app.hold(&fan, &concert, dates[0], 2).await.ok();
    let id = first_hold["holdSeat"]["id"].as_str().expect("id");

    let first = app
        .gql(PAY_WITH_KEY, json!({ "r": id, "k": "pay-1" }), &fan.auth())
        .await
        .ok();
    let repeat = app
        .gql(PAY_WITH_KEY, json!({ "r": id, "k": "pay-1" }), &fan.auth())
        .await
        .ok();
    assert_eq!(first["pay"]["id"], repeat["pay"]["id"]);
    assert_eq!(app.balance(&fan).await, "90.00");

    let other = app
        .gql(
            PAY_WITH_KEY,
            json!({ "r": second_hold["holdSeat"]["id"], "k": "pay-1" }),
            &fan.auth(),
        )
        .await;
    assert_eq!(other.code(), "BAD_USER_INPUT");
    assert_eq!(app.count("payments", "1=1").await, 1);
    app.assert_ledgers_balance().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_frees_its_queue_slot_for_the_next_fan() {
    let rules = Rules {
        queue_active_limit: 1,
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let buyer = app.admitted_fan(&concert).await;
    let mut next = app.fan().await;
    assert_eq!(
        app.enter_queue(&mut next, &concert).await["status"],
        "WAITING"
    );

    app.charge(&buyer, "10.00").await.ok();
    let hold = app.hold(&buyer, &concert, dates[0], 1).await.ok();
    app.pay(&buyer, hold["holdSeat"]["id"].as_str().expect("id"))
        .await
        .ok();
    encore::domain::queue::admission_round(app.services())
        .await
        .expect("tick");
    assert_eq!(app.client().poll(&next).await["status"], "ACTIVE");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_holding_two_seats_pays_for_both_in_one_turn() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let fan = app.admitted_fan(&concert).await;
    app.charge(&fan, "20.00").await.ok();
    let first = app.hold(&fan, &concert, dates[0], 1).await.ok();
    let second = app.hold(&fan, &concert, dates[0], 2).await.ok();

    app.pay(&fan, first["holdSeat"]["id"].as_str().expect("id"))
        .await
        .ok();
    assert_eq!(
        app.client().poll(&fan).await["status"],
        "ACTIVE",
        "one hold is still unpaid"
    );
    app.pay(&fan, second["holdSeat"]["id"].as_str().expect("id"))
        .await
        .ok();
    assert_eq!(app.client().poll(&fan).await["status"], "COMPLETED");
    assert_eq!(app.balance(&fan).await, "0.00");
}

/// A hold taken in a turn is the fan's until the hold lapses, even when the turn ends first: the
/// fan pays with the same Queue-Token after the turn is over (and the turn then ends COMPLETED),
/// but a new hold needs a new turn.
#[tokio::test(flavor = "multi_thread")]
async fn a_hold_taken_in_a_turn_can_be_paid_after_the_turn_ends() {
    let rules = Rules {
        queue_active_ttl: Duration::from_secs(60),
        hold_ttl: Duration::from_secs(600),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let fan = app.admitted_fan(&concert).await;
    app.charge(&fan, "100.00").await.ok();
    let hold = app.hold(&fan, &concert, dates[0], 1).await.ok();
    let reservation = hold["holdSeat"]["id"].as_str().expect("id").to_owned();

    app.time_passes(Duration::from_secs(120)).await;
    assert_eq!(app.client().poll(&fan).await["status"], "EXPIRED");
    assert_eq!(
        app.hold(&fan, &concert, dates[0], 2).await.code(),
        "NOT_ADMITTED",
        "a new hold needs a turn"
    );

    let paid = app.pay(&fan, &reservation).await.ok();
    assert_eq!(paid["pay"]["reservation"]["status"], "PAID");
    assert_eq!(app.balance(&fan).await, "90.00");
    assert_eq!(app.count("seats", "status = 'SOLD'").await, 1);
    assert_eq!(app.client().poll(&fan).await["status"], "COMPLETED");
    app.assert_ledgers_balance().await;
}
