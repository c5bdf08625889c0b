//! The reference web app and GraphiQL in a real browser: `tests/e2e/browser.mjs` drives Debian's
//! Chromium (headless, playwright-core) against a real server with every request off the machine
//! refused. Screenshots of each step land in `target/browser-e2e/`. `scripts/test` installs
//! Chromium (apt), the locked Node packages and builds the app.

use std::time::Duration;

use chrono::{Days, Utc};
use encore::background::Background;
use encore::config::Rules;
use serde_json::json;

use crate::common::{TestApp, test_rules};

/// Where each step's screenshot lands (README's screenshots are copied from here).
fn shots_dir() -> String {
    format!("{}/target/browser-e2e", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `tests/e2e/<script>` against `app` with the operator's password and `env`, and returns
/// what it printed; a failed run fails the test with everything it printed.
async fn run_node(app: &TestApp, script: &str, env: &[(&str, &str)]) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: scripts/test installs Debian's chromium package"
    );
    let output = tokio::process::Command::new("node")
        .arg(script)
        .current_dir(format!("{root}/tests/e2e"))
        .env("ENCORE_URL", app.server.url())
        .env("OPERATOR_PASSWORD", "password-123")
        .env("SHOTS", shots_dir())
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "browser e2e {script} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// 12 seats a date in rows of 4 from the stage: Front 1-4, Back 5-12.
async fn big_hall(app: &TestApp, operator: &crate::common::Fan) -> String {
    let date = (Utc::now().date_naive() + Days::new(30)).to_string();
    app.concert_on_sale(
        operator,
        json!({ "title": "Big Hall", "venue": "Riverside", "dates": [date], "seatsPerDate": 12, "seatsPerRow": 4, "priceTiers": [
            { "name": "Front", "fromSeat": 1, "toSeat": 4, "price": "90.00" },
            { "name": "Back", "fromSeat": 5, "toSeat": 12, "price": "45.00" }
        ] }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn fans_race_for_the_last_seats_and_an_operator_steers_in_a_real_browser() {
    let rules = Rules {
        queue_tick: Duration::from_millis(200),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let operator = app.operator().await;
    let date = (Utc::now().date_naive() + Days::new(30)).to_string();
    let concert = app
        .concert_on_sale(
            &operator,
            json!({ "title": "Last Seats", "venue": "Small Hall", "dates": [date], "seatsPerDate": 3, "priceTiers": [
                { "name": "Front", "fromSeat": 1, "toSeat": 1, "price": "80.00" },
                { "name": "Back", "fromSeat": 2, "toSeat": 3, "price": "40.00" }
            ] }),
        )
        .await;
    // The room asks entrants for a proof of work: the app solves it in a web worker.
    {
        use diesel_async::SimpleAsyncConnection;
        app.conn()
            .await
            .batch_execute(&format!(
                "UPDATE queue_rooms SET pow_difficulty = 10 WHERE concert_id = '{concert}'"
            ))
            .await
            .expect("ask for proof of work");
    }

    let stdout = run_node(
        &app,
        "browser.mjs",
        &[
            ("CONCERT_ID", &concert),
            ("OPERATOR_EMAIL", &operator.email),
        ],
    )
    .await;
    let shots = shots_dir();
    assert!(stdout.contains("'s pair held live"), "{stdout}");
    assert!(
        stdout.contains("the winner paid the order of two and sees both tickets"),
        "{stdout}"
    );
    assert!(
        stdout.contains("a waitlisted fan was offered a refunded seat live and paid it"),
        "{stdout}"
    );
    assert!(
        stdout.contains("GraphiQL ran { concerts { title } } offline"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the winner refunded a seat from My tickets after a confirmation"),
        "{stdout}"
    );
    // The winner's order of two, the last seat, the waitlist offer.
    assert_eq!(app.count("payments", "1=1").await, 3);
    assert_eq!(
        app.count("orders", "source = 'WAITLIST' AND status = 'PAID'")
            .await,
        1
    );
    // The four fans entered with a solved proof of work.
    assert_eq!(app.count("queue_challenges_used", "1=1").await, 4);
    crate::common::assert_invariants(&app.db.url).await;
    assert!(
        stdout.contains("a fan without websockets waited through the pause by polling"),
        "{stdout}"
    );
    for shot in [
        "graphiql",
        "seats-held-live",
        "my-tickets",
        "operator-dashboard",
        "waitlist-waiting",
        "waitlist-offer",
    ] {
        assert!(
            std::path::Path::new(&format!("{shots}/{shot}.png")).exists(),
            "{shot}.png"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_venue_map_a_keyboard_a_paused_line_and_a_console_pass_in_a_real_browser() {
    let rules = Rules {
        queue_tick: Duration::from_millis(200),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let operator = app.operator().await;
    let concert = big_hall(&app, &operator).await;
    let stdout = run_node(
        &app,
        "venue.mjs",
        &[
            ("SCENARIO", "venue"),
            ("CONCERT_ID", &concert),
            ("OPERATOR_EMAIL", &operator.email),
        ],
    )
    .await;
    for step in [
        "the tier form names a gap as it is typed",
        "an operator created a two-tier concert with the form",
        "a fan bought seat 6 with the keyboard only",
        "the map still showed seat 6 taken, by polling",
        "a seat taken by another fan greyed out as soon as the hold was refused",
        "a fan saw the paused line as a state",
        "the operator found a fan's ticket by e-mail and refunded it with confirmation",
        "a live hold was released from My tickets and came back on the map",
        "axe-core found no serious or critical violation on 10 pages",
    ] {
        assert!(stdout.contains(step), "{step}: {stdout}");
    }
    // The double click made one concert, with both tiers, both dates and a pre-queue.
    assert_eq!(app.count("concerts", "title = 'Console Made'").await, 1);
    assert_eq!(
        app.count(
            "price_tiers",
            "concert_id = (SELECT id FROM concerts WHERE title = 'Console Made')"
        )
        .await,
        2
    );
    assert_eq!(
        app.count(
            "sales",
            "prequeue_opens_at < opens_at AND concert_id = (SELECT id FROM concerts WHERE title = 'Console Made')"
        )
        .await,
        1
    );
    // Seat 6: paid by keyboard, refunded by the operator; seat 8 held by the taker, then released.
    assert_eq!(
        app.count("reservations", "seat_number = 6 AND status = 'REFUNDED'")
            .await,
        1
    );
    assert_eq!(
        app.count("reservations", "seat_number = 8 AND status = 'CANCELLED'")
            .await,
        1
    );
    assert_eq!(app.count("orders", "status = 'RELEASED'").await, 1);
    assert_eq!(app.count("reservations", "seat_number = 7").await, 0);
    crate::common::assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_turn_that_ends_under_a_valid_hold_still_pays_in_a_real_browser() {
    let rules = Rules {
        queue_tick: Duration::from_millis(200),
        queue_active_ttl: Duration::from_secs(8),
        hold_ttl: Duration::from_secs(120),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let operator = app.operator().await;
    let concert = big_hall(&app, &operator).await;
    // A sale that opens in 20 s: the fan waits on its countdown and is put in line by the app.
    let date = (Utc::now().date_naive() + Days::new(60)).to_string();
    let soon = app
        .gql(
            "mutation($i: CreateConcertInput!) { createConcert(input: $i) { id } }",
            json!({ "i": { "title": "Soon", "venue": "Riverside", "dates": [date], "seatsPerDate": 4, "price": "30.00" } }),
            &operator.auth(),
        )
        .await
        .ok()["createConcert"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let opens = Utc::now() + chrono::TimeDelta::seconds(20);
    app.gql(
        "mutation($c: ID!, $o: DateTime!) { scheduleSale(concertId: $c, opensAt: $o) { opensAt } }",
        json!({ "c": soon, "o": opens.to_rfc3339() }),
        &operator.auth(),
    )
    .await
    .ok();
    let stdout = run_node(
        &app,
        "venue.mjs",
        &[
            ("SCENARIO", "turn"),
            ("CONCERT_ID", &concert),
            ("SOON_ID", &soon),
        ],
    )
    .await;
    assert!(
        stdout.contains(
            "before the sale a countdown showed, and the app joined the line when it opened"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("after the turn ended and a reload, the held seat was paid"),
        "{stdout}"
    );
    assert!(
        stdout.contains("after a turn ended unused, joining again showed the new turn live"),
        "{stdout}"
    );
    assert_eq!(
        app.count("reservations", "seat_number = 1 AND status = 'PAID'")
            .await,
        1
    );
    crate::common::assert_invariants(&app.db.url).await;
}
