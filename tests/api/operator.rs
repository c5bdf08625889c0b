//! The operator API: making concerts and adding dates, and fans refused every operator
//! operation (the subscription's refusal and a fan refunding another's ticket are tested with
//! them, in `controls` and `refund`).

use chrono::{Days, Utc};
use serde_json::{Value, json};

use crate::common::{Fan, TestApp};

const CREATE: &str = "mutation($i: CreateConcertInput!) { createConcert(input: $i) { id title description price seatsPerDate dates saleOpensAt soldOut priceTiers { name fromSeat toSeat price } } }";

fn in_days(d: u64) -> String {
    (Utc::now().date_naive() + Days::new(d)).to_string()
}

fn tiered(seats: i32) -> Value {
    json!({
        "title": "Aurora Nights", "venue": "Olympic Stadium", "description": "The last night",
        "dates": [in_days(30)], "seatsPerDate": seats,
        "priceTiers": [
            { "name": "Floor", "fromSeat": 1, "toSeat": 10, "price": "250.00" },
            { "name": "Balcony", "fromSeat": 11, "toSeat": seats, "price": "90.00" }
        ]
    })
}

async fn create(app: &TestApp, who: &Fan, input: Value) -> crate::common::Gql {
    app.gql(CREATE, json!({ "i": input }), &who.auth()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_creates_a_concert_with_tiers_and_adds_dates() {
    let app = TestApp::spawn().await;
    let operator = app.operator().await;
    let concert = create(&app, &operator, tiered(60)).await.ok()["createConcert"].clone();
    assert_eq!(concert["title"], "Aurora Nights");
    assert_eq!(concert["description"], "The last night");
    assert_eq!(concert["seatsPerDate"], 60);
    assert_eq!(concert["price"], "90.00", "the lowest tier's price");
    assert_eq!(concert["soldOut"], false);
    assert_eq!(concert["saleOpensAt"], Value::Null);
    assert_eq!(concert["priceTiers"][0]["name"], "Floor");
    let id = concert["id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.count("seats", &format!("concert_id = '{id}'")).await,
        60
    );

    // Not on sale until its sale is scheduled: nobody slips in between.
    let mut early = app.fan().await;
    let refused = app
        .gql(
            "mutation($c: ID!) { enterQueue(concertId: $c) { status } }",
            json!({ "c": id }),
            &early.auth(),
        )
        .await;
    assert_eq!(refused.code(), "SALE_NOT_OPEN");
    assert_eq!(refused.message(), "this concert is not on sale yet");
    let listed = app
        .gql("query($c: ID!) { concert(id: $c) { onSale saleOpensAt } sale(concertId: $c) { opensAt } }", json!({ "c": id }), &early.auth())
        .await
        .ok();
    assert_eq!(
        listed,
        json!({ "concert": { "onSale": false, "saleOpensAt": null }, "sale": null })
    );
    app.open_sale_now(&operator, &id).await;
    assert_eq!(app.enter_queue(&mut early, &id).await["status"], "ACTIVE");

    // Each seat carries its tier's name and price.
    let fan = app.admitted_fan(&id).await;
    let date = in_days(30);
    let map = app
        .gql(
            "query($c: ID!, $d: Date!) { seats(concertId: $c, date: $d) { number price tier } }",
            json!({ "c": id, "d": date }),
            &fan.auth(),
        )
        .await
        .ok();
    let seats = map["seats"].as_array().expect("seats");
    assert_eq!(seats.len(), 60);
    assert_eq!(
        seats[9],
        json!({ "number": 10, "price": "250.00", "tier": "Floor" })
    );
    assert_eq!(
        seats[10],
        json!({ "number": 11, "price": "90.00", "tier": "Balcony" })
    );
    // Seat 61 is not a seat of this concert.
    let d = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").expect("date");
    assert_eq!(app.hold(&fan, &id, d, 61).await.code(), "BAD_USER_INPUT");

    let added = app
        .gql(
            "mutation($c: ID!, $d: [Date!]!) { addConcertDates(concertId: $c, dates: $d) { dates } }",
            json!({ "c": id, "d": [in_days(31), in_days(32)] }),
            &operator.auth(),
        )
        .await
        .ok();
    assert_eq!(
        added["addConcertDates"]["dates"],
        json!([in_days(30), in_days(31), in_days(32)])
    );
    assert_eq!(
        app.count(
            "seats",
            &format!("concert_id = '{id}' AND tier = 'Floor' AND price = 250.00")
        )
        .await,
        30
    );
    // A date it already plays is refused, and nothing is added.
    let again = app
        .gql(
            "mutation($c: ID!, $d: [Date!]!) { addConcertDates(concertId: $c, dates: $d) { dates } }",
            json!({ "c": id, "d": [in_days(33), in_days(31)] }),
            &operator.auth(),
        )
        .await;
    assert_eq!(again.code(), "BAD_USER_INPUT");
    assert_eq!(
        app.count("seats", &format!("concert_id = '{id}'")).await,
        180
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tiers_with_gaps_or_overlaps_and_oversized_venues_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let operator = app.operator().await;
    let mut gap = tiered(60);
    gap["priceTiers"][1]["fromSeat"] = json!(12);
    let mut overlap = tiered(60);
    overlap["priceTiers"][1]["fromSeat"] = json!(10);
    let mut short = tiered(60);
    short["priceTiers"][1]["toSeat"] = json!(59);
    let mut both = tiered(60);
    both["price"] = json!("10.00");
    let mut past = tiered(60);
    past["dates"] = json!(["2001-01-01"]);
    let too_many = tiered(i32::from(u16::MAX));
    let mut neither = tiered(60);
    neither
        .as_object_mut()
        .expect("object")
        .remove("priceTiers");
    for input in [gap, overlap, short, both, past, too_many, neither] {
        let r = create(&app, &operator, input.clone()).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{input}: {:?}", r.body);
    }
    assert_eq!(app.count("concerts", "1=1").await, 0);
    assert_eq!(app.count("seats", "1=1").await, 0);

    // One price for every seat is a single tier.
    let mut single = tiered(50);
    single.as_object_mut().expect("object").remove("priceTiers");
    single["price"] = json!("40.00");
    let one = create(&app, &operator, single).await.ok();
    assert_eq!(
        one["createConcert"]["priceTiers"],
        json!([{ "name": "General", "fromSeat": 1, "toSeat": 50, "price": "40.00" }])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fans_are_forbidden_every_operator_operation() {
    let app = TestApp::spawn().await;
    let operator = app.operator().await;
    let fan = app.fan().await;
    let concert = create(&app, &operator, tiered(20)).await.ok()["createConcert"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let operations: Vec<(&str, Value)> = vec![
        (CREATE, json!({ "i": tiered(20) })),
        (
            "mutation($c: ID!) { addConcertDates(concertId: $c, dates: [\"2099-01-01\"]) { id } }",
            json!({ "c": concert }),
        ),
        (
            "mutation($c: ID!) { scheduleSale(concertId: $c, opensAt: \"2099-01-01T00:00:00Z\") { opensAt } }",
            json!({ "c": concert }),
        ),
        (
            "mutation($c: ID!) { setQueueControls(concertId: $c, input: { paused: true }) { paused } }",
            json!({ "c": concert }),
        ),
        (
            "query($c: ID!) { queueStats(concertId: $c) { waiting } }",
            json!({ "c": concert }),
        ),
        (
            "query($c: ID!) { queueControlChanges(concertId: $c) { changedAt } }",
            json!({ "c": concert }),
        ),
    ];
    for (query, variables) in operations {
        let r = app.gql(query, variables, &fan.auth()).await;
        assert_eq!(r.code(), "FORBIDDEN", "{query}");
        let anonymous = app
            .gql(
                query,
                json!({ "c": concert, "i": tiered(20) }),
                &Default::default(),
            )
            .await;
        assert_eq!(anonymous.code(), "UNAUTHENTICATED", "{query}");
    }
    assert_eq!(app.count("concerts", "1=1").await, 1);
    assert_eq!(app.count("concert_dates", "1=1").await, 1);
    assert_eq!(app.count("sales", "opens_at IS NOT NULL").await, 0);
    assert_eq!(app.count("queue_control_changes", "1=1").await, 0);
    assert_eq!(app.count("queue_rooms", "paused").await, 0);
}
