//! The waitlist of a sold-out date against a real MariaDB: joined in order, freed seats offered
//! to the first entry they fill and to nobody else, offers paid without a turn, declined or
//! lapsed and passed on, seats back on sale only when nobody waits; pushed live.

use std::time::Duration;

use chrono::NaiveDate;
use encore::background::Background;
use encore::config::Rules;
use encore::domain::orders::offers;
use serde_json::{Value, json};

use crate::common::ws::{MODERN, WsClient};
use crate::common::{Client, Fan, Gql, TestApp, assert_invariants, test_rules};

const ENTRY: &str =
    "id status position count offerExpiresAt offer { id status total heldUntil seats { number } }";

/// A concert of one date with `seats` seats, on sale now.
async fn small_concert(app: &TestApp, seats: i32) -> (String, NaiveDate) {
    let operator = app.operator().await;
    let date = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    let concert = app
        .concert_on_sale(
            &operator,
            json!({
                "title": "Tiny Room",
                "venue": "Cellar",
                "dates": [date.to_string()],
                "seatsPerDate": seats,
                "price": "10.00",
            }),
        )
        .await;
    (concert, date)
}

async fn join(client: &Client, fan: &Fan, concert: &str, date: NaiveDate, count: i32) -> Gql {
    client
        .gql(
            &format!("mutation($c: ID!, $d: Date!, $n: Int!) {{ joinWaitlist(concertId: $c, date: $d, count: $n) {{ {ENTRY} }} }}"),
            json!({ "c": concert, "d": date.to_string(), "n": count }),
            &fan.auth(),
        )
        .await
}

async fn my_waitlist(client: &Client, fan: &Fan) -> Value {
    client
        .gql(
            &format!("{{ myWaitlist {{ {ENTRY} }} }}"),
            json!({}),
            &fan.auth(),
        )
        .await
        .ok()["myWaitlist"][0]
        .clone()
}

async fn refund(client: &Client, operator: &Fan, reservation: &str) {
    client
        .gql(
            "mutation($r: ID!) { refund(reservationId: $r) { status } }",
            json!({ "r": reservation }),
            &operator.auth(),
        )
        .await
        .ok();
}

/// Fan `buyer` holds and pays seats 1 to `seats` of the date; their reservation ids.
async fn sell_out(
    app: &TestApp,
    buyer: &Fan,
    concert: &str,
    date: NaiveDate,
    seats: i32,
) -> Vec<String> {
    let numbers: Vec<i32> = (1..=seats).collect();
    buy(app, buyer, concert, date, &numbers).await
}

/// Fan `buyer` (in a turn) tops up, holds `numbers` of the date as one order and pays it; the
/// seats' reservation ids.
async fn buy(
    app: &TestApp,
    buyer: &Fan,
    concert: &str,
    date: NaiveDate,
    numbers: &[i32],
) -> Vec<String> {
    let client = app.client();
    app.charge(buyer, "1000.00").await.ok();
    let held = client
        .gql(
            "mutation($c: ID!, $d: Date!, $s: [Int!]!) { holdSeats(concertId: $c, date: $d, seatNumbers: $s) { id seats { reservationId } } }",
            json!({ "c": concert, "d": date.to_string(), "s": numbers }),
            &buyer.auth(),
        )
        .await
        .ok();
    let order = held["holdSeats"]["id"].as_str().expect("id");
    client
        .gql(
            "mutation($o: ID!) { payOrder(orderId: $o, idempotencyKey: \"sell-out\") { status } }",
            json!({ "o": order }),
            &buyer.auth(),
        )
        .await
        .ok();
    held["holdSeats"]["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .map(|s| s["reservationId"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn freed_seats_go_to_the_waitlist_in_join_order_and_only_then_back_on_sale() {
    let app = TestApp::spawn_with(test_rules(), Background::NONE).await;
    let (concert, date) = small_concert(&app, 4).await;
    let client = app.client();
    let operator = app.operator().await;
    let buyer = app.admitted_fan(&concert).await;
    // In the room before it sells out (a sold-out room admits nobody).
    let passer_by = app.admitted_fan(&concert).await;
    let (w1, w2, w3) = (app.fan().await, app.fan().await, app.fan().await);

    assert_eq!(
        join(&client, &w1, &concert, date, 2).await.code(),
        "SEATS_AVAILABLE"
    );
    let sold = sell_out(&app, &buyer, &concert, date, 4).await;

    // No queue turn needed; positions in join order; a second join returns the same entry.
    let first = join(&client, &w1, &concert, date, 2).await.ok()["joinWaitlist"].clone();
    assert_eq!(
        (first["status"].as_str(), first["position"].as_i64()),
        (Some("WAITING"), Some(0))
    );
    assert_eq!(
        join(&client, &w1, &concert, date, 2).await.ok()["joinWaitlist"]["id"],
        first["id"]
    );
    assert_eq!(
        join(&client, &w2, &concert, date, 1).await.ok()["joinWaitlist"]["position"],
        1
    );
    assert_eq!(
        join(&client, &w3, &concert, date, 2).await.ok()["joinWaitlist"]["position"],
        2
    );

    // One seat back: W1 needs two, so the first entry it fills is W2's.
    refund(&client, &operator, &sold[0]).await;
    let w2_entry = my_waitlist(&client, &w2).await;
    assert_eq!(w2_entry["status"], "OFFERED");
    assert_eq!(w2_entry["offer"]["seats"], json!([{ "number": 1 }]));
    assert_eq!(my_waitlist(&client, &w1).await["status"], "WAITING");

    // A second seat back fills nobody's count alone; it is the waitlist's, not on sale.
    refund(&client, &operator, &sold[1]).await;
    let refused = client
        .gql(
            "mutation($c: ID!, $d: Date!) { holdSeats(concertId: $c, date: $d, seatNumbers: [2]) { id } }",
            json!({ "c": concert, "d": date.to_string() }),
            &passer_by.auth(),
        )
        .await;
    assert_eq!(refused.code(), "SEAT_UNAVAILABLE");
    assert_eq!(refused.body["errors"][0]["extensions"]["waitlist"], true);

    // A third: two free, W1's count fits.
    refund(&client, &operator, &sold[2]).await;
    let w1_entry = my_waitlist(&client, &w1).await;
    assert_eq!(w1_entry["status"], "OFFERED");
    assert_eq!(
        w1_entry["offer"]["seats"],
        json!([{ "number": 2 }, { "number": 3 }])
    );
    assert_eq!(my_waitlist(&client, &w3).await["position"], 0, "W3 is next");

    // W2 pays without a queue turn: accepted.
    app.charge(&w2, "10.00").await.ok();
    let offer = w2_entry["offer"]["id"].as_str().expect("order");
    let paid = client
        .gql(
            "mutation($o: ID!) { payOrder(orderId: $o, idempotencyKey: \"w2\") { status } }",
            json!({ "o": offer }),
            &w2.auth(),
        )
        .await
        .ok();
    assert_eq!(paid["payOrder"]["status"], "PAID");
    assert_eq!(my_waitlist(&client, &w2).await["status"], "ACCEPTED");

    // W1 declines: the two seats pass to W3.
    client
        .gql(
            "mutation($o: ID!) { releaseOrder(orderId: $o) { status } }",
            json!({ "o": w1_entry["offer"]["id"] }),
            &w1.auth(),
        )
        .await
        .ok();
    assert_eq!(my_waitlist(&client, &w1).await["status"], "LEFT");
    let w3_entry = my_waitlist(&client, &w3).await;
    assert_eq!(w3_entry["status"], "OFFERED");
    assert_eq!(
        w3_entry["offer"]["seats"],
        json!([{ "number": 2 }, { "number": 3 }])
    );

    // W3's offer lapses: nobody waits any more, so the seats are back on sale.
    app.time_passes(test_rules().waitlist_offer_ttl + Duration::from_secs(1))
        .await;
    offers::offer_rounds(app.services()).await.expect("rounds");
    assert_eq!(my_waitlist(&client, &w3).await["status"], "EXPIRED");
    let again = app.admitted_fan(&concert).await;
    client
        .gql(
            "mutation($c: ID!, $d: Date!) { holdSeats(concertId: $c, date: $d, seatNumbers: [2, 3]) { id } }",
            json!({ "c": concert, "d": date.to_string() }),
            &again.auth(),
        )
        .await
        .ok();
    // Every freed seat was offered once: three offers, four seats.
    assert_eq!(app.count("orders", "source = 'WAITLIST'").await, 3);
    assert_eq!(
        app.count(
            "reservations r JOIN orders o ON o.id = r.order_id",
            "o.source = 'WAITLIST'"
        )
        .await,
        5
    );
    assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waitlisted_fan_is_offered_a_refunded_seat_live_and_can_leave() {
    let rules = Rules {
        queue_tick: Duration::from_millis(200),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let (concert, date) = small_concert(&app, 2).await;
    let client = app.client();
    let operator = app.operator().await;
    let buyer = app.admitted_fan(&concert).await;
    let sold = sell_out(&app, &buyer, &concert, date, 2).await;
    let (fan, later) = (app.fan().await, app.fan().await);
    join(&client, &fan, &concert, date, 1).await.ok();
    let later_entry = join(&client, &later, &concert, date, 1).await.ok()["joinWaitlist"].clone();

    let mut ws = WsClient::connect(
        &app.server.url(),
        MODERN,
        json!({ "authorization": format!("Bearer {}", fan.token) }),
    )
    .await
    .expect("ack");
    ws.subscribe(
        "w",
        "subscription { myWaitlist { status position offer { id total heldUntil } } }",
        json!({}),
    )
    .await;
    let now = ws
        .next_data("w", Duration::from_secs(10))
        .await
        .expect("entries now");
    assert_eq!(now["myWaitlist"][0]["status"], "WAITING");

    refund(&client, &operator, &sold[0]).await;
    let offered = ws
        .next_data("w", Duration::from_secs(10))
        .await
        .expect("the offer pushed");
    assert_eq!(offered["myWaitlist"][0]["status"], "OFFERED");
    assert_eq!(offered["myWaitlist"][0]["offer"]["total"], "10.00");

    // The later fan leaves before any offer: gone from the line, nothing held.
    let left = client
        .gql(
            &format!("mutation($e: ID!) {{ leaveWaitlist(entryId: $e) {{ {ENTRY} }} }}"),
            json!({ "e": later_entry["id"] }),
            &later.auth(),
        )
        .await
        .ok();
    assert_eq!(left["leaveWaitlist"]["status"], "LEFT");
    assert_eq!(
        client
            .gql(
                "mutation($e: ID!) { leaveWaitlist(entryId: $e) { id } }",
                json!({ "e": later_entry["id"] }),
                &fan.auth(),
            )
            .await
            .code(),
        "NOT_FOUND",
        "another fan's entry is not found"
    );
    assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seats_refunded_at_once_are_each_offered_once_to_the_first_in_line() {
    let app = TestApp::spawn_with(test_rules(), Background::NONE).await;
    let (concert, date) = small_concert(&app, 10).await;
    let client = app.client();
    let operator = app.operator().await;
    // Two buyers (six seats a fan at most) take all ten.
    let (one, two) = (
        app.admitted_fan(&concert).await,
        app.admitted_fan(&concert).await,
    );
    let mut sold = buy(&app, &one, &concert, date, &[1, 2, 3, 4, 5]).await;
    sold.extend(buy(&app, &two, &concert, date, &[6, 7, 8, 9, 10]).await);
    let mut line = Vec::new();
    for _ in 0..12 {
        let fan = app.fan().await;
        join(&client, &fan, &concert, date, 1).await.ok();
        line.push(fan);
    }

    // Ten refunds at once, each followed by its own offer round.
    futures::future::join_all(sold.iter().map(|r| refund(&client, &operator, r))).await;
    // Rounds that met another round's locks left their seats to the sweeper's beat.
    offers::offer_rounds(app.services()).await.expect("rounds");

    let mut offered = std::collections::HashSet::new();
    for (i, fan) in line.iter().enumerate() {
        let entry = my_waitlist(&client, fan).await;
        if i < 10 {
            assert_eq!(entry["status"], "OFFERED", "fan {i} of the line: {entry}");
            let seat = entry["offer"]["seats"][0]["number"].as_i64().expect("seat");
            assert!(offered.insert(seat), "seat {seat} offered twice");
        } else {
            assert_eq!(entry["status"], "WAITING");
            assert_eq!(entry["position"], i64::try_from(i).expect("i") - 10);
        }
    }
    assert_eq!(offered.len(), 10);
    assert_eq!(app.count("orders", "source = 'WAITLIST'").await, 10);
    assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_at_their_fair_share_leaves_the_line_instead_of_holding_seats_back() {
    let app = TestApp::spawn_with(test_rules(), Background::NONE).await;
    let (concert, date) = small_concert(&app, 3).await;
    let client = app.client();
    let operator = app.operator().await;
    let (capped, buyer) = (
        app.admitted_fan(&concert).await,
        app.admitted_fan(&concert).await,
    );
    let mine = sell_out(&app, &capped, &concert, date, 1).await;
    assert_eq!(mine.len(), 1);
    // The buyer takes seats 2 and 3.
    let bought = buy(&app, &buyer, &concert, date, &[2, 3]).await;
    // Sold out: the capped fan queues for one more, then a second fan behind them.
    join(&client, &capped, &concert, date, 1).await.ok();
    let behind = app.fan().await;
    join(&client, &behind, &concert, date, 1).await.ok();
    // The operator lowers the share to one: the capped fan can take no more.
    client
        .gql(
            "mutation($c: ID!) { updateConcert(concertId: $c, input: { maxTicketsPerFan: 1 }) { maxTicketsPerFan } }",
            json!({ "c": concert }),
            &operator.auth(),
        )
        .await
        .ok();

    refund(&client, &operator, &bought[0]).await;
    assert_eq!(my_waitlist(&client, &capped).await["status"], "EXPIRED");
    let served = my_waitlist(&client, &behind).await;
    assert_eq!(
        served["status"], "OFFERED",
        "the next fan gets the seat: {served}"
    );
    assert_eq!(served["offer"]["seats"], json!([{ "number": 2 }]));
    assert_eq!(
        app.count("concert_dates", "waitlist_waiting > 0").await,
        0,
        "nobody waits: later seats go back on sale"
    );
    assert_invariants(&app.db.url).await;
}
