//! A sold-out aware waiting room: nobody is let in while no seat is free, every waiting ticket
//! turns SOLD_OUT (pushed) when every seat is sold, and a lapsed hold or a refund reopens it.

use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use encore::background::Background;
use encore::config::Rules;
use serde_json::{Value, json};

use crate::common::ws::{MODERN, WsClient};
use crate::common::{Fan, TestApp, assert_invariants, test_rules};

const WAIT: Duration = Duration::from_secs(10);

async fn watch(app: &TestApp, fan: &Fan) -> WsClient {
    let mut ws = WsClient::connect(
        &app.server.url(),
        MODERN,
        json!({ "authorization": format!("Bearer {}", fan.token), "queueToken": fan.queue_token }),
    )
    .await
    .expect("ack");
    ws.subscribe(
        "q",
        "subscription { queueTicket { status position } }",
        json!({}),
    )
    .await;
    ws
}

/// Statuses pushed to `ws` until `status` (inclusive), or fails.
async fn until_status(ws: &mut WsClient, status: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    while let Some(update) = ws.next_data("q", WAIT).await {
        let s = update["queueTicket"]["status"].clone();
        seen.push(s.clone());
        if s == status {
            return seen;
        }
    }
    panic!("never {status}: saw {seen:?}");
}

async fn concert_sold_out(app: &TestApp, concert: &str) -> bool {
    let listed = app
        .gql(
            "query($c: ID!) { concert(id: $c) { soldOut } }",
            json!({ "c": concert }),
            &Default::default(),
        )
        .await
        .ok();
    listed["concert"]["soldOut"] == true
}

async fn buy(app: &TestApp, fan: &Fan, concert: &str, date: NaiveDate, seat: i32) -> String {
    app.charge(fan, "100.00").await.ok();
    let hold = app.hold(fan, concert, date, seat).await.ok();
    let id = hold["holdSeat"]["id"].as_str().expect("id").to_owned();
    app.pay(fan, &id).await.ok();
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn the_room_stops_when_no_seat_is_free_closes_when_all_are_sold_and_reopens() {
    // Holds last 5 s: long enough to pay at once and to see that nobody is let in meanwhile,
    // short enough to watch one lapse.
    let rules = Rules {
        queue_active_limit: 2,
        queue_tick: Duration::from_millis(200),
        hold_ttl: Duration::from_secs(5),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let operator = app.operator().await;
    let date = Utc::now().date_naive() + Days::new(30);
    let concert = app
        .concert_on_sale(
            &operator,
            json!({ "title": "Two Seats", "venue": "Tiny Room", "dates": [date.to_string()], "seatsPerDate": 2, "price": "50.00" }),
        )
        .await;

    let a = app.admitted_fan(&concert).await;
    let b = app.admitted_fan(&concert).await;
    let mut c = app.fan().await;
    let mut d = app.fan().await;
    app.enter_queue(&mut c, &concert).await;
    app.enter_queue(&mut d, &concert).await;
    let mut c_ws = watch(&app, &c).await;
    let mut d_ws = watch(&app, &d).await;
    until_status(&mut c_ws, "WAITING").await;
    until_status(&mut d_ws, "WAITING").await;

    // Both seats held, one of them paid: a turn is free but no seat is, so nobody comes in. (B
    // holds first: held the other way round, A's payment frees a turn while seat 2 is still
    // free, and a tick in between rightly lets C in.)
    app.hold(&b, &concert, date, 2).await.ok();
    let a_bought = buy(&app, &a, &concert, date, 1).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(app.poll(&c).await["status"], "WAITING");

    // B's hold lapses: the seat is free again and C is let in.
    until_status(&mut c_ws, "ACTIVE").await;

    // C buys the last seat: every seat is sold, the room closes, D is told at once.
    buy(&app, &c, &concert, date, 2).await;
    until_status(&mut d_ws, "SOLD_OUT").await;
    assert!(concert_sold_out(&app, &concert).await);
    assert_eq!(app.poll(&d).await["status"], "SOLD_OUT");

    // A refund puts a seat back: the room reopens and D, still in line, is let in.
    app.gql(
        "mutation($r: ID!) { refund(reservationId: $r) { status } }",
        json!({ "r": a_bought }),
        &operator.auth(),
    )
    .await
    .ok();
    until_status(&mut d_ws, "ACTIVE").await;
    assert!(!concert_sold_out(&app, &concert).await);
    assert_invariants(&app.db.url).await;
}
