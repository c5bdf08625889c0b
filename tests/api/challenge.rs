//! Proof of work for the waiting room: without one where the room asks for it, with a wrong,
//! reused, foreign or stale one, nobody enters; with a right one, the fan does.

use serde_json::{Value, json};

use encore::config::Rules;
use encore::domain::queue::challenge::solve;

use crate::common::{Fan, TestApp, test_rules};

const CHALLENGE: &str =
    "query($c: ID!) { queueChallenge(concertId: $c) { nonce difficulty algorithm expiresAt } }";
const ENTER: &str = "mutation($c: ID!, $a: QueueChallengeAnswer) { enterQueue(concertId: $c, challenge: $a) { status token } }";

async fn challenge(app: &TestApp, fan: &Fan, concert: &str) -> Value {
    app.gql(CHALLENGE, json!({ "c": concert }), &fan.auth())
        .await
        .ok()["queueChallenge"]
        .clone()
}

async fn enter(app: &TestApp, fan: &Fan, concert: &str, answer: Value) -> crate::common::Gql {
    app.gql(ENTER, json!({ "c": concert, "a": answer }), &fan.auth())
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_solved_unused_challenge_of_ones_own_lets_a_fan_in() {
    let rules = Rules {
        queue_pow_difficulty: 8,
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, encore::background::Background::NONE).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let alice = app.fan().await;
    let bob = app.fan().await;

    let none = enter(&app, &alice, &concert, Value::Null).await;
    assert_eq!(none.code(), "CHALLENGE_REQUIRED");

    let c = challenge(&app, &alice, &concert).await;
    assert_eq!(c["difficulty"], 8);
    assert_eq!(c["algorithm"], "sha256-leading-zero-bits");
    let nonce = c["nonce"].as_str().expect("nonce").to_owned();
    let solution = solve(&nonce, 8);
    let wrong = (0u64..)
        .map(|n| format!("w{n}"))
        .find(|s| !encore::domain::queue::challenge::solves(&nonce, s, 8))
        .expect("a non-solution");
    let answer = |solution: &str| json!({ "nonce": nonce, "solution": solution });

    assert_eq!(
        enter(&app, &alice, &concert, answer(&wrong)).await.code(),
        "CHALLENGE_FAILED"
    );
    assert_eq!(
        enter(&app, &bob, &concert, answer(&solution)).await.code(),
        "CHALLENGE_FAILED",
        "Alice's nonce is Alice's"
    );
    assert_eq!(
        app.count("queue_tickets", "1=1").await,
        0,
        "refusals wrote nothing"
    );

    let ticket = enter(&app, &alice, &concert, answer(&solution)).await.ok();
    assert_eq!(ticket["enterQueue"]["status"], "ACTIVE");
    // A refresh returns the live ticket without new work.
    let again = enter(&app, &alice, &concert, Value::Null).await.ok();
    assert_eq!(again["enterQueue"]["token"], ticket["enterQueue"]["token"]);

    // Once her turn is over, the same solution does not let her in again.
    app.time_passes(std::time::Duration::from_secs(3600)).await;
    let reused = enter(&app, &alice, &concert, answer(&solution)).await;
    assert_eq!(reused.code(), "CHALLENGE_FAILED");
    assert!(reused.message().contains("used"), "{}", reused.message());
}

#[tokio::test(flavor = "multi_thread")]
async fn raising_a_rooms_difficulty_during_a_sale_makes_older_challenges_stale() {
    let rules = Rules {
        queue_pow_difficulty: 4,
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, encore::background::Background::NONE).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let fan = app.fan().await;
    let old = challenge(&app, &fan, &concert).await;
    let nonce = old["nonce"].as_str().expect("nonce").to_owned();
    let solved = json!({ "nonce": nonce, "solution": solve(&nonce, 4) });

    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.conn().await;
        diesel::sql_query(format!(
            "UPDATE queue_rooms SET pow_difficulty = 10 WHERE concert_id = '{concert}'"
        ))
        .execute(&mut conn)
        .await
        .expect("raise");
    }
    let stale = enter(&app, &fan, &concert, solved).await;
    assert_eq!(stale.code(), "CHALLENGE_FAILED");
    let fresh = challenge(&app, &fan, &concert).await;
    assert_eq!(fresh["difficulty"], 10);
    let nonce = fresh["nonce"].as_str().expect("nonce").to_owned();
    let ok = enter(
        &app,
        &fan,
        &concert,
        json!({ "nonce": nonce, "solution": solve(&nonce, 10) }),
    )
    .await;
    ok.ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_browser_helper_solves_a_real_challenge() {
    let e2e = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e");
    let rules = Rules {
        queue_pow_difficulty: 12,
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, encore::background::Background::NONE).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let run = tokio::process::Command::new("node")
        .arg("queue-challenge.mjs")
        .current_dir(e2e)
        .env("ENCORE_URL", app.server.url())
        .env("CONCERT_ID", &concert)
        .output()
        .await
        .expect("node runs");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let result: Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(result["difficulty"], 12);
    assert_eq!(result["status"], "ACTIVE");
    eprintln!("browser helper: {result}");
}
