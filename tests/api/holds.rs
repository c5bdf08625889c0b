//! Holds: one holder per seat, deadlines on the database clock, release, limits.

use std::time::Duration;

use encore::background::Background;
use encore::config::Rules;
use encore::domain::orders::release;
use serde_json::json;

use crate::common::{TestApp, eventually, test_rules};

const MY_RESERVATIONS: &str = "{ myReservations { id status seatNumber } }";
const RELEASE: &str = "mutation($r: ID!) { releaseSeat(reservationId: $r) { id status } }";

#[tokio::test(flavor = "multi_thread")]
async fn a_held_seat_shows_held_and_cannot_be_held_by_another_fan() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("50000.00", 1).await;
    let alice = app.admitted_fan(&concert).await;
    let bob = app.admitted_fan(&concert).await;

    let hold = app.hold(&alice, &concert, dates[0], 7).await.ok();
    assert_eq!(hold["holdSeat"]["status"], "HELD");
    assert_eq!(hold["holdSeat"]["price"], "50000.00");
    assert_eq!(app.seat_status(&bob, &concert, dates[0], 7).await, "HELD");

    let r = app.hold(&bob, &concert, dates[0], 7).await;
    assert_eq!(r.code(), "SEAT_UNAVAILABLE");
    let again = app.hold(&alice, &concert, dates[0], 7).await;
    assert_eq!(
        again.code(),
        "SEAT_UNAVAILABLE",
        "holding twice is not a second hold"
    );
    assert_eq!(app.count("reservations", "1=1").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lapsed_hold_frees_the_seat_before_any_sweeper_runs() {
    let rules = Rules {
        hold_ttl: Duration::from_secs(300),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, dates) = app.concert("50000.00", 1).await;
    let alice = app.admitted_fan(&concert).await;
    let bob = app.admitted_fan(&concert).await;
    let hold = app.hold(&alice, &concert, dates[0], 3).await.ok();
    let held_until: chrono::DateTime<chrono::Utc> = hold["holdSeat"]["heldUntil"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("heldUntil");
    let ttl = (held_until - chrono::Utc::now()).num_seconds();
    assert!((290..=300).contains(&ttl), "held for {ttl} s, not HOLD_TTL");

    app.time_passes(Duration::from_secs(299)).await;
    assert_eq!(
        app.seat_status(&bob, &concert, dates[0], 3).await,
        "HELD",
        "a second before the deadline the hold stands"
    );
    app.time_passes(Duration::from_secs(2)).await;
    assert_eq!(
        app.seat_status(&bob, &concert, dates[0], 3).await,
        "AVAILABLE"
    );
    let mine = app
        .gql(MY_RESERVATIONS, json!({}), &alice.auth())
        .await
        .ok();
    assert_eq!(mine["myReservations"][0]["status"], "EXPIRED");

    let taken = app.hold(&bob, &concert, dates[0], 3).await.ok();
    assert_eq!(taken["holdSeat"]["status"], "HELD");
    // History stays: Alice's lapsed hold is still there, marked EXPIRED in storage too.
    assert_eq!(app.count("reservations", "status = 'EXPIRED'").await, 1);
    assert_eq!(app.count("reservations", "status = 'HELD'").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweeper_makes_stored_rows_say_what_queries_compute() {
    let rules = Rules {
        hold_ttl: Duration::from_secs(60),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let alice = app.admitted_fan(&concert).await;
    for seat in [1, 2] {
        app.hold(&alice, &concert, dates[0], seat).await.ok();
    }
    app.time_passes(Duration::from_secs(61)).await;
    assert_eq!(
        app.count("seats", "status = 'HELD'").await,
        2,
        "nothing swept yet"
    );

    let (seats, reservations) = release::sweep_expired_holds(app.services(), 1000)
        .await
        .expect("sweep");
    assert_eq!((seats, reservations), (2, 2));
    assert_eq!(app.count("seats", "status = 'HELD'").await, 0);
    assert_eq!(app.count("reservations", "status = 'EXPIRED'").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_background_sweeper_runs_on_its_own() {
    let rules = Rules {
        hold_ttl: Duration::from_secs(60),
        hold_sweep_interval: Duration::from_millis(200),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let alice = app.admitted_fan(&concert).await;
    app.hold(&alice, &concert, dates[0], 1).await.ok();
    app.time_passes(Duration::from_secs(61)).await;
    eventually(
        Duration::from_secs(10),
        "the sweeper expires the hold",
        || async { app.count("reservations", "status = 'EXPIRED'").await == 1 },
    )
    .await;
    assert_eq!(app.count("seats", "status = 'AVAILABLE'").await, 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_holder_releases_a_seat_and_others_cannot() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let alice = app.admitted_fan(&concert).await;
    let bob = app.admitted_fan(&concert).await;
    let hold = app.hold(&alice, &concert, dates[0], 9).await.ok();
    let id = hold["holdSeat"]["id"].as_str().expect("id").to_owned();

    assert_eq!(
        app.gql(RELEASE, json!({ "r": id }), &bob.auth())
            .await
            .code(),
        "FORBIDDEN"
    );
    let released = app
        .gql(RELEASE, json!({ "r": id }), &alice.auth())
        .await
        .ok();
    assert_eq!(released["releaseSeat"]["status"], "CANCELLED");
    assert_eq!(
        app.seat_status(&bob, &concert, dates[0], 9).await,
        "AVAILABLE"
    );
    let twice = app
        .gql(RELEASE, json!({ "r": id }), &alice.auth())
        .await
        .ok();
    assert_eq!(
        twice["releaseSeat"]["status"], "CANCELLED",
        "a retried release is harmless"
    );

    app.hold(&bob, &concert, dates[0], 9).await.ok();
    let unknown = app
        .gql(
            RELEASE,
            json!({ "r": uuid::Uuid::now_v7().to_string() }),
            &alice.auth(),
        )
        .await;
    assert_eq!(unknown.code(), "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread")]
async fn releasing_a_lapsed_hold_says_it_expired() {
    let rules = Rules {
        hold_ttl: Duration::from_secs(60),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let alice = app.admitted_fan(&concert).await;
    let hold = app.hold(&alice, &concert, dates[0], 1).await.ok();
    app.time_passes(Duration::from_secs(61)).await;
    let r = app
        .gql(
            RELEASE,
            json!({ "r": hold["holdSeat"]["id"] }),
            &alice.auth(),
        )
        .await;
    assert_eq!(r.code(), "HOLD_EXPIRED");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_may_hold_only_a_few_seats_per_date() {
    let rules = Rules {
        max_holds_per_date: 2,
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, dates) = app.concert("10.00", 2).await;
    let alice = app.admitted_fan(&concert).await;
    app.hold(&alice, &concert, dates[0], 1).await.ok();
    app.hold(&alice, &concert, dates[0], 2).await.ok();
    let third = app.hold(&alice, &concert, dates[0], 3).await;
    assert_eq!(third.code(), "HOLD_LIMIT_REACHED");
    app.hold(&alice, &concert, dates[1], 3).await.ok();
    assert_eq!(app.count("reservations", "1=1").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn holding_needs_a_valid_seat_a_date_of_the_concert_and_an_active_turn() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let alice = app.admitted_fan(&concert).await;
    for seat in [0, 51, -3] {
        assert_eq!(
            app.hold(&alice, &concert, dates[0], seat).await.code(),
            "BAD_USER_INPUT"
        );
    }
    let not_a_date = dates[0] + chrono::Days::new(1);
    assert_eq!(
        app.hold(&alice, &concert, not_a_date, 1).await.code(),
        "NOT_FOUND"
    );

    let mut outsider = app.fan().await;
    assert_eq!(
        app.hold(&outsider, &concert, dates[0], 1).await.code(),
        "NOT_ADMITTED"
    );
    outsider.queue_token = alice.queue_token.clone();
    assert_eq!(
        app.hold(&outsider, &concert, dates[0], 1).await.code(),
        "FORBIDDEN"
    );
    assert_eq!(app.count("reservations", "1=1").await, 0);
    assert_eq!(app.count("seats", "status <> 'AVAILABLE'").await, 0);
}
