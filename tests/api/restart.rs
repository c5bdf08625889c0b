//! A database restart under a running instance: the outage is reported quickly and honestly
//! (SERVICE_UNAVAILABLE, HTTP 503, `/health` down), and once the database is back the same
//! instance heals by itself: requests, admission ticker, live feeds.

use std::time::{Duration, Instant};

use encore::background::Background;
use encore::config::{Rules, ServerLimits};
use encore::db::{Database, PoolConfig};
use encore::domain::services::Services;
use encore::startup;
use serde_json::{Value, json};

use crate::common::throwaway_db::ThrowawayMariaDb;
use crate::common::ws::{MODERN, WsClient};
use crate::common::{
    Auth, Client, Fan, JWT_SECRET, assert_invariants, concert_in, test_rules, unique_name,
};

const SEAT_SUB: &str =
    "subscription($c: ID!, $d: Date!) { seatUpdates(concertId: $c, date: $d) { number status } }";
/// Every answer during the outage must come within this.
const OUTAGE_ANSWER_LIMIT: Duration = Duration::from_secs(3);
/// After the database answers again, the instance must serve normally within this.
const HEAL_LIMIT: Duration = Duration::from_secs(5);
const WAIT: Duration = Duration::from_secs(5);

fn init(fan: &Fan) -> Value {
    json!({ "authorization": format!("Bearer {}", fan.token), "queueToken": fan.queue_token })
}

/// One GraphQL POST, with its HTTP status, body and how long the answer took.
async fn post(client: &Client, query: &str, variables: Value, auth: &Auth) -> Answer {
    let started = Instant::now();
    let (status, body) = client
        .send(query, variables, auth)
        .await
        .expect("request with a JSON answer");
    Answer {
        status,
        body,
        took: started.elapsed(),
    }
}

/// One GET, like [`post`].
async fn get(http: &reqwest::Client, url: &str) -> Answer {
    let started = Instant::now();
    let response = http.get(url).send().await.expect("request");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json body");
    Answer {
        status,
        body,
        took: started.elapsed(),
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    took: Duration,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
    }

    fn is_ok(&self) -> bool {
        self.status == 200 && self.body.get("errors").is_none()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_restart_is_reported_then_healed_without_a_restart_of_the_service() {
    let test_started = Instant::now();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();

    let mut db = ThrowawayMariaDb::start().await;
    let url = db.url();
    eprintln!(
        "throwaway MariaDB installed, started and migrated in {:.1?}",
        test_started.elapsed()
    );

    // One slot per room and short turns, so admission after the restart must come from the
    // ticker; short ticks so live feeds and sweeps run often.
    let rules = Rules {
        queue_active_limit: 1,
        queue_active_ttl: Duration::from_secs(2),
        queue_tick: Duration::from_millis(200),
        hold_sweep_interval: Duration::from_millis(500),
        ..test_rules()
    };
    let pool = PoolConfig {
        size: 8,
        wait_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
    };
    // The same steps as `TestApp::instance_with`, on the throwaway server.
    let database = Database::connect(&url, &pool).expect("pool");
    let services = Services::new(database, rules, JWT_SECRET).expect("services");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server = startup::spawn(listener, services, Background::ALL, ServerLimits::default())
        .expect("spawn server");
    let base = server.url();
    let http = reqwest::Client::new();
    let client = Client {
        http: http.clone(),
        url: format!("{base}/graphql"),
    };

    let (concert, dates) = concert_in(&url, "10.00", 1).await;
    let date = dates[0];
    let seat_vars = json!({ "c": concert, "d": date.to_string() });

    // ---- Before the outage: the whole path works.
    let mut buyer = client.sign_up(&unique_name()).await;
    let mut holder = client.sign_up(&unique_name()).await;
    let mut waiter = client.sign_up(&unique_name()).await;
    let charge = "mutation($a: Decimal!, $k: String!) { charge(amount: $a, idempotencyKey: $k) { balance } }";
    client
        .gql(
            charge,
            json!({ "a": "100.00", "k": "restart-top-up" }),
            &buyer.auth(),
        )
        .await
        .ok();
    let ticket = client.enter_queue(&mut buyer, &concert).await;
    assert_eq!(ticket["status"], "ACTIVE", "{ticket}");
    let mut ws = WsClient::connect(&base, MODERN, init(&buyer))
        .await
        .expect("ack");
    ws.subscribe("s", SEAT_SUB, seat_vars.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = client.hold(&buyer, &concert, date, 1).await.ok();
    let paid = client
        .gql(
            "mutation($r: ID!) { pay(reservationId: $r) { reservation { status } } }",
            json!({ "r": held["holdSeat"]["id"] }),
            &buyer.auth(),
        )
        .await
        .ok();
    assert_eq!(paid["pay"]["reservation"]["status"], "PAID");
    // The seat map hears of it (as HELD then SOLD, or only SOLD when both fell in one tick).
    loop {
        let update = ws.next_data("s", WAIT).await.expect("seat 1 update");
        assert_eq!(update["seatUpdates"]["number"], 1, "{update}");
        if update["seatUpdates"]["status"] == "SOLD" {
            break;
        }
        assert_eq!(update["seatUpdates"]["status"], "HELD", "{update}");
    }
    assert_eq!(
        client.poll(&buyer).await["status"],
        "COMPLETED",
        "paying ends the turn"
    );

    // ---- The outage.
    let stopping = Instant::now();
    db.stop().await;
    eprintln!("MariaDB stopped (SIGTERM) in {:.1?}", stopping.elapsed());

    let outage_requests: [(&str, &str, Value, Auth); 3] = [
        ("concerts", "{ concerts { id } }", json!({}), Auth::none()),
        ("me", "{ me { id } }", json!({}), buyer.auth()),
        (
            "charge",
            charge,
            json!({ "a": "5.00", "k": "restart-outage" }),
            buyer.auth(),
        ),
    ];
    let mut slowest = Duration::ZERO;
    // Twice over: the first round meets the pool's connections to the dead server, the second
    // the refused reconnects.
    for round in 1..=2 {
        for (name, query, variables, auth) in &outage_requests {
            let answer = post(&client, query, variables.clone(), auth).await;
            eprintln!(
                "outage round {round}: {name} answered {} {} in {:.0?}",
                answer.status,
                answer.code(),
                answer.took
            );
            assert_eq!(answer.code(), "SERVICE_UNAVAILABLE", "{name}: {answer:?}");
            assert_eq!(answer.status, 503, "{name}: {answer:?}");
            assert!(
                answer.took < OUTAGE_ANSWER_LIMIT,
                "{name} took {:?}",
                answer.took
            );
            slowest = slowest.max(answer.took);
        }
    }
    let health = get(&http, &format!("{base}/health")).await;
    eprintln!(
        "outage: /health answered {} in {:.0?}: {}",
        health.status, health.took, health.body
    );
    assert_eq!(health.status, 503, "{health:?}");
    assert_eq!(health.body["database"], "down", "{health:?}");
    assert!(
        health.took < OUTAGE_ANSWER_LIMIT,
        "/health took {:?}",
        health.took
    );
    slowest = slowest.max(health.took);
    let live = get(&http, &format!("{base}/health/live")).await;
    assert_eq!(live.status, 200, "{live:?}");
    let ready = get(&http, &format!("{base}/health/ready")).await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(
        ready.took < OUTAGE_ANSWER_LIMIT,
        "/health/ready took {:?}",
        ready.took
    );
    slowest = slowest.max(ready.took);
    // Let the outage last several ticks, so the admission ticker, live ticker and hold sweeper
    // all fail a few times over; the instance must keep answering the same way.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = post(&client, "{ concerts { id } }", json!({}), &Auth::none()).await;
    assert_eq!(
        (later.status, later.code()),
        (503, "SERVICE_UNAVAILABLE"),
        "{later:?}"
    );
    assert!(later.took < OUTAGE_ANSWER_LIMIT, "took {:?}", later.took);
    slowest = slowest.max(later.took);

    // ---- The database comes back; the same instance heals by itself.
    let restarting = Instant::now();
    db.start_again().await;
    let restarted_in = restarting.elapsed();
    let back = Instant::now();
    let mut attempts = 0;
    let healed_at = loop {
        attempts += 1;
        let answer = post(&client, "{ concerts { id } }", json!({}), &Auth::none()).await;
        if answer.is_ok() {
            assert_eq!(answer.body["data"]["concerts"][0]["id"], concert.as_str());
            break back.elapsed();
        }
        assert!(
            back.elapsed() < HEAL_LIMIT,
            "not healed {HEAL_LIMIT:?} after the restart ({attempts} attempts); last answer: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let health_up_at = loop {
        let health = get(&http, &format!("{base}/health")).await;
        if health.status == 200 {
            assert_eq!(health.body["database"], "up", "{health:?}");
            let pool = &health.body["pool"];
            for key in ["size", "max", "idle", "waiting"] {
                assert!(pool[key].is_u64(), "pool.{key} missing: {health:?}");
            }
            assert_eq!(pool["max"], 8, "{health:?}");
            eprintln!("after the restart: /health {}", health.body);
            break back.elapsed();
        }
        assert!(
            back.elapsed() < HEAL_LIMIT,
            "/health not up {HEAL_LIMIT:?} after the restart: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ready = get(&http, &format!("{base}/health/ready")).await;
    assert_eq!(ready.status, 200, "{ready:?}");

    // ---- Background work resumed. The live feed first: is the subscription opened before the
    // outage still there? (An ended subscription says so with error/complete; a closed socket
    // ends `next` at once.)
    let probe = Instant::now();
    let pending = ws.next(Duration::from_millis(300)).await;
    let old_socket_alive = match &pending {
        Some(msg) => {
            assert!(
                !matches!(msg["type"].as_str(), Some("error" | "complete")),
                "the seat subscription ended during the outage: {msg}"
            );
            panic!("unexpected seat update after the restart: {msg}");
        }
        None => probe.elapsed() >= Duration::from_millis(250),
    };
    let ticket = client.enter_queue(&mut holder, &concert).await;
    assert_eq!(ticket["status"], "ACTIVE", "{ticket}");
    let ticket = client.enter_queue(&mut waiter, &concert).await;
    assert_eq!(ticket["status"], "WAITING", "{ticket}");
    if !old_socket_alive {
        ws = WsClient::connect(&base, MODERN, init(&holder))
            .await
            .expect("ack");
        ws.subscribe("s", SEAT_SUB, seat_vars.clone()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let hold_sent = Instant::now();
    client.hold(&holder, &concert, date, 2).await.ok();
    let update = ws
        .next_data("s", WAIT)
        .await
        .expect("a seat update after the restart");
    let seat_update_in = hold_sent.elapsed();
    assert_eq!(
        update["seatUpdates"],
        json!({ "number": 2, "status": "HELD" })
    );

    // Admission: the holder's 2 s turn lapses and the ticker admits the waiting fan.
    let waiting_since = Instant::now();
    let admitted_in = loop {
        let ticket = client.poll(&waiter).await;
        if ticket["status"] == "ACTIVE" {
            break waiting_since.elapsed();
        }
        assert_eq!(ticket["status"], "WAITING", "{ticket}");
        assert!(
            waiting_since.elapsed() < Duration::from_secs(10),
            "the ticker did not admit the waiting fan: {ticket}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(client.poll(&holder).await["status"], "EXPIRED");

    assert_invariants(&url).await;
    eprintln!(
        "outage answers within {slowest:.0?} (slowest of 9); database restarted in {restarted_in:.1?}; \
         healed {healed_at:.1?} after the restart ({attempts} attempts), /health up after \
         {health_up_at:.1?}; seat subscription from before the outage {}; HELD update {seat_update_in:.0?} \
         after the hold; waiting fan admitted by the ticker {admitted_in:.1?} after joining; \
         whole test {:.1?}",
        if old_socket_alive {
            "still open and delivering"
        } else {
            "was closed, a new one was opened"
        },
        test_started.elapsed()
    );
    server.stop().await;
}
