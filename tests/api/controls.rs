//! Live queue controls and the operator's view: a pause holds on every instance and waiters see
//! it, resuming restarts admission, every change is recorded, and `queueStats` reads the room.

use std::time::Duration;

use encore::background::Background;
use encore::config::Rules;
use serde_json::{Value, json};

use crate::common::ws::{MODERN, WsClient};
use crate::common::{Client, TestApp, test_rules};

const CONTROLS: &str = "mutation($c: ID!, $i: QueueControlsInput!) { setQueueControls(concertId: $c, input: $i) { paused admitPerSecond activeLimit } }";
const STATS: &str = "query($c: ID!) { queueStats(concertId: $c) { waiting active admittedTotal admittedLastMinute abandonedTotal seatsAvailable seatsHeld seatsSold soldOut controls { paused admitPerSecond activeLimit } } }";
const WAIT: Duration = Duration::from_secs(10);

fn one_at_a_time() -> Rules {
    Rules {
        queue_active_limit: 1,
        queue_tick: Duration::from_millis(200),
        ..test_rules()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_set_on_one_instance_stops_admission_on_both_and_resuming_restarts_it() {
    let app = TestApp::spawn_with(one_at_a_time(), Background::ALL).await;
    let b = TestApp::instance(&app.db, one_at_a_time(), Background::ALL).await;
    let b_client = Client::for_server(&b);
    let (concert, dates) = app.concert("10.00", 1).await;
    let operator = app.operator().await;

    let first = app.admitted_fan(&concert).await;
    let mut waiting = app.fan().await;
    b_client.enter_queue(&mut waiting, &concert).await;
    let mut watcher = WsClient::connect(
        &b.url(),
        MODERN,
        json!({ "authorization": format!("Bearer {}", waiting.token), "queueToken": waiting.queue_token }),
    )
    .await
    .expect("ack");
    watcher
        .subscribe(
            "q",
            "subscription { queueTicket { status position paused } }",
            json!({}),
        )
        .await;
    let now = watcher.next_data("q", WAIT).await.expect("ticket");
    assert_eq!(
        now["queueTicket"],
        json!({ "status": "WAITING", "position": 0, "paused": false })
    );

    // Paused through instance B.
    let paused = b_client
        .gql(
            CONTROLS,
            json!({ "c": concert, "i": { "paused": true } }),
            &operator.auth(),
        )
        .await
        .ok();
    assert_eq!(
        paused["setQueueControls"],
        json!({ "paused": true, "admitPerSecond": 10000, "activeLimit": 1 })
    );
    let seen = watcher.next_data("q", WAIT).await.expect("pause pushed");
    assert_eq!(seen["queueTicket"]["paused"], true);

    // The only turn ends with a purchase; with the room paused, neither instance admits the
    // next fan over many ticks of both.
    app.charge(&first, "10.00").await.ok();
    let hold = app.hold(&first, &concert, dates[0], 1).await.ok();
    app.pay(&first, hold["holdSeat"]["id"].as_str().expect("id"))
        .await
        .ok();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let polled = app.poll(&waiting).await;
    assert_eq!(polled["status"], "WAITING");
    let stats = app
        .gql(STATS, json!({ "c": concert }), &operator.auth())
        .await
        .ok();
    assert_eq!(stats["queueStats"]["waiting"], 1);
    assert_eq!(stats["queueStats"]["active"], 0);
    assert_eq!(stats["queueStats"]["controls"]["paused"], true);

    // Resumed through A: admitted within a tick or two, and pushed.
    app.gql(
        CONTROLS,
        json!({ "c": concert, "i": { "paused": false, "admitPerSecond": 5 } }),
        &operator.auth(),
    )
    .await
    .ok();
    let mut statuses = Vec::new();
    while let Some(update) = watcher.next_data("q", WAIT).await {
        statuses.push(update["queueTicket"]["status"].clone());
        if update["queueTicket"]["status"] == "ACTIVE" {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&json!("ACTIVE")), "{statuses:?}");

    // Who changed what, and when.
    let changes: Vec<(String, Option<bool>, Option<i64>)> = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use encore::db::schema::queue_control_changes as c;
        let mut conn = app.conn().await;
        c::table
            .order(c::changed_at.asc())
            .select((c::changed_by, c::paused, c::admit_per_sec))
            .load::<(String, Option<bool>, Option<u32>)>(&mut conn)
            .await
            .expect("audit rows")
            .into_iter()
            .map(|(by, p, r)| (by, p, r.map(i64::from)))
            .collect()
    };
    assert_eq!(
        changes,
        vec![
            (operator.user_id.clone(), Some(true), None),
            (operator.user_id.clone(), Some(false), Some(5)),
        ]
    );
    let audit = app
        .gql(
            "query($c: ID!) { queueControlChanges(concertId: $c) { changedBy paused admitPerSecond activeLimit } }",
            json!({ "c": concert }),
            &operator.auth(),
        )
        .await
        .ok();
    assert_eq!(
        audit["queueControlChanges"],
        json!([
            { "changedBy": operator.user_id, "paused": true, "admitPerSecond": null, "activeLimit": null },
            { "changedBy": operator.user_id, "paused": false, "admitPerSecond": 5, "activeLimit": null },
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_watch_the_room_live_and_out_of_range_controls_are_refused() {
    let rules = Rules {
        queue_active_limit: 2,
        queue_tick: Duration::from_millis(200),
        ..test_rules()
    };
    let app = TestApp::spawn_with(rules, Background::ALL).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let operator = app.operator().await;
    let fan = app.admitted_fan(&concert).await;

    for bad in [
        json!({ "admitPerSecond": 0 }),
        json!({ "activeLimit": -1 }),
        json!({ "admitPerSecond": 1_000_000 }),
    ] {
        let r = app
            .gql(
                CONTROLS,
                json!({ "c": concert, "i": bad }),
                &operator.auth(),
            )
            .await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{bad}");
    }
    assert_eq!(app.count("queue_control_changes", "1=1").await, 0);

    let mut ws = WsClient::connect(
        &app.server.url(),
        MODERN,
        json!({ "authorization": format!("Bearer {}", operator.token) }),
    )
    .await
    .expect("ack");
    ws.subscribe(
        "s",
        "subscription($c: ID!) { queueStats(concertId: $c) { waiting active admittedTotal seatsAvailable controls { activeLimit } } }",
        json!({ "c": concert }),
    )
    .await;
    let first = ws.next_data("s", WAIT).await.expect("stats");
    assert_eq!(
        first["queueStats"],
        json!({ "waiting": 0, "active": 1, "admittedTotal": 1, "seatsAvailable": 50, "controls": { "activeLimit": 2 } })
    );
    // Two more fans: one admitted (limit 2), one waiting; the feed shows it within a few ticks.
    for _ in 0..2 {
        let mut f = app.fan().await;
        app.enter_queue(&mut f, &concert).await;
    }
    let mut last = Value::Null;
    for _ in 0..30 {
        last = ws.next_data("s", WAIT).await.expect("a tick")["queueStats"].clone();
        if last["waiting"] == 1 && last["active"] == 2 {
            break;
        }
    }
    assert_eq!(
        (last["waiting"].clone(), last["active"].clone()),
        (json!(1), json!(2)),
        "{last}"
    );

    // Fans may not watch.
    let mut fan_ws = WsClient::connect(
        &app.server.url(),
        MODERN,
        json!({ "authorization": format!("Bearer {}", fan.token) }),
    )
    .await
    .expect("ack");
    fan_ws
        .subscribe(
            "s",
            "subscription($c: ID!) { queueStats(concertId: $c) { waiting } }",
            json!({ "c": concert }),
        )
        .await;
    let refused = fan_ws.next(WAIT).await.expect("an answer");
    let text = refused.to_string();
    assert!(text.contains("FORBIDDEN"), "{text}");
    let by_query = app.gql(STATS, json!({ "c": concert }), &fan.auth()).await;
    assert_eq!(by_query.code(), "FORBIDDEN");
    let by_mutation = app
        .gql(
            CONTROLS,
            json!({ "c": concert, "i": { "paused": true } }),
            &fan.auth(),
        )
        .await;
    assert_eq!(by_mutation.code(), "FORBIDDEN");
}
