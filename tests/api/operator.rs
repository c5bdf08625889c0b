//! The operator API: making concerts and adding dates, finding a fan's ticket to refund it, and
//! fans refused every operator operation (the subscription's refusal and a fan refunding
//! another's ticket are tested with them, in `controls` and `refund`).

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
        (
            "query($c: ID!) { ticketSearch(concertId: $c, seatNumber: 1) { reservationId } }",
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

const SEARCH: &str = "query($c: ID!, $e: String, $s: Int, $o: ID, $f: Int! = 50) { ticketSearch(concertId: $c, email: $e, seatNumber: $s, orderId: $o, first: $f) { reservationId orderId date seatNumber tier price status fanEmail fanUsername heldUntil paidAt } }";

/// `ticketSearch` of `concert` by `who` with `filters` (`e`, `s`, `o`, `f`).
async fn search(app: &TestApp, who: &Fan, concert: &str, filters: Value) -> crate::common::Gql {
    let mut variables = filters;
    variables["c"] = json!(concert);
    app.gql(SEARCH, variables, &who.auth()).await
}

/// The tickets a search found, as (reservation id, fan e-mail, status).
async fn found(
    app: &TestApp,
    who: &Fan,
    concert: &str,
    filters: Value,
) -> Vec<(String, String, String)> {
    let r = search(app, who, concert, filters.clone()).await.ok();
    r["ticketSearch"]
        .as_array()
        .unwrap_or_else(|| panic!("a list for {filters}"))
        .iter()
        .map(|t| {
            let text = |k: &str| t[k].as_str().expect(k).to_owned();
            (text("reservationId"), text("fanEmail"), text("status"))
        })
        .collect()
}

/// `fan` enters the concert's queue (admitted at once) and holds `seat` of `date`; the
/// reservation id.
async fn holds(
    app: &TestApp,
    fan: &mut Fan,
    concert: &str,
    date: chrono::NaiveDate,
    seat: i32,
) -> String {
    assert_eq!(app.enter_queue(fan, concert).await["status"], "ACTIVE");
    let hold = app.hold(fan, concert, date, seat).await.ok();
    hold["holdSeat"]["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_finds_a_fans_ticket_by_email_seat_or_order_and_refunds_it() {
    let app = TestApp::spawn().await;
    let operator = app.operator().await;
    let (concert, dates) = app.concert("40.00", 1).await;
    let (elsewhere, other_dates) = app.concert("40.00", 1).await;

    // The fan bought seat 7 of both concerts; someone else holds seat 8 of the first.
    let mut fan = app.fan().await;
    app.charge(&fan, "100.00").await.ok();
    let other_ticket = holds(&app, &mut fan, &elsewhere, other_dates[0], 7).await;
    app.pay(&fan, &other_ticket).await.ok();
    let ticket = holds(&app, &mut fan, &concert, dates[0], 7).await;
    app.pay(&fan, &ticket).await.ok();
    let mut neighbour = app.fan().await;
    let held = holds(&app, &mut neighbour, &concert, dates[0], 8).await;

    // By part of the e-mail, typed in another case.
    let part = fan.email["fan_".len()..fan.email.len() - "@fans.test".len()].to_uppercase();
    let by_email = search(
        &app,
        &operator,
        &concert,
        json!({ "e": format!(" {part}@FANS ") }),
    )
    .await
    .ok();
    let tickets = by_email["ticketSearch"].as_array().expect("list");
    assert_eq!(tickets.len(), 1, "{by_email}");
    let t = &tickets[0];
    assert_eq!(t["reservationId"], ticket.as_str());
    assert_eq!(t["date"], dates[0].to_string());
    assert_eq!(t["seatNumber"], 7);
    assert_eq!(t["tier"], "General");
    assert_eq!(t["price"], "40.00");
    assert_eq!(t["status"], "PAID");
    assert_eq!(t["fanEmail"], fan.email.as_str());
    assert_eq!(t["fanUsername"], fan.username.as_str());
    assert!(t["heldUntil"].is_string() && t["paidAt"].is_string(), "{t}");
    let order = t["orderId"].as_str().expect("order").to_owned();

    // By seat (only this concert's seat 7), by order; filters given all apply.
    let mine = vec![(ticket.clone(), fan.email.clone(), "PAID".to_owned())];
    assert_eq!(
        found(&app, &operator, &concert, json!({ "s": 7 })).await,
        mine
    );
    assert_eq!(
        found(&app, &operator, &concert, json!({ "o": order })).await,
        mine
    );
    assert_eq!(
        found(&app, &operator, &concert, json!({ "e": part, "s": 8 })).await,
        vec![]
    );
    let neighbours = found(&app, &operator, &concert, json!({ "s": 8 })).await;
    assert_eq!(
        neighbours,
        vec![(held, neighbour.email.clone(), "HELD".to_owned())]
    );
    let unpaid = search(&app, &operator, &concert, json!({ "s": 8 }))
        .await
        .ok();
    assert_eq!(unpaid["ticketSearch"][0]["paidAt"], Value::Null);
    // Newest first, at most `first`.
    let everyone = found(&app, &operator, &concert, json!({ "e": "@fans.test" })).await;
    assert_eq!(everyone.len(), 2, "{everyone:?}");
    assert_eq!(everyone[0].1, neighbour.email);
    let one = found(
        &app,
        &operator,
        &concert,
        json!({ "e": "@fans.test", "f": 1 }),
    )
    .await;
    assert_eq!(one, everyone[..1]);

    // Another concert's tickets are never returned, whichever filter finds them there.
    let theirs = found(&app, &operator, &elsewhere, json!({ "e": part })).await;
    assert_eq!(
        theirs,
        vec![(other_ticket, fan.email.clone(), "PAID".to_owned())]
    );
    assert_eq!(
        found(&app, &operator, &elsewhere, json!({ "o": order })).await,
        vec![]
    );

    // The operator refunds what they found; the search shows it.
    let refunded = app
        .gql(
            "mutation($r: ID!) { refund(reservationId: $r) { id status } }",
            json!({ "r": ticket }),
            &operator.auth(),
        )
        .await
        .ok();
    assert_eq!(refunded["refund"]["status"], "REFUNDED");
    let after = search(&app, &operator, &concert, json!({ "e": part }))
        .await
        .ok();
    assert_eq!(after["ticketSearch"][0]["reservationId"], ticket.as_str());
    assert_eq!(after["ticketSearch"][0]["status"], "REFUNDED");
    assert!(after["ticketSearch"][0]["paidAt"].is_string(), "{after}");
    assert_eq!(app.balance(&fan).await, "60.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn ticket_search_refuses_fans_and_bad_filters_and_takes_wildcards_literally() {
    let app = TestApp::spawn().await;
    let operator = app.operator().await;
    let (concert, dates) = app.concert("40.00", 1).await;

    // One fan with a '%' in their address holds a seat, another fan holds one too.
    let name = format!("pct_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let email = format!("{}%{}@fans.test", &name[..3], &name[4..]);
    let mut percent = app.sign_up_with_email(&name, &email).await;
    let theirs = holds(&app, &mut percent, &concert, dates[0], 3).await;
    let mut plain = app.fan().await;
    holds(&app, &mut plain, &concert, dates[0], 4).await;

    // '%' and '_' match only themselves: "fan%fans" would match every `fan_…@fans.test` as a
    // wildcard, "pct_" the '%' fan's "pct%…".
    let only_percent = vec![(theirs, email.clone(), "HELD".to_owned())];
    assert_eq!(
        found(&app, &operator, &concert, json!({ "e": "%" })).await,
        only_percent
    );
    assert_eq!(
        found(&app, &operator, &concert, json!({ "e": "PCT%" })).await,
        only_percent
    );
    for literal in ["fan%fans", "pct_", "\\"] {
        assert_eq!(
            found(&app, &operator, &concert, json!({ "e": literal })).await,
            vec![],
            "{literal}"
        );
    }

    // A fan may not search.
    let refused = search(&app, &plain, &concert, json!({ "s": 4 })).await;
    assert_eq!(refused.code(), "FORBIDDEN");

    // Bad filters, each with its reason.
    let bad = [
        (json!({}), "at least one of email, seatNumber or orderId"),
        (json!({ "e": "   " }), "email must be 1 to 254 characters"),
        (
            json!({ "e": "a".repeat(255) }),
            "email must be 1 to 254 characters",
        ),
        (json!({ "s": 0 }), "seatNumber"),
        (json!({ "o": "not-an-id" }), "orderId"),
        (json!({ "s": 4, "f": 0 }), "first must be between 1 and 100"),
        (
            json!({ "s": 4, "f": 101 }),
            "first must be between 1 and 100",
        ),
    ];
    for (filters, reason) in bad {
        let r = search(&app, &operator, &concert, filters.clone()).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{filters}");
        assert!(r.message().contains(reason), "{filters}: {}", r.message());
    }

    // A concert that does not exist is not an empty result.
    let missing = search(
        &app,
        &operator,
        &uuid::Uuid::now_v7().to_string(),
        json!({ "s": 1 }),
    )
    .await;
    assert_eq!(missing.code(), "NOT_FOUND");
}
