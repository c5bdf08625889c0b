//! Live updates over websockets, and their cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use diesel_async::SimpleAsyncConnection;
use encore::background::Background;
use encore::config::Rules;
use encore::domain::accounts::auth::Viewer;
use encore::domain::live;
use encore::graphql;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::common::ws::{LEGACY, MODERN, Refused, WsClient};
use crate::common::{Client, Fan, TestApp, test_rules};

const TICKET_SUB: &str = "subscription { queueTicket { status position estimatedWaitSeconds } }";
const SEAT_SUB: &str =
    "subscription($c: ID!, $d: Date!) { seatUpdates(concertId: $c, date: $d) { number status } }";
const WAIT: Duration = Duration::from_secs(10);

fn init(fan: &Fan) -> Value {
    json!({ "authorization": format!("Bearer {}", fan.token), "queueToken": fan.queue_token })
}

fn fast_ticks() -> Rules {
    Rules {
        queue_tick: Duration::from_millis(200),
        ..test_rules()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_fan_sees_their_turn_arrive_over_either_protocol() {
    for protocol in [MODERN, LEGACY] {
        let rules = Rules {
            queue_active_limit: 1,
            ..fast_ticks()
        };
        let app = TestApp::spawn_with(rules, Background::ALL).await;
        let (concert, _) = app.concert("10.00", 1).await;
        let first = app.admitted_fan(&concert).await;
        let mut fan = app.fan().await;
        app.enter_queue(&mut fan, &concert).await;

        let mut ws = WsClient::connect(&app.server.url(), protocol, init(&fan))
            .await
            .expect("ack");
        ws.subscribe("q", TICKET_SUB, json!({})).await;
        let now = ws.next_data("q", WAIT).await.expect("current ticket");
        assert_eq!(now["queueTicket"]["status"], "WAITING", "{protocol}");
        assert_eq!(now["queueTicket"]["position"], 0);
        // The first fan's turn lapses now (however long the set-up took); the next tick admits
        // this one.
        app.conn()
            .await
            .batch_execute(&format!(
                "UPDATE queue_tickets SET expires_at = UTC_TIMESTAMP(6) WHERE user_id = '{}'",
                first.user_id
            ))
            .await
            .expect("end the first turn");
        let next = ws.next_data("q", WAIT).await.expect("an update");
        assert_eq!(
            next["queueTicket"]["status"], "ACTIVE",
            "{protocol}: {next}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ticket_subscription_completes_when_the_turn_ends() {
    let rules = Rules {
        queue_active_ttl: Duration::from_millis(800),
        ..fast_ticks()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let fan = app.admitted_fan(&concert).await;
    let mut ws = WsClient::connect(&app.server.url(), MODERN, init(&fan))
        .await
        .expect("ack");
    ws.subscribe("q", TICKET_SUB, json!({})).await;
    assert_eq!(
        ws.next_data("q", WAIT).await.expect("now")["queueTicket"]["status"],
        "ACTIVE"
    );
    assert_eq!(
        ws.next_data("q", WAIT).await.expect("end")["queueTicket"]["status"],
        "EXPIRED"
    );
    let complete = ws.next(WAIT).await.expect("complete");
    assert_eq!(complete["type"], "complete");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_close_with_4403_and_missing_ones_get_a_coded_error() {
    let app = TestApp::spawn_with(fast_ticks(), Background::ALL).await;
    let forged = json!({ "authorization": "Bearer not-a-jwt" });
    match WsClient::connect(&app.server.url(), MODERN, forged.clone()).await {
        Err(Refused::Closed(code, reason)) => {
            assert_eq!(code, 4403);
            assert!(reason.starts_with("UNAUTHENTICATED"), "{reason}");
        }
        other => panic!("expected close 4403, got {:?}", other.map(|_| ())),
    }
    match WsClient::connect(&app.server.url(), LEGACY, json!({ "queueToken": "nope" })).await {
        Err(Refused::ConnectionError(payload)) => {
            assert!(payload.to_string().contains("NOT_ADMITTED"), "{payload}")
        }
        other => panic!("expected connection_error, got {:?}", other.map(|_| ())),
    }

    let mut ws = WsClient::connect(&app.server.url(), MODERN, json!({}))
        .await
        .expect("ack");
    ws.subscribe("q", TICKET_SUB, json!({})).await;
    // An execution error arrives as `next` with `errors` (`error` is for invalid operations).
    let error = ws.next(WAIT).await.expect("an error");
    assert_eq!(error["type"], "next");
    assert_eq!(
        error["payload"]["errors"][0]["extensions"]["code"], "NOT_ADMITTED",
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_on_one_database_agree_on_the_queue_and_the_seat_map() {
    let rules = Rules {
        queue_active_limit: 1,
        queue_admit_per_sec: 2,
        ..fast_ticks()
    };
    let app = TestApp::spawn_with(rules.clone(), Background::ALL).await;
    let b = TestApp::instance(&app.db, rules.clone(), Background::ALL).await;
    let c = TestApp::instance(&app.db, rules, Background::ALL).await;
    let (a_url, b_client, c_client) = (
        app.server.url(),
        Client::for_server(&b),
        Client::for_server(&c),
    );
    let (concert, dates) = app.concert("100.00", 1).await;

    // Sample the number of ACTIVE tickets while everything happens: never above the limit.
    let max_active = Arc::new(AtomicI64::new(0));
    let sampler = {
        let max_active = Arc::clone(&max_active);
        let mut conn = app.conn().await;
        tokio::spawn(async move {
            loop {
                use diesel_async::RunQueryDsl;
                let n: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "SELECT COUNT(*) FROM queue_tickets WHERE status = 'ACTIVE' AND expires_at > UTC_TIMESTAMP(6)",
                )
                .get_result(&mut conn)
                .await
                .unwrap_or(0);
                max_active.fetch_max(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // The buyer enters through B and is admitted; three fans queue behind through B.
    let mut buyer = c_client.sign_up(&crate::common::unique_name()).await;
    assert_eq!(
        b_client.enter_queue(&mut buyer, &concert).await["status"],
        "ACTIVE"
    );
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let mut fan = b_client.sign_up(&crate::common::unique_name()).await;
        b_client.enter_queue(&mut fan, &concert).await;
        waiting.push(fan);
    }

    // Everyone watches on A: the waiting fans their tickets, the buyer the seat map.
    let mut watchers = Vec::new();
    for fan in &waiting {
        let mut ws = WsClient::connect(&a_url, MODERN, init(fan))
            .await
            .expect("ack");
        ws.subscribe("q", TICKET_SUB, json!({})).await;
        let first = ws.next_data("q", WAIT).await.expect("ticket");
        watchers.push((
            ws,
            first["queueTicket"]["position"].as_i64().expect("position"),
        ));
    }
    assert_eq!(
        watchers.iter().map(|(_, p)| *p).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let mut seat_map = WsClient::connect(&a_url, MODERN, init(&buyer))
        .await
        .expect("ack");
    seat_map
        .subscribe(
            "s",
            SEAT_SUB,
            json!({ "c": concert, "d": dates[0].to_string() }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The buyer holds and pays through C; A's subscribers see it.
    let hold = c_client.hold(&buyer, &concert, dates[0], 5).await.ok();
    let held = seat_map.next_data("s", WAIT).await.expect("held");
    assert_eq!(
        held["seatUpdates"],
        json!({ "number": 5, "status": "HELD" })
    );
    c_client
        .gql(
            "mutation { charge(amount: \"100.00\", idempotencyKey: \"live-top-up\") { balance } }",
            json!({}),
            &buyer.auth(),
        )
        .await
        .ok();
    c_client
        .gql(
            "mutation($r: ID!) { pay(reservationId: $r) { id } }",
            json!({ "r": hold["holdSeat"]["id"] }),
            &buyer.auth(),
        )
        .await
        .ok();
    let sold = seat_map.next_data("s", WAIT).await.expect("sold");
    assert_eq!(
        sold["seatUpdates"],
        json!({ "number": 5, "status": "SOLD" })
    );

    // The payment freed the only slot: the first waiting fan becomes ACTIVE, the others move up.
    let (first_ws, _) = &mut watchers[0];
    let turn = first_ws.next_data("q", WAIT).await.expect("admission");
    assert_eq!(turn["queueTicket"]["status"], "ACTIVE");
    for (ws, before) in watchers.iter_mut().skip(1) {
        let update = ws.next_data("q", WAIT).await.expect("moved up");
        let now = update["queueTicket"]["position"]
            .as_i64()
            .expect("position");
        assert_eq!(now, *before - 1);
    }
    sampler.abort();
    assert!(
        max_active.load(Ordering::Relaxed) <= 1,
        "more ACTIVE than the limit across instances"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_tickers_share_one_admission_rate() {
    let rules = Rules {
        queue_active_limit: 10_000,
        queue_admit_per_sec: 3,
        ..fast_ticks()
    };
    let app = TestApp::spawn_with(rules.clone(), Background::ALL).await;
    let _b = TestApp::instance(&app.db, rules.clone(), Background::ALL).await;
    let _c = TestApp::instance(&app.db, rules, Background::ALL).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let mut fans = futures::future::join_all((0..30).map(|_| app.fan())).await;
    let started = std::time::Instant::now();
    app.enter_all(&mut fans, &concert).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let active = app.count("queue_tickets", "status = 'ACTIVE'").await;
    let ceiling = (3.0 * elapsed).floor() as i64 + 3;
    assert!(
        active <= ceiling,
        "{active} admitted by three instances in {elapsed:.2}s; ceiling {ceiling}"
    );
    assert!(active >= 6, "admission stalled: {active} in {elapsed:.2}s");
    let busiest = app.busiest_admission_second().await;
    assert!(
        busiest <= 6,
        "a one-second window admitted {busiest}, more than rate + burst"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statements_per_tick_do_not_grow_with_subscribers() {
    // Presence is refreshed every second with a 3 s abandon window, so each phase below starts
    // with one presence refresh.
    let rules = Rules {
        queue_abandon_after: Duration::from_secs(3),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let holder = app.admitted_fan(&concert).await;
    let services = app.services().clone();
    let schema = graphql::schema(
        services.clone(),
        &Default::default(),
        std::sync::Arc::new(graphql::persisted_queries::Store::Off),
        false,
    );

    // 1,000 waiting tickets, made in bulk.
    let tokens: Vec<String> = (0..1000).map(|i| format!("{i:0>43}")).collect();
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.conn().await;
        let values: Vec<String> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!(
                    "(UUID(), '{t}', UUID(), '{concert}', {}, 'WAITING', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
                    i + 2
                )
            })
            .collect();
        diesel::sql_query(format!(
            "INSERT INTO queue_tickets (id, token, user_id, concert_id, seq, status, last_seen_at, created_at, updated_at) VALUES {}",
            values.join(",")
        ))
        .execute(&mut conn)
        .await
        .expect("bulk tickets");
    }

    // Each subscription is driven by its own task, as a websocket connection would drive it.
    let mut tasks = Vec::new();
    let subscribe = |from: usize, n: usize, tasks: &mut Vec<tokio::task::JoinHandle<()>>| {
        for token in tokens.iter().skip(from).take(n) {
            let ticket =
                async_graphql::Request::new(TICKET_SUB).data(Viewer::with_queue_token(token));
            let seats = async_graphql::Request::new(SEAT_SUB)
                .variables(async_graphql::Variables::from_json(
                    json!({ "c": concert, "d": dates[0].to_string() }),
                ))
                .data(Viewer::with_queue_token(
                    holder.queue_token.as_deref().unwrap_or_default(),
                ));
            for request in [ticket, seats] {
                let mut stream = schema.execute_stream(request);
                tasks.push(tokio::spawn(async move {
                    while let Some(response) = stream.next().await {
                        assert!(response.errors.is_empty(), "{:?}", response.errors);
                    }
                }));
            }
        }
    };
    let opened = async |expected: usize| {
        for _ in 0..600 {
            if services.live.subscribers() == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "only {} of {expected} subscriptions opened",
            services.live.subscribers()
        );
    };
    let measure = async || {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let mut per_tick = Vec::new();
        for _ in 0..3 {
            per_tick.push(live::publish_changes(&services).await.expect("tick"));
        }
        per_tick
    };

    subscribe(0, 10, &mut tasks);
    opened(20).await;
    let few = measure().await;
    subscribe(10, 990, &mut tasks);
    opened(2000).await;
    let many = measure().await;
    for task in &tasks {
        task.abort();
    }

    assert_eq!(few[0].subscribers, 20);
    assert_eq!(many[0].subscribers, 2000);
    let statements =
        |ticks: &[live::LiveTickReport]| ticks.iter().map(|t| t.statements).collect::<Vec<_>>();
    assert_eq!(
        statements(&few),
        statements(&many),
        "few: {few:?}\nmany: {many:?}"
    );
    // One clock read, two statements for the watched room, one for the watched date; plus one
    // presence UPDATE for all watched tickets on the first tick of each phase.
    assert_eq!(statements(&few), vec![5, 4, 4], "{few:?}");
    assert_eq!(
        (few[0].presence_refreshed, many[0].presence_refreshed),
        (10, 1000)
    );
    println!(
        "statements per tick, 20 subscribers: {:?}; 2000 subscribers: {:?}",
        statements(&few),
        statements(&many)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seat_map_hears_of_releases_and_of_holds_that_lapse_with_no_sweeper() {
    let rules = Rules {
        hold_ttl: Duration::from_millis(1200),
        ..fast_ticks()
    };
    let no_sweeper = Background {
        hold_sweeper: false,
        ..Background::ALL
    };
    let app = TestApp::spawn_with(rules, no_sweeper).await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let fan = app.admitted_fan(&concert).await;
    let mut ws = WsClient::connect(&app.server.url(), MODERN, init(&fan))
        .await
        .expect("ack");
    ws.subscribe(
        "s",
        SEAT_SUB,
        json!({ "c": concert, "d": dates[0].to_string() }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let released = app.hold(&fan, &concert, dates[0], 3).await.ok();
    assert_eq!(
        ws.next_data("s", WAIT).await.expect("held")["seatUpdates"],
        json!({ "number": 3, "status": "HELD" })
    );
    app.gql(
        "mutation($r: ID!) { releaseSeat(reservationId: $r) { status } }",
        json!({ "r": released["holdSeat"]["id"] }),
        &fan.auth(),
    )
    .await
    .ok();
    assert_eq!(
        ws.next_data("s", WAIT).await.expect("released")["seatUpdates"],
        json!({ "number": 3, "status": "AVAILABLE" })
    );

    app.hold(&fan, &concert, dates[0], 4).await.ok();
    assert_eq!(
        ws.next_data("s", WAIT).await.expect("held")["seatUpdates"],
        json!({ "number": 4, "status": "HELD" })
    );
    // Nobody writes the seat again: the lapse itself must be noticed.
    assert_eq!(
        ws.next_data("s", WAIT).await.expect("lapsed")["seatUpdates"],
        json!({ "number": 4, "status": "AVAILABLE" })
    );
    assert_eq!(
        app.count("seats", "status = 'HELD'").await,
        1,
        "the stored row still says HELD"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn polls_are_answered_from_memory_and_follow_admission_at_the_next_tick() {
    // The instance runs its live tick (so it may answer polls from memory), but so rarely that
    // the test drives the ticks itself.
    let rules = Rules {
        queue_active_limit: 1,
        queue_tick: Duration::from_secs(3600),
        queue_active_ttl: Duration::from_secs(60),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let _first = app.admitted_fan(&concert).await;
    let mut second = app.fan().await;
    assert_eq!(
        app.enter_queue(&mut second, &concert).await["status"],
        "WAITING"
    );
    // The first poll reads the ticket; every later one is answered without the database.
    assert_eq!(app.poll(&second).await["position"], 0);
    let leases = app.services().db.leases();
    for _ in 0..50 {
        assert_eq!(app.poll(&second).await["status"], "WAITING");
    }
    assert_eq!(
        app.services().db.leases(),
        leases,
        "polls took no connection"
    );

    // The first turn ends and admission lets the second fan in: polls see it from the next
    // tick on (never later), still without the database.
    app.time_passes(Duration::from_secs(61)).await;
    encore::domain::queue::admission_round(app.services())
        .await
        .expect("admission");
    live::publish_changes(app.services()).await.expect("tick");
    let leases = app.services().db.leases();
    let ticket = app.poll(&second).await;
    assert_eq!(ticket["status"], "ACTIVE", "{ticket}");
    assert_eq!(app.services().db.leases(), leases);
}

#[tokio::test(flavor = "multi_thread")]
async fn seat_maps_are_answered_from_memory_and_show_a_hold_from_the_next_tick() {
    let rules = Rules {
        queue_tick: Duration::from_secs(3600),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let alice = app.admitted_fan(&concert).await;
    let bob = app.admitted_fan(&concert).await;
    assert_eq!(
        app.seat_status(&bob, &concert, dates[0], 5).await,
        "AVAILABLE"
    );
    let leases = app.services().db.leases();
    for _ in 0..20 {
        assert_eq!(
            app.seat_status(&bob, &concert, dates[0], 5).await,
            "AVAILABLE"
        );
    }
    assert_eq!(
        app.services().db.leases(),
        leases,
        "the gate and the map took no connection"
    );
    app.hold(&alice, &concert, dates[0], 5).await.ok();
    live::publish_changes(app.services()).await.expect("tick");
    assert_eq!(app.seat_status(&bob, &concert, dates[0], 5).await, "HELD");
}
