//! Orders of several seats against a real MariaDB: all or none, racing fans, best available
//! together, the fair share across sessions and re-queues, paying and releasing whole orders.
//! Each scenario ends with the SQL invariants.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::NaiveDate;
use encore::background::Background;
use encore::config::Rules;
use futures::future::join_all;
use serde_json::{Value, json};

use crate::common::{Client, Fan, Gql, TestApp, assert_invariants, test_rules};

const ORDER: &str =
    "id status total heldUntil paidAt seats { number price tier status reservationId }";

async fn hold_seats(
    client: &Client,
    fan: &Fan,
    concert: &str,
    date: NaiveDate,
    seats: &[i32],
) -> Gql {
    client
        .gql(
            &format!(
                "mutation($c: ID!, $d: Date!, $s: [Int!]!) {{ holdSeats(concertId: $c, date: $d, seatNumbers: $s) {{ {ORDER} }} }}"
            ),
            json!({ "c": concert, "d": date.to_string(), "s": seats }),
            &fan.auth(),
        )
        .await
}

async fn best(client: &Client, fan: &Fan, concert: &str, date: NaiveDate, count: i32) -> Gql {
    client
        .gql(
            &format!(
                "mutation($c: ID!, $d: Date!, $n: Int!) {{ holdBestAvailable(concertId: $c, date: $d, count: $n) {{ {ORDER} }} }}"
            ),
            json!({ "c": concert, "d": date.to_string(), "n": count }),
            &fan.auth(),
        )
        .await
}

async fn pay_order(client: &Client, fan: &Fan, order: &str, key: &str) -> Gql {
    client
        .gql(
            &format!(
                "mutation($o: ID!, $k: String!) {{ payOrder(orderId: $o, idempotencyKey: $k) {{ {ORDER} }} }}"
            ),
            json!({ "o": order, "k": key }),
            &fan.auth(),
        )
        .await
}

fn numbers(order: &Value) -> Vec<i64> {
    order["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .map(|s| s["number"].as_i64().expect("number"))
        .collect()
}

fn codes(results: &[Gql]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in results {
        let key = if r.is_ok() { "ok".to_owned() } else { r.code() };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// A concert made by an operator with `input`'s extra fields, on sale now; its first date.
async fn concert_with(app: &TestApp, extra: Value) -> (String, NaiveDate) {
    let operator = app.operator().await;
    let date = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    let mut input = json!({
        "title": "Orders Night",
        "venue": "Hall",
        "dates": [date.to_string()],
        "seatsPerDate": 50,
        "price": "10.00",
    });
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    (app.concert_on_sale(&operator, input).await, date)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_takes_every_seat_named_or_none_and_says_which_were_taken() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let client = app.client();
    let alice = app.admitted_fan(&concert).await;
    let bob = app.admitted_fan(&concert).await;

    let held = hold_seats(&client, &alice, &concert, dates[0], &[3, 1, 2])
        .await
        .ok();
    let order = &held["holdSeats"];
    assert_eq!(order["status"], "HELD");
    assert_eq!(numbers(order), vec![1, 2, 3]);
    assert_eq!(order["total"], "30.00");

    let refused = hold_seats(&client, &bob, &concert, dates[0], &[4, 3, 5, 2]).await;
    assert_eq!(refused.code(), "SEAT_UNAVAILABLE");
    assert_eq!(
        refused.body["errors"][0]["extensions"]["seats"],
        json!([2, 3])
    );
    assert_eq!(
        app.count("reservations", &format!("user_id = '{}'", bob.user_id))
            .await,
        0,
        "nothing of Bob's order was written"
    );
    assert_eq!(app.count("seats", "status = 'HELD'").await, 3);
    assert_eq!(
        app.client().seat_status(&bob, &concert, dates[0], 4).await,
        "AVAILABLE"
    );

    for (seats, code) in [
        (vec![], "BAD_USER_INPUT"),
        (vec![7, 7], "BAD_USER_INPUT"),
        (vec![8, 51], "BAD_USER_INPUT"),
        (vec![0], "BAD_USER_INPUT"),
    ] {
        let r = hold_seats(&client, &bob, &concert, dates[0], &seats).await;
        assert_eq!(r.code(), code, "{seats:?}");
    }
    assert_eq!(
        app.count("orders", &format!("user_id = '{}'", bob.user_id))
            .await,
        0
    );
    assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_fans_racing_for_overlapping_sets_never_share_a_seat_or_split_an_order() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let client = app.client();
    let fans = join_all((0..64).map(|_| app.admitted_fan(&concert))).await;

    // Fan i wants three seats starting at i % 48 + 1: neighbours overlap by two.
    let wanted: Vec<Vec<i32>> = (0..64)
        .map(|i| {
            let first = i % 48 + 1;
            vec![first + 2, first, first + 1]
        })
        .collect();
    let results = join_all(
        fans.iter()
            .zip(&wanted)
            .map(|(fan, seats)| hold_seats(&client, fan, &concert, dates[0], seats)),
    )
    .await;
    let counts = codes(&results);
    assert!(
        counts.keys().all(|c| c == "ok" || c == "SEAT_UNAVAILABLE"),
        "only orders and SEAT_UNAVAILABLE: {counts:?}"
    );
    let mut taken = HashSet::new();
    let mut orders = 0;
    let mut refused_for = Vec::new();
    for (result, seats) in results.into_iter().zip(&wanted) {
        if !result.is_ok() {
            refused_for.push(result.body["errors"][0]["extensions"]["seats"].clone());
            continue;
        }
        let order = result.ok()["holdSeats"].clone();
        let mut expected: Vec<i64> = seats.iter().map(|n| i64::from(*n)).collect();
        expected.sort();
        assert_eq!(numbers(&order), expected, "every seat asked for, no other");
        for n in numbers(&order) {
            assert!(taken.insert(n), "seat {n} is in two orders");
        }
        orders += 1;
    }
    // A fan was refused only for seats another order has.
    for seats in refused_for {
        let seats = seats.as_array().expect("extensions.seats").clone();
        assert!(!seats.is_empty());
        for n in seats {
            assert!(
                taken.contains(&n.as_i64().expect("n")),
                "refused for free seat {n}"
            );
        }
    }
    // No set of three among 50 seats is left that every fan missed: at least 50 / 5.
    assert!(orders >= 10, "{orders}");
    assert_eq!(app.count("seats", "status = 'HELD'").await, orders * 3);
    assert_eq!(
        app.count("reservations", "status = 'HELD'").await,
        orders * 3
    );
    assert_eq!(app.count("orders", "status = 'HELD'").await, orders);
    assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_groups_asking_for_four_together_get_distinct_blocks_in_one_row() {
    let app = TestApp::spawn().await;
    // Five rows of ten: two blocks of four fit in a row, ten in all.
    let (concert, date) = concert_with(&app, json!({ "seatsPerRow": 10 })).await;
    let client = app.client();
    let fans = join_all((0..32).map(|_| app.admitted_fan(&concert))).await;

    let results = join_all(fans.iter().map(|fan| best(&client, fan, &concert, date, 4))).await;
    let counts = codes(&results);
    assert_eq!(counts.get("ok"), Some(&10), "{counts:?}");
    assert_eq!(counts.get("SEAT_UNAVAILABLE"), Some(&22), "{counts:?}");
    let mut taken = HashSet::new();
    for result in &results {
        if result.is_ok() {
            let order = result.clone().ok()["holdBestAvailable"].clone();
            let seats = numbers(&order);
            assert_eq!(seats.len(), 4);
            assert!(
                seats.windows(2).all(|w| w[1] == w[0] + 1),
                "adjacent: {seats:?}"
            );
            assert_eq!(
                (seats[0] - 1) / 10,
                (seats[3] - 1) / 10,
                "one row: {seats:?}"
            );
            for n in seats {
                assert!(taken.insert(n), "seat {n} in two blocks");
            }
        } else {
            let largest = &result.body["errors"][0]["extensions"]["largestBlock"];
            assert!(largest.as_i64().is_some_and(|n| n < 4), "{}", result.body);
        }
    }
    // The best blocks went first: seats 1-8 of every row.
    let rows_used: HashSet<i64> = taken.iter().map(|n| (n - 1) % 10).collect();
    assert_eq!(rows_used, (0..8).collect());

    // Not together: the lowest free seats, wherever they are.
    let late = app.admitted_fan(&concert).await;
    let scattered = client
        .gql(
            &format!("mutation($c: ID!, $d: Date!) {{ holdBestAvailable(concertId: $c, date: $d, count: 3, together: false) {{ {ORDER} }} }}"),
            json!({ "c": concert, "d": date.to_string() }),
            &late.auth(),
        )
        .await
        .ok();
    assert_eq!(numbers(&scattered["holdBestAvailable"]), vec![9, 10, 19]);
    assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fans_share_holds_across_parallel_sessions_dates_and_queue_reentries() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("10.00", 2).await;
    let client = app.client();
    let fan = app.admitted_fan(&concert).await;

    // Eight sessions of one fan at once, two seats each: six seats at most.
    let pairs: Vec<[i32; 2]> = (0..8).map(|i| [i * 2 + 1, i * 2 + 2]).collect();
    let results = join_all(
        pairs
            .iter()
            .enumerate()
            .map(|(i, seats)| hold_seats(&client, &fan, &concert, dates[i % 2], seats)),
    )
    .await;
    let counts = codes(&results);
    assert_eq!(counts.get("ok"), Some(&3), "{counts:?}");
    assert_eq!(counts.get("TICKET_LIMIT_REACHED"), Some(&5), "{counts:?}");
    let refused = results.iter().find(|r| !r.is_ok()).expect("a refusal");
    assert_eq!(refused.body["errors"][0]["extensions"]["limit"], 6);
    assert_eq!(refused.body["errors"][0]["extensions"]["remaining"], 0);
    assert_eq!(
        app.count(
            "reservations",
            &format!("user_id = '{}' AND status = 'HELD'", fan.user_id)
        )
        .await,
        6
    );

    // Paid, then back in the queue for a new turn: still six.
    app.charge(&fan, "100.00").await.ok();
    let orders = client
        .gql(
            "{ myOrders(first: 10) { edges { node { id status } } } }",
            json!({}),
            &fan.auth(),
        )
        .await
        .ok();
    let ids: Vec<String> = orders["myOrders"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    for id in &ids {
        pay_order(&client, &fan, id, &format!("pay-{id}"))
            .await
            .ok();
    }
    let mut again = fan.clone();
    let ticket = client.enter_queue(&mut again, &concert).await;
    assert_eq!(ticket["status"], "ACTIVE");
    let over = hold_seats(&client, &again, &concert, dates[0], &[40]).await;
    assert_eq!(over.code(), "TICKET_LIMIT_REACHED");

    // A refund gives one back.
    let allowance = client
        .gql(
            "query($c: ID!) { ticketAllowance(concertId: $c) { limit used remaining } }",
            json!({ "c": concert }),
            &again.auth(),
        )
        .await
        .ok();
    assert_eq!(
        allowance["ticketAllowance"],
        json!({ "limit": 6, "used": 6, "remaining": 0 })
    );
    let paid_seat = app
        .count(
            "reservations",
            &format!("user_id = '{}' AND status = 'PAID'", fan.user_id),
        )
        .await;
    assert_eq!(paid_seat, 6);
    let reservations = client
        .gql("{ myReservations { id status } }", json!({}), &fan.auth())
        .await
        .ok();
    let first = reservations["myReservations"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    client
        .gql(
            "mutation($r: ID!) { refund(reservationId: $r) { status } }",
            json!({ "r": first }),
            &fan.auth(),
        )
        .await
        .ok();
    hold_seats(&client, &again, &concert, dates[0], &[40])
        .await
        .ok();
    assert_eq!(
        hold_seats(&client, &again, &concert, dates[0], &[41])
            .await
            .code(),
        "TICKET_LIMIT_REACHED"
    );
    assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_is_paid_whole_with_one_ledger_row_or_not_at_all() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let client = app.client();
    let fan = app.admitted_fan(&concert).await;
    let held = hold_seats(&client, &fan, &concert, dates[0], &[5, 6, 7])
        .await
        .ok();
    let order = held["holdSeats"]["id"].as_str().expect("id").to_owned();

    app.charge(&fan, "29.99").await.ok();
    let short = pay_order(&client, &fan, &order, "k1").await;
    assert_eq!(short.code(), "INSUFFICIENT_BALANCE");
    assert_eq!(short.body["errors"][0]["extensions"]["needed"], "30.00");
    assert_eq!(app.count("seats", "status = 'SOLD'").await, 0);
    assert_eq!(app.count("payments", "1=1").await, 0);

    app.charge(&fan, "0.01").await.ok();
    let paid = pay_order(&client, &fan, &order, "k2").await.ok();
    assert_eq!(paid["payOrder"]["status"], "PAID");
    assert!(
        paid["payOrder"]["seats"]
            .as_array()
            .expect("seats")
            .iter()
            .all(|s| s["status"] == "PAID")
    );
    assert_eq!(app.count("seats", "status = 'SOLD'").await, 3);
    assert_eq!(
        app.count(
            "wallet_transactions",
            &format!("kind = 'PAYMENT' AND amount = -30.00 AND order_id = '{order}'")
        )
        .await,
        1,
        "one ledger row for the total"
    );
    assert_eq!(app.balance(&fan).await, "0.00");
    // The same key again: the order as the first call left it, nothing charged twice.
    let again = pay_order(&client, &fan, &order, "k2").await.ok();
    assert_eq!(again["payOrder"]["status"], "PAID");
    assert_eq!(app.count("payments", "1=1").await, 1);
    // Another key: already paid.
    assert_eq!(
        pay_order(&client, &fan, &order, "k3").await.code(),
        "BAD_USER_INPUT"
    );
    // Another fan cannot pay it, nor see it.
    let other = app.admitted_fan(&concert).await;
    assert_eq!(
        pay_order(&client, &other, &order, "k4").await.code(),
        "NOT_FOUND"
    );
    let seen = client
        .gql(
            "query($o: ID!) { order(id: $o) { id } }",
            json!({ "o": order }),
            &other.auth(),
        )
        .await;
    assert_eq!(seen.code(), "NOT_FOUND");
    assert_eq!(
        client.poll(&fan).await["status"],
        "COMPLETED",
        "the payment ended the turn"
    );
    assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn releasing_an_order_frees_every_seat_and_a_repeat_changes_nothing() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let client = app.client();
    let fan = app.admitted_fan(&concert).await;
    let first = hold_seats(&client, &fan, &concert, dates[0], &[10, 11])
        .await
        .ok()["holdSeats"]
        .clone();
    let second = hold_seats(&client, &fan, &concert, dates[0], &[12, 13])
        .await
        .ok()["holdSeats"]
        .clone();
    let order = first["id"].as_str().expect("id").to_owned();

    let release = "mutation($o: ID!) { releaseOrder(orderId: $o) { status total } }";
    let released = client
        .gql(release, json!({ "o": order }), &fan.auth())
        .await
        .ok();
    assert_eq!(released["releaseOrder"]["status"], "RELEASED");
    let repeat = client
        .gql(release, json!({ "o": order }), &fan.auth())
        .await
        .ok();
    assert_eq!(repeat["releaseOrder"]["status"], "RELEASED");
    assert_eq!(
        app.count("seats", "status = 'HELD'").await,
        2,
        "the other order stays"
    );
    assert_eq!(
        pay_order(&client, &fan, &order, "late").await.code(),
        "BAD_USER_INPUT",
        "a released order cannot be paid"
    );

    // The seed API's way, through one seat: the whole order goes, as `pay` pays it whole.
    let seat = second["seats"][0]["reservationId"].as_str().expect("id");
    let via_seat = "mutation($r: ID!) { releaseSeat(reservationId: $r) { status } }";
    let gone = client
        .gql(via_seat, json!({ "r": seat }), &fan.auth())
        .await
        .ok();
    assert_eq!(gone["releaseSeat"]["status"], "CANCELLED");
    let again = client
        .gql(via_seat, json!({ "r": seat }), &fan.auth())
        .await
        .ok();
    assert_eq!(
        again["releaseSeat"]["status"], "CANCELLED",
        "a repeat is harmless"
    );
    let now = client
        .gql(
            &format!("query($o: ID!) {{ order(id: $o) {{ {ORDER} }} }}"),
            json!({ "o": second["id"] }),
            &fan.auth(),
        )
        .await
        .ok();
    assert_eq!(now["order"]["status"], "RELEASED");
    assert_eq!(app.count("seats", "status = 'HELD'").await, 0);

    // The seats are free for anyone.
    let other = app.admitted_fan(&concert).await;
    hold_seats(&client, &other, &concert, dates[0], &[10, 11, 12, 13])
        .await
        .ok();
    assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_sets_a_concerts_fair_share_and_rows() {
    let app = TestApp::spawn().await;
    let (concert, date) =
        concert_with(&app, json!({ "seatsPerRow": 25, "maxTicketsPerFan": 2 })).await;
    let client = app.client();
    let fan = app.admitted_fan(&concert).await;
    let read = "query($c: ID!) { concert(id: $c) { seatsPerRow maxTicketsPerFan } }";
    let shown = client
        .gql(read, json!({ "c": concert }), &fan.auth())
        .await
        .ok();
    assert_eq!(
        shown["concert"],
        json!({ "seatsPerRow": 25, "maxTicketsPerFan": 2 })
    );
    assert_eq!(
        hold_seats(&client, &fan, &concert, date, &[1, 2, 3])
            .await
            .code(),
        "TICKET_LIMIT_REACHED"
    );

    let operator = app.operator().await;
    let update = "mutation($c: ID!, $n: Int) { updateConcert(concertId: $c, input: { maxTicketsPerFan: $n }) { maxTicketsPerFan } }";
    assert_eq!(
        client
            .gql(update, json!({ "c": concert, "n": 3 }), &fan.auth())
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        client
            .gql(update, json!({ "c": concert, "n": 0 }), &operator.auth())
            .await
            .code(),
        "BAD_USER_INPUT"
    );
    client
        .gql(update, json!({ "c": concert, "n": 3 }), &operator.auth())
        .await
        .ok();
    hold_seats(&client, &fan, &concert, date, &[1, 2, 3])
        .await
        .ok();
    let back = client
        .gql(update, json!({ "c": concert, "n": null }), &operator.auth())
        .await
        .ok();
    assert_eq!(
        back["updateConcert"]["maxTicketsPerFan"], 6,
        "null: the configured default"
    );

    // Rows are on the seat map: seat 26 starts row 2.
    let seats = client
        .gql(
            "query($c: ID!, $d: Date!) { seats(concertId: $c, date: $d) { number row } }",
            json!({ "c": concert, "d": date.to_string() }),
            &fan.auth(),
        )
        .await
        .ok();
    assert_eq!(seats["seats"][25], json!({ "number": 26, "row": 2 }));
    assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_sees_their_own_hold_on_the_seat_map_at_once() {
    // A tick every minute: only the instance's own knowledge can show the hold sooner.
    let rules = Rules {
        queue_tick: Duration::from_secs(60),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let client = app.client();
    let fan = app.admitted_fan(&concert).await;
    // The first read starts the date's feed; later reads are answered from memory.
    assert_eq!(
        client.seat_status(&fan, &concert, dates[0], 7).await,
        "AVAILABLE"
    );
    assert_eq!(
        client.seat_status(&fan, &concert, dates[0], 7).await,
        "AVAILABLE"
    );

    let held = hold_seats(&client, &fan, &concert, dates[0], &[7, 8])
        .await
        .ok();
    assert_eq!(
        client.seat_status(&fan, &concert, dates[0], 7).await,
        "HELD"
    );
    assert_eq!(
        client.seat_status(&fan, &concert, dates[0], 8).await,
        "HELD"
    );

    let order = held["holdSeats"]["id"].as_str().expect("id");
    client
        .gql(
            "mutation($o: ID!) { releaseOrder(orderId: $o) { status } }",
            json!({ "o": order }),
            &fan.auth(),
        )
        .await
        .ok();
    assert_eq!(
        client.seat_status(&fan, &concert, dates[0], 7).await,
        "AVAILABLE"
    );
}
