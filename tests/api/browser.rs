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

#[tokio::test(flavor = "multi_thread")]
async fn fans_race_for_the_last_seats_and_an_operator_steers_in_a_real_browser() {
    let root = env!("CARGO_MANIFEST_DIR");
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: scripts/test installs Debian's chromium package"
    );
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

    let shots = format!("{root}/target/browser-e2e");
    let output = tokio::process::Command::new("node")
        .arg("browser.mjs")
        .current_dir(format!("{root}/tests/e2e"))
        .env("ENCORE_URL", app.server.url())
        .env("CONCERT_ID", &concert)
        .env("OPERATOR_EMAIL", &operator.email)
        .env("OPERATOR_PASSWORD", "password-123")
        .env("SHOTS", &shots)
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "browser e2e failed:\n{stdout}\n{stderr}"
    );
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
