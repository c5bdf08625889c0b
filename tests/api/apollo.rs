//! The Apollo Client end-to-end test: `tests/e2e/booking-flow.mjs` (Node, @apollo/client +
//! graphql-ws) runs the whole booking flow against a real server, as a single-page app would,
//! then an operator's console watches, pauses and resumes the room and refunds the ticket.
//! `scripts/test` installs its locked dependencies (`npm ci`).

use std::time::Duration;

use encore::background::Background;
use encore::config::Rules;

use crate::common::{TestApp, test_rules};

#[tokio::test(flavor = "multi_thread")]
async fn an_apollo_client_waits_for_its_turn_holds_pays_and_sees_its_seat_sold() {
    let e2e = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e");
    assert!(
        std::path::Path::new(e2e)
            .join("node_modules/@apollo/client")
            .exists(),
        "tests/e2e has no node_modules: run scripts/test (it runs `npm ci` there)"
    );
    // One slot: the Apollo fan queues behind someone and must wait for ACTIVE. The fan ahead
    // frees the slot by buying a seat a second later. (Turns keep their normal length: a short
    // one would also rush the Apollo fan's own hold and payment on a busy machine.)
    let rules = Rules {
        queue_active_limit: 1,
        queue_tick: Duration::from_millis(250),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let (concert, dates) = app.concert("120.00", 1).await;
    let operator = app.operator().await;
    let ahead = app.admitted_fan(&concert).await;
    app.charge(&ahead, "120.00").await.ok();
    let ahead_hold = app.hold(&ahead, &concert, dates[0], 1).await.ok();
    let ahead_reservation = ahead_hold["holdSeat"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let flow = tokio::process::Command::new("node")
        .arg("booking-flow.mjs")
        .current_dir(e2e)
        .env("ENCORE_URL", app.server.url())
        .env("CONCERT_ID", &concert)
        .env("CONCERT_DATE", dates[0].to_string())
        .env("SEAT", "17")
        .env("OPERATOR_TOKEN", &operator.token)
        .output();
    // The fan ahead buys once the Apollo fan is in line behind them (not after a fixed delay:
    // on a loaded machine Node may take longer than that to start).
    let ahead_buys = async {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while app.count("queue_tickets", "status = 'WAITING'").await == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the Apollo fan never queued"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.pay(&ahead, &ahead_reservation).await.ok();
    };
    let (output, ()) = tokio::join!(flow, ahead_buys);
    let output = output.expect("run node (install Node.js: scripts/test does)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "e2e failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("admitted after WAITING@0 -> ACTIVE@0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("17:HELD") && stdout.contains("17:SOLD"),
        "{stdout}"
    );
    assert_eq!(app.count("payments", "1=1").await, 2);
    assert!(
        stdout.contains("operator paused (true) and resumed (false)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("operator refunded: REFUNDED, fan's ledger REFUND 120.00"),
        "{stdout}"
    );
    assert_eq!(app.count("queue_control_changes", "1=1").await, 2);
}
