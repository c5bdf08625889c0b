//! A scheduled sale: refused before the pre-queue, a pre-queue without places, a draw at opening
//! whose order anyone recomputes from the revealed seed, and late arrivals behind.

use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use diesel_async::RunQueryDsl;
use encore::background::Background;
use encore::config::Rules;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Fan, TestApp, test_rules};

const SCHEDULE: &str = "mutation($c: ID!, $o: DateTime!, $p: DateTime) { scheduleSale(concertId: $c, opensAt: $o, prequeueOpensAt: $p) { opensAt prequeueOpensAt seedCommitment seed } }";
const SALE: &str = "query($c: ID!) { sale(concertId: $c) { seed seedCommitment prequeued drawnAt drawOrder } concert(id: $c) { saleOpensAt } }";
const ENTER: &str = "mutation($c: ID!) { enterQueue(concertId: $c) { id token status position } }";

async fn db_now(app: &TestApp) -> NaiveDateTime {
    let mut conn = app.conn().await;
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Datetime>(
        "UTC_TIMESTAMP(6)",
    ))
    .get_result(&mut conn)
    .await
    .expect("clock")
}

fn rfc3339(t: NaiveDateTime) -> String {
    t.and_utc().to_rfc3339()
}

async fn enter(app: &TestApp, fan: &mut Fan, concert: &str) -> crate::common::Gql {
    let r = app.gql(ENTER, json!({ "c": concert }), &fan.auth()).await;
    if r.is_ok() {
        fan.queue_token = r.body["data"]["enterQueue"]["token"]
            .as_str()
            .map(str::to_owned);
    }
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_sale_opens_with_a_draw_anyone_can_recompute() {
    let rules = Rules {
        queue_active_limit: 3,
        queue_tick: Duration::from_millis(200),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let operator = app.operator().await;
    // Accounts first (hashing passwords is slow on a busy machine), then a schedule whose
    // pre-queue opens in 2 s and the sale 4 s later.
    let mut crowd = Vec::new();
    for _ in 0..8 {
        crowd.push(app.fan().await);
    }
    let now = db_now(&app).await;
    let prequeue_at = now + TimeDelta::seconds(2);
    let opens_at = now + TimeDelta::seconds(6);
    let scheduled = app
        .gql(
            SCHEDULE,
            json!({ "c": concert, "o": rfc3339(opens_at), "p": rfc3339(prequeue_at) }),
            &operator.auth(),
        )
        .await
        .ok()["scheduleSale"]
        .clone();
    let commitment = scheduled["seedCommitment"]
        .as_str()
        .expect("commitment")
        .to_owned();
    assert_eq!(commitment.len(), 64);
    assert_eq!(
        scheduled["seed"],
        Value::Null,
        "the seed stays secret until opening"
    );

    // Before the pre-queue: refused, with the opening time.
    let mut early = app.fan().await;
    let refused = enter(&app, &mut early, &concert).await;
    assert_eq!(refused.code(), "SALE_NOT_OPEN");
    let ext = &refused.body["errors"][0]["extensions"];
    assert!(
        ext["opensAt"].is_string() && ext["saleOpensAt"].is_string(),
        "{ext}"
    );
    assert_eq!(app.count("queue_tickets", "1=1").await, 0);

    // In the pre-queue: no place yet.
    tokio::time::sleep(
        (prequeue_at - db_now(&app).await)
            .to_std()
            .unwrap_or_default(),
    )
    .await;
    let mut fans = Vec::new();
    for mut fan in crowd {
        let ticket = enter(&app, &mut fan, &concert).await.ok()["enterQueue"].clone();
        assert_eq!(ticket["status"], "PREQUEUED", "{ticket}");
        assert_eq!(ticket["position"], 0);
        fans.push((fan, ticket["id"].as_str().expect("id").to_owned()));
    }
    let again = enter(&app, &mut fans[0].0, &concert).await.ok();
    assert_eq!(
        again["enterQueue"]["id"].as_str(),
        Some(fans[0].1.as_str()),
        "one ticket each"
    );

    // At opening the pre-queue is drawn and the seed revealed.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let sale = loop {
        let sale = app
            .gql(SALE, json!({ "c": concert }), &Default::default())
            .await
            .ok();
        if !sale["sale"]["seed"].is_null() {
            break sale;
        }
        assert!(std::time::Instant::now() < deadline, "no draw: {sale}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let seed_hex = sale["sale"]["seed"].as_str().expect("seed");
    let seed: Vec<u8> = (0..seed_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&seed_hex[i..i + 2], 16).expect("hex"))
        .collect();
    let digest: String = Sha256::digest(&seed)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest, commitment, "the seed is the one committed to");
    assert_eq!(sale["sale"]["prequeued"], 8);
    assert!(sale["concert"]["saleOpensAt"].is_string());

    let mut expected: Vec<String> = fans.iter().map(|(_, id)| id.clone()).collect();
    let key = |id: &String| -> String {
        let mut h = Sha256::new();
        h.update(&seed);
        h.update(id.as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    };
    expected.sort_by_key(|id| (key(id), id.clone()));
    let published: Vec<String> = sale["sale"]["drawOrder"]
        .as_array()
        .expect("order")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        published, expected,
        "the published order is the recomputed one"
    );

    // Each fan's place is their drawn place: the first three are admitted, the rest wait in
    // drawn order.
    // In drawn order, so the first three are seen admitted before anyone's position is read.
    let mut by_place: Vec<(i64, &Fan)> = fans
        .iter()
        .map(|(fan, id)| {
            (
                expected.iter().position(|e| e == id).expect("drawn") as i64,
                fan,
            )
        })
        .collect();
    by_place.sort_by_key(|(place, _)| *place);
    for (place, fan) in by_place {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        // The draw places everyone; the first three are let in by the admission step of a
        // tick, which may come after the draw's.
        let settled = |status: &serde_json::Value| {
            status != "PREQUEUED" && (place >= 3 || status == "ACTIVE")
        };
        let ticket = loop {
            let ticket = app.poll(fan).await;
            if settled(&ticket["status"]) || std::time::Instant::now() > deadline {
                break ticket;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if place < 3 {
            assert_eq!(ticket["status"], "ACTIVE", "place {place}");
        } else {
            assert_eq!(ticket["status"], "WAITING", "place {place}");
            assert_eq!(ticket["position"], place - 3, "place {place}");
        }
    }

    // Someone arriving after opening queues behind the whole pre-queue.
    let mut late = app.fan().await;
    let ticket = enter(&app, &mut late, &concert).await.ok()["enterQueue"].clone();
    assert_eq!(ticket["status"], "WAITING");
    assert_eq!(ticket["position"], 5);

    // The script in the README checks the same from outside.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/verify-draw");
    let out = std::process::Command::new(script)
        .args([
            &format!("{}/graphql", app.server.url()),
            &concert,
            &fans[4].1,
        ])
        .output()
        .expect("python3 runs scripts/verify-draw");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("order of 8 pre-queue entries verified"),
        "{stdout}"
    );

    // The schedule is final once the door opened.
    let later = db_now(&app).await + TimeDelta::hours(1);
    let moved = app
        .gql(
            SCHEDULE,
            json!({ "c": concert, "o": rfc3339(later), "p": null }),
            &operator.auth(),
        )
        .await;
    assert_eq!(moved.code(), "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sale_is_scheduled_in_the_future_by_an_operator_before_anyone_entered() {
    let app = TestApp::spawn().await;
    let (concert, _) = app.concert("10.00", 1).await;
    let operator = app.operator().await;
    let fan = app.fan().await;
    let now = db_now(&app).await;
    let past = app
        .gql(
            SCHEDULE,
            json!({ "c": concert, "o": rfc3339(now - TimeDelta::seconds(5)) }),
            &operator.auth(),
        )
        .await;
    assert_eq!(past.code(), "BAD_USER_INPUT");
    let inverted = app
        .gql(
            SCHEDULE,
            json!({ "c": concert, "o": rfc3339(now + TimeDelta::hours(1)), "p": rfc3339(now + TimeDelta::hours(2)) }),
            &operator.auth(),
        )
        .await;
    assert_eq!(inverted.code(), "BAD_USER_INPUT");
    let by_fan = app
        .gql(
            SCHEDULE,
            json!({ "c": concert, "o": rfc3339(now + TimeDelta::hours(1)) }),
            &fan.auth(),
        )
        .await;
    assert_eq!(by_fan.code(), "FORBIDDEN");
    assert_eq!(app.count("sales", "1=1").await, 0);

    // Once someone is in the room, a schedule would come too late.
    app.admitted_fan(&concert).await;
    let late = app
        .gql(
            SCHEDULE,
            json!({ "c": concert, "o": rfc3339(now + TimeDelta::hours(1)) }),
            &operator.auth(),
        )
        .await;
    assert_eq!(late.code(), "BAD_USER_INPUT");
    let none = app
        .gql(SALE, json!({ "c": concert }), &Default::default())
        .await
        .ok();
    assert_eq!(none["sale"], Value::Null);
}
