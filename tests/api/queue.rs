//! The waiting room: one live ticket per fan, FIFO admission paced by the active limit and the
//! rate, positions that only fall, and people who left skipped.

use std::time::Duration;

use encore::background::Background;
use encore::config::Rules;
use encore::db::ids::{ConcertId, UserId};
use encore::domain::queue::{self, QueueStatus};
use serde_json::json;

use crate::common::{Auth, TestApp, test_rules};

#[tokio::test(flavor = "multi_thread")]
async fn entering_twice_returns_the_same_live_ticket() {
    let app = TestApp::spawn_with(
        Rules {
            queue_active_limit: 1,
            ..test_rules()
        },
        Background::NONE,
    )
    .await;
    let (concert, _) = app.concert("10.00", 1).await;
    let _first = app.admitted_fan(&concert).await;
    let mut fan = app.fan().await;
    let a = app.enter_queue(&mut fan, &concert).await;
    let b = app.enter_queue(&mut fan, &concert).await;
    assert_eq!(a["token"], b["token"]);
    assert_eq!(b["status"], "WAITING");
    assert_eq!(b["position"], 0);
    assert_eq!(
        app.count("queue_tickets", &format!("user_id = '{}'", fan.user_id))
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_fan_in_an_idle_room_is_admitted_at_once() {
    let app = TestApp::spawn().await;
    let (concert, _) = app.concert("10.00", 1).await;
    let mut fan = app.fan().await;
    let ticket = app.enter_queue(&mut fan, &concert).await;
    assert_eq!(ticket["status"], "ACTIVE");
    assert_eq!(ticket["position"], 0);
    assert!(ticket["expiresAt"].is_string());
    assert_eq!(ticket["concertId"], concert);
}

#[tokio::test(flavor = "multi_thread")]
async fn fans_are_admitted_in_arrival_order_and_positions_only_fall() {
    let rules = Rules {
        queue_active_limit: 1,
        queue_active_ttl: Duration::from_secs(60),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let client = app.client();

    let first = app.admitted_fan(&concert).await;
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let mut fan = app.fan().await;
        client.enter_queue(&mut fan, &concert).await;
        waiting.push(fan);
    }
    let positions: Vec<i64> = futures::future::join_all(waiting.iter().map(|f| client.poll(f)))
        .await
        .iter()
        .map(|t| t["position"].as_i64().expect("position"))
        .collect();
    assert_eq!(positions, vec![0, 1, 2]);

    // Each turn lasts a minute; after it lapses the next fan in line is admitted, never a later
    // one.
    let mut last_positions = positions;
    for expected_active in 0..3 {
        app.time_passes(Duration::from_secs(61)).await;
        queue::admission_round(app.services()).await.expect("tick");
        let tickets = futures::future::join_all(waiting.iter().map(|f| client.poll(f))).await;
        for (i, t) in tickets.iter().enumerate() {
            if i == expected_active {
                assert_eq!(t["status"], "ACTIVE", "fan {i} should be admitted: {t}");
            } else if i > expected_active {
                assert_eq!(t["status"], "WAITING");
                let p = t["position"].as_i64().expect("position");
                assert!(
                    p <= last_positions[i],
                    "position rose from {} to {p}",
                    last_positions[i]
                );
                last_positions[i] = p;
            }
        }
    }
    let first_ticket = client.poll(&first).await;
    assert_eq!(first_ticket["status"], "EXPIRED");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_who_stopped_polling_is_skipped() {
    let rules = Rules {
        queue_active_limit: 1,
        queue_active_ttl: Duration::from_secs(60),
        queue_abandon_after: Duration::from_secs(40),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let client = app.client();
    let _active = app.admitted_fan(&concert).await;
    let mut gone = app.fan().await;
    client.enter_queue(&mut gone, &concert).await;
    let mut present = app.fan().await;
    client.enter_queue(&mut present, &concert).await;

    // `present` keeps polling (a write happens at most every 5 s, so re-enter to refresh), `gone`
    // does not. Presence refreshes on enterQueue too.
    app.time_passes(Duration::from_secs(45)).await;
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.conn().await;
        diesel::sql_query(format!(
            "UPDATE queue_tickets SET last_seen_at = UTC_TIMESTAMP(6) WHERE user_id = '{}'",
            present.user_id
        ))
        .execute(&mut conn)
        .await
        .expect("presence");
    }
    app.time_passes(Duration::from_secs(20)).await;
    queue::admission_round(app.services()).await.expect("tick");

    assert_eq!(client.poll(&present).await["status"], "ACTIVE");
    assert_eq!(client.poll(&gone).await["status"], "EXPIRED");
    // Entering again puts the returning fan at the back with a new ticket.
    let again = client.enter_queue(&mut gone, &concert).await;
    assert_eq!(again["status"], "WAITING");
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_keeps_a_waiting_ticket_alive() {
    let rules = Rules {
        queue_active_limit: 1,
        queue_abandon_after: Duration::from_millis(800),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let _active = app.admitted_fan(&concert).await;
    let mut fan = app.fan().await;
    app.enter_queue(&mut fan, &concert).await;
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.conn().await;
        diesel::sql_query(format!(
            "UPDATE queue_tickets SET last_seen_at = UTC_TIMESTAMP(6) - INTERVAL 10 SECOND WHERE user_id = '{}'",
            fan.user_id
        ))
        .execute(&mut conn)
        .await
        .expect("age the ticket");
    }
    app.client().poll(&fan).await;
    let fresh = app
        .count(
            "queue_tickets",
            &format!(
                "user_id = '{}' AND last_seen_at > UTC_TIMESTAMP(6) - INTERVAL 2 SECOND",
                fan.user_id
            ),
        )
        .await;
    assert_eq!(fresh, 1, "a poll records presence");
}

#[tokio::test(flavor = "multi_thread")]
async fn admission_never_exceeds_the_rate() {
    let rules = Rules {
        queue_active_limit: 10_000,
        queue_admit_per_sec: 4,
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let client = app.client();
    let mut fans = futures::future::join_all((0..40).map(|_| app.fan())).await;
    // The clock starts before anyone enters: entering at the head of the line admits at once.
    let started = std::time::Instant::now();
    app.enter_all(&mut fans, &concert).await;
    // Twelve ticks 200 ms apart on the database clock, however fast this machine runs them.
    let tick = Duration::from_millis(200);
    for _ in 0..12 {
        queue::admission_round(app.services()).await.expect("tick");
        app.time_passes(tick).await;
    }
    let elapsed = (started.elapsed() + tick * 12).as_secs_f64();
    let active = app.count("queue_tickets", "status = 'ACTIVE'").await;
    // Rate 4/s over `elapsed`, plus the one-second burst a fresh room allows.
    let ceiling = (4.0 * elapsed).floor() as i64 + 4;
    assert!(
        active <= ceiling,
        "{active} admitted in {elapsed:.2}s, ceiling {ceiling}"
    );
    assert!(
        active >= 8,
        "admission stalled: only {active} admitted in {elapsed:.2}s"
    );
    // By the database's own timestamps: no one-second window saw more than rate + burst.
    let busiest = app.busiest_admission_second().await;
    assert!(
        busiest <= 8,
        "a one-second window admitted {busiest}, more than rate + burst"
    );
    let tickets = futures::future::join_all(fans.iter().map(|f| client.poll(f))).await;
    let waiting: Vec<_> = tickets
        .iter()
        .filter(|t| t["status"] == "WAITING")
        .collect();
    assert_eq!(waiting.len() as i64, 40 - active);
    assert!(
        waiting
            .iter()
            .all(|t| t["estimatedWaitSeconds"].as_i64().expect("eta") >= 1)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_errors_are_coded() {
    let app = TestApp::spawn().await;
    let (concert, _) = app.concert("10.00", 1).await;
    let enter = "mutation($c: ID!) { enterQueue(concertId: $c) { token } }";
    assert_eq!(
        app.gql(enter, json!({ "c": concert }), &Auth::none())
            .await
            .code(),
        "UNAUTHENTICATED"
    );
    let fan = app.fan().await;
    assert_eq!(
        app.gql("{ queueTicket { status } }", json!({}), &fan.auth())
            .await
            .code(),
        "NOT_ADMITTED"
    );
    let bogus = Auth {
        queue_token: Some("x".repeat(43)),
        ..fan.auth()
    };
    assert_eq!(
        app.gql("{ queueTicket { status } }", json!({}), &bogus)
            .await
            .code(),
        "NOT_ADMITTED"
    );
}

/// The fans' user ids, for driving the front door below HTTP.
async fn fan_ids(app: &TestApp, n: usize) -> Vec<UserId> {
    let fans = futures::future::join_all((0..n).map(|_| app.fan())).await;
    fans.iter()
        .map(|f| UserId::parse(&f.user_id).expect("user id"))
        .collect()
}

/// A connection of its own holding the room's row locked until it is dropped (its transaction then
/// rolls back).
async fn someone_holds_the_room(app: &TestApp, concert: &str) -> encore::db::Conn {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let mut other = app.conn().await;
    other.begin_test_transaction().await.expect("begin");
    diesel::sql_query(format!(
        "SELECT * FROM queue_rooms WHERE concert_id = '{concert}' FOR UPDATE"
    ))
    .execute(&mut other)
    .await
    .expect("lock the room");
    other
}

fn concert_id(id: &str) -> ConcertId {
    ConcertId::parse(id).expect("concert id")
}

/// Entries that arrive while a batch is written make up the next one: 200 entries, two batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_arriving_together_share_transactions_and_keep_arrival_order() {
    let rules = Rules {
        queue_active_limit: 1,
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let room = concert_id(&concert);
    let fans = fan_ids(&app, 100).await;
    let services = app.services();

    // Someone else holds the room row while the crowd arrives, so whatever the first batch took,
    // everyone else is in line when it ends.
    let other = someone_holds_the_room(&app, &concert).await;

    let before = services.db.leases();
    // Every fan twice at once: a refresh inside one batch is the same ticket.
    let entering = futures::future::join_all(
        fans.iter()
            .chain(fans.iter())
            .map(|fan| queue::enter(services, None, fan, &room, None)),
    );
    let releasing = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(other);
    };
    let (tickets, ()) = tokio::join!(entering, releasing);
    let leases = services.db.leases() - before;
    // Two batches at most: the first (whatever it took before the room was free) and everyone
    // who arrived meanwhile. A batch whose first ticket stands at the head of the line also asks
    // for an admission step and reads its tickets again: 3 checkouts a batch at most.
    assert!(leases <= 6, "{leases} checkouts for 200 entries");

    let tickets: Vec<_> = tickets.into_iter().map(|t| t.expect("entered")).collect();
    assert_eq!(tickets[0].status, QueueStatus::Active);
    for (i, ticket) in tickets.iter().enumerate().take(100).skip(1) {
        assert_eq!(ticket.status, QueueStatus::Waiting);
        assert_eq!(
            ticket.position,
            i as i64 - 1,
            "fan {i} stands where they arrived"
        );
        assert_eq!(
            ticket.token,
            tickets[i + 100].token,
            "fan {i} has one ticket"
        );
    }
    assert_eq!(app.count("queue_tickets", "1=1").await, 100);
    // Sequence numbers are unique per room, so 100 of them within 1..=100 leave no gap.
    assert_eq!(
        app.count("queue_tickets", "seq BETWEEN 1 AND 100").await,
        100,
        "no gap in the line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fan_who_hangs_up_while_entering_has_one_ticket_and_gets_it_back() {
    let app = TestApp::spawn_with(
        Rules {
            queue_active_limit: 1,
            ..test_rules()
        },
        Background::NONE,
    )
    .await;
    let (concert, _) = app.concert("10.00", 1).await;
    let room = concert_id(&concert);
    let fans = fan_ids(&app, 40).await;
    let services = app.services();

    // Each entry is dropped after 0 to 3 ms: before its batch, during it, or after.
    futures::future::join_all(fans.iter().enumerate().map(|(i, fan)| {
        let gives_up = Duration::from_micros(750 * (i as u64 % 5));
        tokio::time::timeout(gives_up, queue::enter(services, None, fan, &room, None))
    }))
    .await;
    let again = futures::future::join_all(
        fans.iter()
            .map(|f| queue::enter(services, None, f, &room, None)),
    )
    .await;
    let tokens: std::collections::HashSet<_> = again
        .into_iter()
        .map(|t| t.expect("entered").token)
        .collect();
    assert_eq!(tokens.len(), 40);
    assert_eq!(app.count("queue_tickets", "1=1").await, 40);
    // Sequence numbers are unique per room, so 40 of them within 1..=40 leave no gap.
    assert_eq!(
        app.count("queue_tickets", "seq BETWEEN 1 AND 40").await,
        40,
        "no gap in the line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowded_door_refuses_at_once_and_writes_nothing_for_those_refused() {
    let rules = Rules {
        queue_entry_batch: 1,
        queue_entry_backlog: 5,
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::NONE).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let room = concert_id(&concert);
    let fans = fan_ids(&app, 20).await;
    let services = app.services();

    // Someone else holds the room row, so the first batch waits and the line fills up.
    let other = someone_holds_the_room(&app, &concert).await;
    let entering = futures::future::join_all(
        fans.iter()
            .map(|fan| queue::enter(services, None, fan, &room, None)),
    );
    let releasing = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(other);
    };
    let (results, ()) = tokio::join!(entering, releasing);

    let entered = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| encore::graphql::error::code(e).as_str())
        .collect();
    // Five wait in line, and one more when the first batch took its entry before the rest came.
    assert!(entered == 5 || entered == 6, "{entered} entered");
    assert_eq!(refused, vec!["SERVICE_UNAVAILABLE"; 20 - entered]);
    assert_eq!(
        app.count("queue_tickets", "1=1").await,
        i64::try_from(entered).expect("small")
    );
}
