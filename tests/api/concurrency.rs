//! The rules under real parallel load: many requests at once through HTTP and GraphQL, several
//! pooled connections, a real MariaDB, and for admission two server instances on one database.

use std::collections::HashMap;

use encore::background::Background;
use encore::config::Rules;
use encore::domain::queue;
use futures::future::join_all;
use serde_json::json;

use crate::common::{Client, Fan, TestApp, test_rules};

/// Signs up `n` fans in parallel.
async fn fans(client: &Client, n: usize) -> Vec<Fan> {
    join_all((0..n).map(|_| async { client.sign_up(&crate::common::unique_name()).await })).await
}

fn codes(results: &[crate::common::Gql]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in results {
        let key = if r.is_ok() { "ok".to_owned() } else { r.code() };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_fans_racing_for_one_seat_get_exactly_one_hold() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("50000.00", 1).await;
    let client = app.client();
    let mut racers = fans(&client, 100).await;
    join_all(racers.iter_mut().map(|f| {
        let client = client.clone();
        let concert = concert.clone();
        async move {
            client.enter_queue(f, &concert).await;
        }
    }))
    .await;

    let results = join_all(racers.iter().map(|f| client.hold(f, &concert, dates[0], 1))).await;
    let counts = codes(&results);
    assert_eq!(counts.get("ok"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("SEAT_UNAVAILABLE"), Some(&99), "{counts:?}");
    assert_eq!(app.count("reservations", "status = 'HELD'").await, 1);
    assert_eq!(app.count("seats", "status = 'HELD'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_charges_by_one_fan_add_up_exactly() {
    let app = TestApp::spawn().await;
    let fan = app.fan().await;
    let client = app.client();
    let auth = fan.auth();
    let results = join_all((1..=50).map(|n| {
        client.gql(
            "mutation($a: Decimal!, $k: String!) { charge(amount: $a, idempotencyKey: $k) { balance } }",
            json!({ "a": format!("{n}.01"), "k": format!("charge-{n}") }),
            &auth,
        )
    }))
    .await;
    assert!(results.iter().all(|r| r.is_ok()), "{:?}", codes(&results));
    // 1 + 2 + ... + 50 = 1275, plus 50 cents.
    assert_eq!(app.balance(&fan).await, "1275.50");
    assert_eq!(app.count("wallet_transactions", "1=1").await, 50);
    app.assert_ledgers_balance().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_pays_on_one_hold_make_one_payment() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("100.00", 1).await;
    let fan = app.admitted_fan(&concert).await;
    app.charge(&fan, "10000.00").await.ok();
    let hold = app.hold(&fan, &concert, dates[0], 5).await.ok();
    let id = hold["holdSeat"]["id"].as_str().expect("id").to_owned();

    let client = app.client();
    let auth = fan.auth();
    let results = join_all((0..20).map(|_| {
        client.gql(
            "mutation($r: ID!) { pay(reservationId: $r) { id } }",
            json!({ "r": id }),
            &auth,
        )
    }))
    .await;
    let counts = codes(&results);
    assert_eq!(counts.get("ok"), Some(&1), "{counts:?}");
    assert_eq!(app.count("payments", "1=1").await, 1);
    assert_eq!(app.balance(&fan).await, "9900.00");
    app.assert_ledgers_balance().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pays_the_balance_covers_only_once_never_go_negative() {
    // Funds for one seat, holds on several (two dates so the per-date limit does not interfere):
    // the pays race for the same money.
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("100.00", 2).await;
    let client = app.client();
    let mut buyers = Vec::new();
    for _ in 0..5 {
        let fan = app.admitted_fan(&concert).await;
        app.charge(&fan, "150.00").await.ok();
        let mut holds = Vec::new();
        for (i, date) in dates.iter().enumerate() {
            let seat = (buyers.len() * 2 + i + 1) as i32;
            let h = app.hold(&fan, &concert, *date, seat).await.ok();
            holds.push(h["holdSeat"]["id"].as_str().expect("id").to_owned());
        }
        buyers.push((fan, holds));
    }

    let attempts = buyers.iter().flat_map(|(fan, holds)| {
        holds.iter().map(|id| {
            let client = client.clone();
            let auth = fan.auth();
            async move {
                client
                    .gql(
                        "mutation($r: ID!) { pay(reservationId: $r) { id } }",
                        json!({ "r": id }),
                        &auth,
                    )
                    .await
            }
        })
    });
    let results = join_all(attempts).await;
    let counts = codes(&results);
    // Each buyer's first pay wins; the second finds the money gone.
    assert_eq!(counts.get("ok"), Some(&5), "{counts:?}");
    assert_eq!(app.count("payments", "1=1").await, 5);
    assert_eq!(app.count("users", "balance < 0").await, 0);
    assert_eq!(app.count("users", "balance = 50.00").await, 5);
    app.assert_ledgers_balance().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admission_across_two_instances_never_exceeds_the_active_limit() {
    let rules = Rules {
        queue_active_limit: 5,
        queue_admit_per_sec: 1000,
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules.clone(), Background::NONE).await;
    let second = TestApp::instance(&app.db, rules, Background::NONE).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let a = app.client();
    let b = Client::for_server(&second);

    // 40 fans enter at once, half through each instance; while they do, both instances tick.
    let mut crowd = fans(&a, 40).await;
    let entering = join_all(crowd.iter_mut().enumerate().map(|(i, f)| {
        let client = if i % 2 == 0 { a.clone() } else { b.clone() };
        let concert = concert.clone();
        async move {
            client.enter_queue(f, &concert).await;
        }
    }));
    let ticking = async {
        for _ in 0..10 {
            let (x, y) = tokio::join!(
                queue::admission_round(app.services()),
                queue::admission_round(&second.services)
            );
            x.expect("tick a");
            y.expect("tick b");
        }
    };
    tokio::join!(entering, ticking);

    assert_eq!(app.count("queue_tickets", "status = 'ACTIVE'").await, 5);
    let tickets = join_all(crowd.iter().map(|f| a.poll(f))).await;
    let active = tickets.iter().filter(|t| t["status"] == "ACTIVE").count();
    assert_eq!(active, 5);
    // The waiting positions are exactly 0..35: everyone has a distinct place in line.
    let mut positions: Vec<i64> = tickets
        .iter()
        .filter(|t| t["status"] == "WAITING")
        .map(|t| t["position"].as_i64().expect("position"))
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (0..35).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_fan_entering_the_queue_ten_times_at_once_gets_one_ticket() {
    let rules = Rules {
        queue_active_limit: 1,
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let client = app.client();
    let fan = app.fan().await;
    let results = join_all((0..10).map(|_| {
        let client = client.clone();
        let mut fan = fan.clone();
        let concert = concert.clone();
        async move { client.enter_queue(&mut fan, &concert).await["token"].clone() }
    }))
    .await;
    assert!(results.iter().all(|t| *t == results[0]), "{results:?}");
    assert_eq!(app.count("queue_tickets", "1=1").await, 1);
}
