//! The service under the traffic the real world sends: clients that hang up mid-request while
//! statements are in flight, a pool with one connection, an exhausted pool, requests past their
//! deadline, websockets that never initialise, slow clients, and too many sockets. After each,
//! the instance must answer normally and every invariant must hold in SQL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use encore::background::Background;
use encore::config::{Rules, ServerLimits};
use encore::db::PoolConfig;
use futures::StreamExt;
use futures::future::join_all;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::ws::{MODERN, WsClient};
use crate::common::{Auth, Fan, RowLocks, TestApp, assert_invariants, test_pool, test_rules};

/// Transactions on this test's database currently waiting for a row lock (other tests share the
/// server).
async fn lock_waits(app: &TestApp) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.conn().await;
    diesel_async::RunQueryDsl::get_result::<N>(
        diesel::sql_query(
            "SELECT COUNT(*) AS n FROM information_schema.innodb_trx t \
             JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id \
             WHERE t.trx_state = 'LOCK WAIT' AND p.db = DATABASE()",
        ),
        &mut conn,
    )
    .await
    .expect("innodb_trx")
    .n
}

/// One POST /graphql written on a raw socket, which is closed `after` later, response or not.
async fn send_and_hang_up(addr: SocketAddr, body: &Value, auth: &Auth, after: Duration) {
    let Ok(mut socket) = TcpStream::connect(addr).await else {
        return;
    };
    let body = body.to_string();
    let mut request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(bearer) = &auth.bearer {
        request.push_str(&format!("Authorization: Bearer {bearer}\r\n"));
    }
    if let Some(token) = &auth.queue_token {
        request.push_str(&format!("Queue-Token: {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    if socket.write_all(request.as_bytes()).await.is_err() {
        return;
    }
    tokio::time::sleep(after).await;
    // Dropping the socket closes it: the server sees the client gone mid-request.
}

/// What an attacker can ask: every kind of operation, with the variables it needs.
fn attacks(fan: &Fan, concert: &str, date: &str, seat: i32, reservation: &str) -> Vec<Value> {
    let me = "me { id username email balance }";
    vec![
        json!({ "query": format!("{{ a: {me} b: {me} c: {me} d: {me} }}") }),
        json!({ "query": "{ wallet { balance transactions(first: 100) { id amount balanceAfter } } }" }),
        json!({ "query": "{ myReservations { id seatNumber status } }" }),
        json!({ "query": "{ queueTicket { token status position } }" }),
        json!({ "query": "query($c: ID!, $d: Date!) { seats(concertId: $c, date: $d) { number status } }",
                "variables": { "c": concert, "d": date } }),
        json!({ "query": "query($c: ID!) { availableDates(concertId: $c) }", "variables": { "c": concert } }),
        json!({ "query": "{ concerts { id title dates } }" }),
        json!({ "query": "{ myOrders { nodes { id refundableUntil seats { reservationId } } } }" }),
        json!({ "query": "query($c: ID!) { ticketSearch(concertId: $c, email: \"fans\") { reservationId fanEmail } }",
                "variables": { "c": concert } }),
        json!({ "query": "mutation($k: String!) { charge(amount: \"1.00\", idempotencyKey: $k) { balance } }",
                "variables": { "k": uuid::Uuid::new_v4().to_string() } }),
        json!({ "query": "mutation($c: ID!, $d: Date!, $s: Int!) { holdSeat(concertId: $c, date: $d, seatNumber: $s) { id } }",
                "variables": { "c": concert, "d": date, "s": seat } }),
        json!({ "query": "mutation($r: ID!) { pay(reservationId: $r) { id } }", "variables": { "r": reservation } }),
        json!({ "query": "mutation($r: ID!) { releaseSeat(reservationId: $r) { id } }", "variables": { "r": reservation } }),
        json!({ "query": "mutation($c: ID!) { enterQueue(concertId: $c) { token } }", "variables": { "c": concert } }),
        json!({ "query": "mutation($e: String!) { signIn(email: $e, password: \"password-123\") { token } }",
                "variables": { "e": fan.email } }),
    ]
}

/// Whether a response's `data` is what the asker, and only the asker, may see.
type Check<'a> = Box<dyn Fn(&Value) -> bool + 'a>;

/// A victim's reads, each checked against what only that victim may see.
async fn victim_round(
    client: &crate::common::Client,
    fan: &Fan,
    balance: &str,
    reservation: &str,
    round: usize,
) -> Result<(), String> {
    let auth = fan.auth();
    let (query, check): (&str, Check) = match round % 4 {
        0 => (
            "{ me { id username email balance } }",
            Box::new(|d| {
                d["me"]["id"] == fan.user_id.as_str()
                    && d["me"]["username"] == fan.username.as_str()
                    && d["me"]["email"] == fan.email.as_str()
                    && d["me"]["balance"] == balance
            }),
        ),
        1 => (
            "{ wallet { balance transactions(first: 5) { amount } } }",
            Box::new(|d| {
                d["wallet"]["balance"] == balance
                    && d["wallet"]["transactions"][0]["amount"] == balance
            }),
        ),
        2 => (
            "{ myReservations { id } }",
            Box::new(|d| {
                d["myReservations"].as_array().is_some_and(|r| r.len() == 1)
                    && d["myReservations"][0]["id"] == reservation
            }),
        ),
        _ => (
            "{ queueTicket { token } }",
            Box::new(|d| d["queueTicket"]["token"].as_str() == fan.queue_token.as_deref()),
        ),
    };
    let r = client.gql(query, json!({}), &auth).await;
    if !r.is_ok() {
        return Err(format!("{query} failed: {}", r.body));
    }
    let data = r.body["data"].clone();
    if check(&data) {
        Ok(())
    } else {
        Err(format!("{} saw someone else's data: {data}", fan.username))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_aborted_requests_never_hands_one_fan_another_fans_data() {
    // A small pool, so every connection is reused by many callers during the storm.
    let rules = Rules {
        queue_tick: Duration::from_millis(200),
        hold_sweep_interval: Duration::from_millis(500),
        ..test_rules()
    };
    let app = TestApp::spawn_custom(
        rules,
        Background::ALL,
        &test_pool(4),
        ServerLimits::default(),
    )
    .await;
    let client = app.client();
    let (concert, dates) = app.concert("10.00", 2).await;
    let victim_date = dates[0];
    let attack_date = dates[1].to_string();

    // Victims: each with a balance, a hold and a ticket that are theirs alone.
    let mut victims = Vec::new();
    for i in 0..6 {
        let mut fan = app.fan().await;
        let balance = format!("{}.00", 100 + i);
        app.charge(&fan, &balance).await.ok();
        app.enter_queue(&mut fan, &concert).await;
        let held = app.hold(&fan, &concert, victim_date, i + 1).await.ok();
        let reservation = held["holdSeat"]["id"].as_str().expect("hold").to_owned();
        // The hold is paid from the balance only at the end, so the balance stays as set.
        victims.push((fan, balance, reservation));
    }
    // Attackers: some with rows locked, so their statements wait mid-flight when they hang up.
    let mut attackers = Vec::new();
    for i in 0..6 {
        let mut fan = app.fan().await;
        app.charge(&fan, "500.00").await.ok();
        app.enter_queue(&mut fan, &concert).await;
        let held = app.hold(&fan, &concert, dates[1], 40 + i).await.ok();
        let reservation = held["holdSeat"]["id"].as_str().expect("hold").to_owned();
        attackers.push((fan, reservation));
    }
    let locked: Vec<&str> = attackers[..3]
        .iter()
        .map(|(f, _)| f.user_id.as_str())
        .collect();
    let locks = RowLocks::hold(&app.db.url, &locked).await;

    let storm = Duration::from_secs(4);
    let started = Instant::now();
    let addr = app.server.addr;
    let sent = Arc::new(AtomicUsize::new(0));
    let attackers = Arc::new(attackers);
    let http_storm = (0..12).map(|worker| {
        let attackers = Arc::clone(&attackers);
        let sent = Arc::clone(&sent);
        let (concert, attack_date) = (concert.clone(), attack_date.clone());
        async move {
            let mut n = worker;
            while started.elapsed() < storm {
                let (fan, reservation) = &attackers[n % attackers.len()];
                let seat = 1 + (n % 30) as i32;
                let bodies = attacks(fan, &concert, &attack_date, seat, reservation);
                let body = &bodies[n % bodies.len()];
                let after = Duration::from_micros(rand::random_range(0..3000));
                send_and_hang_up(addr, body, &fan.auth(), after).await;
                sent.fetch_add(1, Ordering::Relaxed);
                n += 7;
            }
        }
    });
    let ws_storm = (0..3).map(|worker| {
        let attackers = Arc::clone(&attackers);
        let (url, concert) = (app.server.url(), concert.clone());
        let date = dates[1].to_string();
        async move {
            let mut n = worker;
            while started.elapsed() < storm {
                let (fan, _) = &attackers[n % attackers.len()];
                let payload = json!({
                    "authorization": format!("Bearer {}", fan.token),
                    "queueToken": fan.queue_token,
                });
                if let Ok(mut ws) = WsClient::connect(&url, MODERN, payload).await {
                    ws.subscribe("t", "subscription { queueTicket { status position } }", json!({}))
                        .await;
                    ws.subscribe(
                        "s",
                        "subscription($c: ID!, $d: Date!) { seatUpdates(concertId: $c, date: $d) { number status } }",
                        json!({ "c": concert, "d": date }),
                    )
                    .await;
                    let _ = ws
                        .next(Duration::from_micros(rand::random_range(0..5000)))
                        .await;
                    // Dropped here: the socket closes with subscriptions in flight.
                }
                n += 3;
            }
        }
    });
    let leaks = Arc::new(Mutex::new(Vec::<String>::new()));
    let checked = Arc::new(AtomicUsize::new(0));
    let bystanders = victims.iter().map(|(fan, balance, reservation)| {
        let (client, leaks, checked) = (client.clone(), Arc::clone(&leaks), Arc::clone(&checked));
        async move {
            let mut round = 0;
            while started.elapsed() < storm {
                if let Err(problem) = victim_round(&client, fan, balance, reservation, round).await
                {
                    leaks.lock().await.push(problem);
                }
                checked.fetch_add(1, Ordering::Relaxed);
                round += 1;
            }
        }
    });
    tokio::join!(
        join_all(http_storm),
        join_all(ws_storm),
        join_all(bystanders)
    );
    locks.release().await;

    let leaks = leaks.lock().await;
    eprintln!(
        "storm: {} aborted requests, {} bystander reads checked, {} wrong",
        sent.load(Ordering::Relaxed),
        checked.load(Ordering::Relaxed),
        leaks.len()
    );
    assert!(
        leaks.is_empty(),
        "bystanders saw wrong data or errors: {:#?}",
        &leaks[..leaks.len().min(10)]
    );
    assert!(
        sent.load(Ordering::Relaxed) > 200,
        "the storm was too small"
    );
    assert!(
        checked.load(Ordering::Relaxed) > 50,
        "bystanders barely ran"
    );

    // Afterwards the instance answers everyone normally, and a paid hold still pays exactly once.
    for (fan, balance, reservation) in &victims {
        victim_round(&client, fan, balance, reservation, 0)
            .await
            .expect("after the storm");
        let paid = app.pay(fan, reservation).await;
        assert!(paid.is_ok(), "{}", paid.body);
    }
    for (fan, _) in attackers.iter() {
        let me = app.gql("{ me { id } }", json!({}), &fan.auth()).await.ok();
        assert_eq!(me["me"]["id"], fan.user_id.as_str());
    }
    let health = health(&app).await;
    assert_eq!(health["database"], "up", "{health}");
    assert_invariants(&app.db.url).await;
}

/// A counter's value in `/metrics` (0 when absent). The recorder is shared by every server in the
/// test process, so only increases that no other test makes are meaningful.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app
        .http
        .get(app.server.metrics_url().expect("metrics served"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn health(app: &TestApp) -> Value {
    app.http
        .get(format!("{}/health", app.server.url()))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("health json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_operation_runs_on_a_pool_of_one_connection() {
    // With one connection, any code path that holds it while asking for a second waits out the
    // pool wait and fails with SERVICE_UNAVAILABLE: this test then fails.
    let rules = Rules {
        queue_tick: Duration::from_millis(100),
        hold_sweep_interval: Duration::from_millis(100),
        ..test_rules()
    };
    let pool = PoolConfig {
        size: 1,
        wait_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
    };
    let app = TestApp::spawn_custom(rules, Background::ALL, &pool, ServerLimits::default()).await;
    let (concert, dates) = app.concert("25.00", 1).await;
    let date = dates[0].to_string();

    let flow = |n: i32| {
        let (app, concert, date, day) = (&app, concert.clone(), date.clone(), dates[0]);
        async move {
            let client = app.client();
            let mut fan = app.fan().await;
            let signed_in = client
                .gql(
                    "mutation($e: String!) { signIn(email: $e, password: \"password-123\") { token } }",
                    json!({ "e": fan.email }),
                    &Auth::none(),
                )
                .await;
            assert!(signed_in.is_ok(), "{}", signed_in.body);
            let ws = WsClient::connect(
                &app.server.url(),
                MODERN,
                json!({ "authorization": format!("Bearer {}", fan.token) }),
            )
            .await
            .expect("ws");
            // Entering together, a fan may be behind another and admitted by the next tick.
            let mut status = app.enter_queue(&mut fan, &concert).await["status"].clone();
            let deadline = Instant::now() + Duration::from_secs(5);
            while status != "ACTIVE" {
                assert!(Instant::now() < deadline, "never admitted: {status}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                status = app.client().poll(&fan).await["status"].clone();
            }
            let mut watcher = WsClient::connect(
                &app.server.url(),
                MODERN,
                json!({ "authorization": format!("Bearer {}", fan.token), "queueToken": fan.queue_token }),
            )
            .await
            .expect("ws");
            watcher
                .subscribe("t", "subscription { queueTicket { status } }", json!({}))
                .await;
            watcher
                .subscribe(
                    "s",
                    "subscription($c: ID!, $d: Date!) { seatUpdates(concertId: $c, date: $d) { number status } }",
                    json!({ "c": concert, "d": date }),
                )
                .await;
            let ticket = watcher.next_data("t", Duration::from_secs(5)).await;
            assert_eq!(
                ticket.expect("queueTicket")["queueTicket"]["status"],
                "ACTIVE"
            );
            let auth = fan.auth();
            for query in [
                "{ me { id balance } }",
                "{ concerts { id dates } }",
                "{ queueTicket { status } }",
                "{ wallet { balance transactions(first: 10) { id } } }",
                "{ myReservations { id } }",
            ] {
                let r = app.gql(query, json!({}), &auth).await;
                assert!(r.is_ok(), "{query}: {}", r.body);
            }
            for (query, vars) in [
                (
                    "query($c: ID!) { availableDates(concertId: $c) }",
                    json!({ "c": concert }),
                ),
                (
                    "query($c: ID!, $d: Date!) { seats(concertId: $c, date: $d) { number } }",
                    json!({ "c": concert, "d": date }),
                ),
            ] {
                let r = app.gql(query, vars, &auth).await;
                assert!(r.is_ok(), "{query}: {}", r.body);
            }
            app.charge(&fan, "100.00").await.ok();
            let first = app.hold(&fan, &concert, day, n).await.ok();
            let first = first["holdSeat"]["id"].as_str().expect("hold").to_owned();
            let held = watcher.next_data("s", Duration::from_secs(5)).await;
            assert!(held.is_some(), "no seatUpdates push");
            let released = app
                .gql(
                    "mutation($r: ID!) { releaseSeat(reservationId: $r) { status } }",
                    json!({ "r": first }),
                    &auth,
                )
                .await;
            assert!(released.is_ok(), "{}", released.body);
            let second = app.hold(&fan, &concert, day, n + 10).await.ok();
            let second = second["holdSeat"]["id"].as_str().expect("hold").to_owned();
            let paid = app.pay(&fan, &second).await;
            assert!(paid.is_ok(), "{}", paid.body);
            drop(ws);
        }
    };
    // Four fans at once: with one connection they take turns, and nobody may deadlock.
    join_all((1..=4).map(flow)).await;
    assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_pool_answers_service_unavailable_within_the_wait_and_health_tells_it_apart() {
    let pool = PoolConfig {
        size: 2,
        wait_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(2),
    };
    let app = TestApp::spawn_custom(
        test_rules(),
        Background::NONE,
        &pool,
        ServerLimits::default(),
    )
    .await;
    let fan = app.fan().await;
    let locks = RowLocks::hold(&app.db.url, &[&fan.user_id]).await;
    // Two charges wait on the locked row, holding both connections.
    let stuck = {
        let (client, auth) = (app.client(), fan.auth());
        tokio::spawn(async move {
            let charge = "mutation($a: Decimal!, $k: String!) { charge(amount: $a, idempotencyKey: $k) { balance } }";
            let (a, b) = tokio::join!(
                client.gql(charge, json!({ "a": "1.00", "k": "stuck-1" }), &auth),
                client.gql(charge, json!({ "a": "2.00", "k": "stuck-2" }), &auth)
            );
            (a.body, b.body)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.services().db.status().idle > 0 || app.services().db.status().size < 2 {
        assert!(Instant::now() < deadline, "the charges never took the pool");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let started = Instant::now();
    let response = app
        .http
        .post(format!("{}/graphql", app.server.url()))
        .json(&json!({ "query": "{ concerts { id } }" }))
        .send()
        .await
        .expect("request");
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
        "{body}"
    );
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(2),
        "answered after {waited:?}"
    );
    eprintln!("exhausted pool answered SERVICE_UNAVAILABLE after {waited:?}");

    let health = app
        .http
        .get(format!("{}/health", app.server.url()))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200, "a busy pool is not a database outage");
    let health: Value = health.json().await.expect("json");
    assert_eq!(health["database"], "up", "{health}");
    assert_eq!(health["pool"]["size"], 2, "{health}");
    assert_eq!(health["pool"]["idle"], 0, "{health}");

    // A stream of health checks on a busy pool opens at most about one connection a second of
    // its own, not one per check (each would count against the database's max_connections).
    let probes_before = metric(&app, "db_direct_probes_total").await;
    let checks = join_all((0..50).map(|_| {
        app.http
            .get(format!("{}/health/ready", app.server.url()))
            .send()
    }))
    .await;
    assert!(
        checks
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status() == 200))
    );
    let direct = metric(&app, "db_direct_probes_total").await - probes_before;
    assert!(direct <= 3.0, "{direct} direct probes for 50 health checks");

    locks.release().await;
    let (a, b) = stuck.await.expect("charges");
    assert!(a["errors"].is_null() && b["errors"].is_null(), "{a} {b}");
    assert_eq!(app.balance(&fan).await, "3.00");
    app.gql("{ concerts { id } }", json!({}), &Auth::none())
        .await
        .ok();
    assert_invariants(&app.db.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_past_its_deadline_gets_timeout_and_its_transaction_rolls_back_whole() {
    let limits = ServerLimits {
        request_timeout: Duration::from_secs(1),
        ..ServerLimits::default()
    };
    let app = TestApp::spawn_custom(test_rules(), Background::NONE, &test_pool(4), limits).await;
    let fan = app.fan().await;
    app.charge(&fan, "10.00").await.ok();
    let locks = RowLocks::hold(&app.db.url, &[&fan.user_id]).await;

    let started = Instant::now();
    let response = app
        .http
        .post(format!("{}/graphql", app.server.url()))
        .header("Authorization", format!("Bearer {}", fan.token))
        .json(&json!({ "query": "mutation { charge(amount: \"5.00\", idempotencyKey: \"timeout-1\") { balance } }" }))
        .send()
        .await
        .expect("request");
    let waited = started.elapsed();
    assert_eq!(response.status(), 504);
    let body: Value = response
        .json()
        .await
        .expect("a JSON body, not an empty 408");
    assert_eq!(body["errors"][0]["extensions"]["code"], "TIMEOUT", "{body}");
    // A POST stopped this way may have been committing: the client resends with its key.
    assert_eq!(
        body["errors"][0]["extensions"]["outcome"], "UNKNOWN",
        "{body}"
    );
    assert!(waited < Duration::from_secs(3), "answered after {waited:?}");

    // The interrupted statement was killed: nothing waits on the lock any more, although the
    // lock is still held.
    let deadline = Instant::now() + Duration::from_secs(3);
    while lock_waits(&app).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the timed-out statement still waits on its lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    locks.release().await;

    assert_eq!(
        app.balance(&fan).await,
        "10.00",
        "half a charge was applied"
    );
    assert_eq!(
        app.count(
            "wallet_transactions",
            &format!("user_id = '{}'", fan.user_id)
        )
        .await,
        1
    );
    app.charge(&fan, "1.00").await.ok();
    assert_eq!(app.balance(&fan).await, "11.00");
    assert_invariants(&app.db.url).await;
}

/// A raw websocket handshake, returning the socket without sending `connection_init`.
async fn ws_without_init(
    app: &TestApp,
    protocol: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let url = format!("{}/graphql/ws", app.server.url().replacen("http", "ws", 1));
    let mut request = url.into_client_request().expect("request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().expect("header"));
    tokio_tungstenite::connect_async(request)
        .await
        .expect("handshake")
        .0
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_that_never_initialises_is_closed_with_4408() {
    let limits = ServerLimits {
        ws_init_timeout: Duration::from_secs(1),
        ..ServerLimits::default()
    };
    let app = TestApp::spawn_custom(test_rules(), Background::NONE, &test_pool(2), limits).await;
    let mut socket = ws_without_init(&app, MODERN).await;
    let started = Instant::now();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    let frame = close.expect("close frame with a code");
    assert_eq!(u16::from(frame.code), 4408, "{frame:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // A client that does initialise in time keeps its socket past the init timeout.
    let fan = app.fan().await;
    let mut ws = WsClient::connect(
        &app.server.url(),
        MODERN,
        json!({ "authorization": format!("Bearer {}", fan.token) }),
    )
    .await
    .expect("init in time");
    assert!(ws.next(Duration::from_millis(1500)).await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_silent_http_connections_are_closed_after_the_header_timeout() {
    let limits = ServerLimits {
        header_timeout: Duration::from_secs(1),
        ..ServerLimits::default()
    };
    let app = TestApp::spawn_custom(test_rules(), Background::NONE, &test_pool(2), limits).await;
    let addr = app.server.addr;
    let closed_within = |mut socket: TcpStream| async move {
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
                Ok(Ok(_)) => continue, // e.g. a 408 response before the close
                Err(_) => panic!("connection still open after 5 s"),
            }
        }
    };
    // Slowloris: headers begun and never finished.
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: app")
        .await
        .expect("write");
    // Silent: connects and sends nothing.
    let silent = TcpStream::connect(addr).await.expect("connect");
    let (slow, silent) = tokio::join!(closed_within(slow), closed_within(silent));
    assert!(slow < Duration::from_secs(3), "slow client kept {slow:?}");
    assert!(
        silent < Duration::from_secs(3),
        "silent client kept {silent:?}"
    );
    // Normal clients are unaffected.
    app.gql("{ concerts { id } }", json!({}), &Auth::none())
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn websockets_beyond_the_cap_are_refused_with_503_and_a_coded_body() {
    let limits = ServerLimits {
        ws_max_connections: 2,
        ..ServerLimits::default()
    };
    let app = TestApp::spawn_custom(test_rules(), Background::NONE, &test_pool(2), limits).await;
    let first = ws_without_init(&app, MODERN).await;
    let _second = ws_without_init(&app, MODERN).await;
    let url = format!("{}/graphql/ws", app.server.url().replacen("http", "ws", 1));
    let mut request = url.clone().into_client_request().expect("request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", MODERN.parse().expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("json body");
            assert_eq!(
                body["errors"][0]["extensions"]["code"],
                "SERVICE_UNAVAILABLE"
            );
        }
        other => panic!("third websocket not refused: {:?}", other.map(|_| ())),
    }
    // Closing one frees its slot.
    let mut first = first;
    first.close(None).await.expect("close");
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut request = url.clone().into_client_request().expect("request");
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", MODERN.parse().expect("header"));
        if tokio_tungstenite::connect_async(request).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_liveness_readiness_and_request_ids() {
    let app = TestApp::spawn().await;
    let base = app.server.url();
    let get = |path: &str| app.http.get(format!("{base}{path}")).send();

    let health = get("/health").await.expect("health");
    assert_eq!(health.status(), 200);
    let health: Value = health.json().await.expect("json");
    assert_eq!(health["database"], "up");
    for field in ["size", "max", "idle", "waiting"] {
        assert!(health["pool"][field].is_u64(), "{field} missing: {health}");
    }
    let live = get("/health/live").await.expect("live");
    assert_eq!(live.status(), 200);
    let ready = get("/health/ready").await.expect("ready");
    assert_eq!(ready.status(), 200);

    // A new id when the client sends none, the client's own otherwise.
    let response = get("/health/live").await.expect("live");
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let response = app
        .http
        .post(format!("{base}/graphql"))
        .header("x-request-id", "trace-me-42")
        .json(&json!({ "query": "{ concerts { id } }" }))
        .send()
        .await
        .expect("graphql");
    assert_eq!(
        response.headers().get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"trace-me-42"[..])
    );

    // Errors are counted by code in /metrics.
    app.gql("{ me { id } }", json!({}), &Auth::none()).await;
    let metrics = app
        .http
        .get(app.server.metrics_url().expect("metrics served"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for needle in [
        "graphql_errors_total{code=\"UNAUTHENTICATED\"}",
        "db_pool_size",
        "db_pool_idle",
        "db_pool_waiting",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from /metrics");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_does_not_wait_for_a_connection_with_no_request_in_flight() {
    let limits = ServerLimits {
        shutdown_grace: Duration::from_secs(5),
        ..ServerLimits::default()
    };
    let app = TestApp::spawn_custom(test_rules(), Background::ALL, &test_pool(2), limits).await;
    // Half-way through its headers, and a keep-alive connection that finished a request.
    let mut half = TcpStream::connect(app.server.addr).await.expect("connect");
    half.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    app.gql("{ concerts { id } }", json!({}), &Auth::none())
        .await
        .ok();
    let started = Instant::now();
    let TestApp { server, db, api } = app;
    assert!(server.stop().await, "connections were left open");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    drop((db, api, half));
}

/// Connections of this test's database killed at random moments while fans top up over and
/// over, some of them while `COMMIT` is on the wire: every answer is right about what happened.
/// One without `outcome: UNKNOWN` is exact (the key's row exists if and only if it answered
/// OK); one with it is settled by sending the same key again, which tops up at most once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_top_up_cut_off_at_commit_says_its_outcome_is_unknown_and_its_key_settles_it() {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Thread {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    const CHARGE: &str =
        "mutation($k: String!) { charge(amount: \"1.00\", idempotencyKey: $k) { balance } }";

    let app = TestApp::spawn().await;
    let fans: Vec<Fan> = join_all((0..8).map(|_| app.fan())).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let (url, stop) = (app.db.url.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut conn = encore::db::Conn::establish(&url).await.expect("connect");
            let mut kills = 0u32;
            while !std::sync::atomic::AtomicBool::load(&stop, Ordering::Relaxed) {
                let threads: Vec<Thread> = diesel::sql_query(
                    "SELECT CAST(id AS SIGNED) AS id FROM information_schema.processlist \
                     WHERE db = DATABASE() AND id <> CONNECTION_ID()",
                )
                .load(&mut conn)
                .await
                .expect("processlist");
                if let Some(thread) = threads.get(kills as usize % threads.len().max(1)) {
                    // A thread may have gone meanwhile.
                    let _ = diesel::sql_query(format!("KILL CONNECTION {}", thread.id))
                        .execute(&mut conn)
                        .await;
                    kills += 1;
                }
                tokio::time::sleep(Duration::from_millis(rand_ms(1, 6))).await;
            }
            kills
        })
    };
    let answers = join_all(fans.iter().enumerate().map(|(f, fan)| {
        let (client, auth, stop) = (app.client(), fan.auth(), Arc::clone(&stop));
        async move {
            let mut answers = Vec::new();
            let started = Instant::now();
            let mut n = 0;
            while started.elapsed() < Duration::from_secs(3) {
                let key = format!("fan{f}-{n}");
                let (status, body) = client
                    .send(CHARGE, json!({ "k": key }), &auth)
                    .await
                    .expect("an answer");
                answers.push((key, status, body));
                n += 1;
            }
            stop.store(true, Ordering::Relaxed);
            answers
        }
    }))
    .await;
    let kills = killer.await.expect("killer");

    let mut conn = app.conn().await;
    let (mut ok, mut failed, mut unknown) = (0, 0, 0);
    for (fan, answers) in fans.iter().zip(&answers) {
        for (key, status, body) in answers {
            let committed = async |conn: &mut encore::db::Conn| -> i64 {
                #[derive(diesel::QueryableByName)]
                struct N {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                diesel::sql_query(format!(
                    "SELECT COUNT(*) AS n FROM idempotency_keys WHERE user_id = '{}' AND idem_key = '{key}'",
                    fan.user_id
                ))
                .get_result::<N>(conn)
                .await
                .expect("count")
                .n
            };
            let error = &body["errors"][0]["extensions"];
            if body.get("errors").is_none() {
                ok += 1;
                assert_eq!(committed(&mut conn).await, 1, "{key} answered OK");
            } else if error["outcome"] == "UNKNOWN" {
                unknown += 1;
                assert_eq!(error["code"], "SERVICE_UNAVAILABLE", "{body}");
                // The same key again, as a client does until it has a definite answer (the
                // pool may still be meeting connections the killer cut): done now, or the
                // first result replayed; never twice.
                let mut again = app.gql(CHARGE, json!({ "k": key }), &fan.auth()).await;
                for _ in 0..20 {
                    if again.is_ok() || again.code() != "SERVICE_UNAVAILABLE" {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    again = app.gql(CHARGE, json!({ "k": key }), &fan.auth()).await;
                }
                assert!(again.is_ok(), "{key}: {}", again.body);
                assert_eq!(committed(&mut conn).await, 1, "{key} after the retry");
            } else {
                failed += 1;
                assert!(*status >= 400 || error["code"].is_string(), "{body}");
                assert_eq!(
                    committed(&mut conn).await,
                    0,
                    "{key} answered {body} without outcome UNKNOWN, but it committed"
                );
            }
        }
    }
    eprintln!(
        "{kills} connections killed during {} top-ups: {ok} OK, {failed} failed (nothing \
         committed), {unknown} with an unknown outcome (settled by their keys)",
        ok + failed + unknown
    );
    assert!(failed + unknown > 0, "the killer interrupted nothing");
    app.assert_ledgers_balance().await;
    assert_invariants(&app.db.url).await;
}

fn rand_ms(low: u64, high: u64) -> u64 {
    low + u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % (high - low)
}

/// On a cluster a node that refuses connections is passed over: writes homed on it (a room's, a
/// wallet's) go through the key's next node, and an instance whose own node is the lost one works
/// through the others. (The node list here is this test's server and a port nothing listens on.)
#[tokio::test(flavor = "multi_thread")]
async fn a_database_node_that_refuses_connections_is_passed_over() {
    let db = crate::common::TestDb::create().await;
    let (head, rest) = db.url.rsplit_once('@').expect("a URL with credentials");
    let path = &rest[rest.find('/').expect("a URL naming its database")..];
    let lost = format!("{head}@127.0.0.1:1{path}");
    let pool = PoolConfig {
        size: 2,
        wait_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
    };
    for (own, others) in [(&db.url, [lost.clone()]), (&lost, [db.url.clone()])] {
        let database =
            encore::db::Database::connect_nodes(own, &others, &pool).expect("pools of both nodes");
        // Forty keys: about half are homed on the lost node.
        for key in 0..40u32 {
            let mut lease = database
                .home(&key.to_be_bytes())
                .lease()
                .await
                .expect("a lease from the node that answers");
            diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), &mut *lease)
                .await
                .expect("the statement runs");
            lease.finish();
        }
        let lease = database.lease().await.expect("the own node or the next");
        lease.finish();
        database.close();
    }
}
