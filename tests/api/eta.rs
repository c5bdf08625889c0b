//! An honest estimated wait. In a cold room (the first second of a sale) the wait a fan is
//! promised at entry comes from the active limit and the turn length, known before anyone is
//! admitted; in a warm room, from how fast turns actually end. Never from the configured rate
//! alone while the active limit binds.

use std::time::{Duration, Instant};

use encore::background::Background;
use encore::config::Rules;
use serde_json::json;

use crate::common::{Client, Fan, TestApp, test_rules};

/// A fan in the crowd: waits for their turn, takes about two seconds to choose, buys a seat.
async fn shop(
    client: Client,
    mut fan: Fan,
    concert: String,
    dates: Vec<chrono::NaiveDate>,
    i: usize,
) {
    client.enter_queue(&mut fan, &concert).await;
    loop {
        if client.poll(&fan).await["status"] == "ACTIVE" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 1.5 to 2.5 s, spread so turns do not all end together.
    tokio::time::sleep(Duration::from_millis(1500 + (i as u64 * 379) % 1000)).await;
    let date = dates[i / 50];
    let seat = (i % 50 + 1) as i32;
    let hold = client.hold(&fan, &concert, date, seat).await.ok();
    client
        .pay(&fan, hold["holdSeat"]["id"].as_str().expect("id"))
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wait_promised_at_entry_matches_the_wait_when_the_active_limit_binds() {
    // Five turns at once, admission far faster than turns end: the limit binds, so the rate
    // configured (100/s) would promise waits ~40 times too short.
    let rules = Rules {
        queue_active_limit: 5,
        queue_admit_per_sec: 100,
        queue_tick: Duration::from_millis(200),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let (concert, dates) = app.concert("10.00", 2).await;
    let mut crowd = Vec::new();
    for i in 0..45 {
        let fan = app.fan().await;
        app.charge(&fan, "10.00").await.ok();
        crowd.push(tokio::spawn(shop(
            app.client(),
            fan,
            concert.clone(),
            dates.clone(),
            i,
        )));
    }

    // The room has been running for a while when the measured fan arrives.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut fan = app.fan().await;
    let entered = Instant::now();
    let ticket = app.enter_queue(&mut fan, &concert).await;
    assert_eq!(ticket["status"], "WAITING", "{ticket}");
    let promised = ticket["estimatedWaitSeconds"].as_f64().expect("estimate");
    let position = ticket["position"].as_i64().expect("position");
    loop {
        if app.poll(&fan).await["status"] == "ACTIVE" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waited = entered.elapsed().as_secs_f64();
    for shopper in crowd {
        shopper.abort();
    }
    eprintln!("position {position}: promised {promised} s, waited {waited:.1} s");
    assert!(
        position >= 10,
        "the fan should arrive behind a real line: position {position}"
    );
    // Within 30%, beyond the estimate's own granularity: it is shown in whole seconds, rounded
    // up, so up to one second of the difference is the display's, not the estimator's (a loaded
    // CI run promised 8 s for a 6.1 s wait whose estimate was under 7).
    assert!(
        (promised - waited).abs() <= 0.3 * waited + 1.0,
        "promised {promised} s at position {position}, waited {waited:.1} s"
    );
    let stats = app
        .gql(
            "query($c: ID!) { queueStats(concertId: $c) { observedAdmissionRate } }",
            json!({ "c": concert }),
            &app.operator().await.auth(),
        )
        .await
        .ok();
    let rate = stats["queueStats"]["observedAdmissionRate"]
        .as_f64()
        .expect("observed");
    assert!(rate > 1.0 && rate < 5.0, "observed {rate}/s");
}

/// What one fan of the cold-room crowd was shown at entry and how long they really waited.
struct Promise {
    position: i64,
    shown: f64,
    waited: f64,
}

/// A fan of the opening crowd: enters with everyone, waits for their turn (timed), then uses it
/// as a fan would: every third one buys a seat after 3 s, the others let the turn run out.
async fn open_with_the_crowd(
    client: Client,
    mut fan: Fan,
    concert: String,
    date: chrono::NaiveDate,
    i: usize,
    start: std::sync::Arc<tokio::sync::Barrier>,
) -> Option<Promise> {
    start.wait().await;
    let entered = Instant::now();
    let ticket = client.enter_queue(&mut fan, &concert).await;
    let waiting = ticket["status"] == "WAITING";
    let shown = ticket["estimatedWaitSeconds"].as_f64().expect("estimate");
    let position = ticket["position"].as_i64().expect("position");
    while client.poll(&fan).await["status"] != "ACTIVE" {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited = entered.elapsed().as_secs_f64();
    if i.is_multiple_of(3) {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let hold = client.hold(&fan, &concert, date, i as i32 + 1).await.ok();
        client
            .pay(&fan, hold["holdSeat"]["id"].as_str().expect("id"))
            .await
            .ok();
    }
    waiting.then_some(Promise {
        position,
        shown,
        waited,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wait_promised_in_the_first_second_of_a_sale_is_the_wait() {
    // Thirty fans arrive together at a room nobody has been admitted to yet: five turns at once,
    // each up to 4 s, 10 admissions a second set. The pace set would promise 1 to 3 s; the truth
    // is rounds of about one turn each.
    let rules = Rules {
        queue_active_limit: 5,
        queue_admit_per_sec: 10,
        queue_active_ttl: Duration::from_secs(4),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(30));
    let mut crowd = Vec::new();
    for i in 0..30 {
        let fan = app.fan().await;
        app.charge(&fan, "10.00").await.ok();
        crowd.push(tokio::spawn(open_with_the_crowd(
            app.client(),
            fan,
            concert.clone(),
            dates[0],
            i,
            start.clone(),
        )));
    }
    let mut promises = Vec::new();
    for fan in crowd {
        promises.extend(fan.await.expect("fan"));
    }
    promises.sort_by_key(|p| p.position);
    let mut errors: Vec<f64> = promises
        .iter()
        .map(|p| {
            eprintln!(
                "position {:>2}: shown {:>4} s, waited {:>5.1} s",
                p.position, p.shown, p.waited
            );
            (p.shown - p.waited).abs() / p.waited
        })
        .collect();
    assert!(
        promises.len() >= 20,
        "most of the crowd should have waited: {} did",
        promises.len()
    );
    errors.sort_by(f64::total_cmp);
    let median = errors[errors.len() / 2];
    eprintln!("median error {:.0}%", median * 100.0);
    assert!(median <= 0.30, "median error {:.0}%", median * 100.0);
    for p in &promises {
        assert!(
            p.shown >= p.waited / 2.0,
            "position {} was shown {} s and waited {:.1} s",
            p.position,
            p.shown,
            p.waited
        );
    }
}
