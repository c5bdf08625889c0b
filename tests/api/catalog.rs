//! Concerts are public; dates and the seat map need an ACTIVE queue turn for that concert.

use serde_json::json;

use crate::common::{Auth, TestApp};

const SEATS: &str =
    "query($c: ID!, $d: Date!) { seats(concertId: $c, date: $d) { number status price } }";
const DATES: &str = "query($c: ID!) { availableDates(concertId: $c) }";

#[tokio::test(flavor = "multi_thread")]
async fn anyone_can_list_concerts_with_their_dates_and_price() {
    let app = TestApp::spawn().await;
    let (id, dates) = app.concert("150000.00", 3).await;
    let r = app
        .gql(
            "{ concerts { id title venue price dates } }",
            json!({}),
            &Auth::none(),
        )
        .await
        .ok();
    let concert = &r["concerts"][0];
    assert_eq!(concert["id"], id);
    assert_eq!(concert["price"], "150000.00");
    let listed: Vec<String> = dates.iter().map(|d| d.to_string()).collect();
    assert_eq!(concert["dates"], json!(listed));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admitted_fan_sees_dates_and_fifty_seats() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("50000.00", 2).await;
    let fan = app.admitted_fan(&concert).await;

    let r = app
        .gql(DATES, json!({ "c": concert }), &fan.auth())
        .await
        .ok();
    assert_eq!(r["availableDates"].as_array().map(Vec::len), Some(2));

    let r = app
        .gql(
            SEATS,
            json!({ "c": concert, "d": dates[0].to_string() }),
            &fan.auth(),
        )
        .await
        .ok();
    let seats = r["seats"].as_array().expect("seats");
    assert_eq!(seats.len(), 50);
    assert_eq!(
        seats[0],
        json!({ "number": 1, "status": "AVAILABLE", "price": "50000.00" })
    );
    assert_eq!(seats[49]["number"], 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_date_whose_seats_are_all_sold_is_not_available() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("10.00", 2).await;
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.conn().await;
        diesel::sql_query(format!(
            "UPDATE seats SET status = 'SOLD' WHERE date = '{}'",
            dates[0]
        ))
        .execute(&mut conn)
        .await
        .expect("sell out");
    }
    let fan = app.admitted_fan(&concert).await;
    let r = app
        .gql(DATES, json!({ "c": concert }), &fan.auth())
        .await
        .ok();
    assert_eq!(r["availableDates"], json!([dates[1].to_string()]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seat_map_needs_an_active_turn_for_that_concert() {
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("50000.00", 1).await;
    let (other_concert, _) = app.concert("50000.00", 1).await;
    let fan = app.fan().await;
    let vars = json!({ "c": concert, "d": dates[0].to_string() });

    assert_eq!(
        app.gql(SEATS, vars.clone(), &fan.auth()).await.code(),
        "NOT_ADMITTED",
        "no queue token"
    );
    assert_eq!(
        app.gql(DATES, json!({ "c": concert }), &fan.auth())
            .await
            .code(),
        "NOT_ADMITTED"
    );

    let unknown = Auth {
        queue_token: Some("not-a-real-token".into()),
        ..fan.auth()
    };
    assert_eq!(
        app.gql(SEATS, vars.clone(), &unknown).await.code(),
        "NOT_ADMITTED"
    );

    let elsewhere = app.admitted_fan(&other_concert).await;
    assert_eq!(
        app.gql(SEATS, vars.clone(), &elsewhere.auth()).await.code(),
        "NOT_ADMITTED",
        "token for another concert"
    );

    let owner = app.admitted_fan(&concert).await;
    let borrowed = Auth {
        queue_token: owner.queue_token.clone(),
        ..fan.auth()
    };
    assert_eq!(
        app.gql(SEATS, vars, &borrowed).await.code(),
        "FORBIDDEN",
        "another user's token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_concerts_and_dates_are_not_found_and_bad_ids_are_bad_input() {
    let app = TestApp::spawn().await;
    let (concert, _) = app.concert("50000.00", 1).await;
    let fan = app.admitted_fan(&concert).await;
    let r = app
        .gql(
            SEATS,
            json!({ "c": concert, "d": "2031-01-01" }),
            &fan.auth(),
        )
        .await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = app
        .gql(
            SEATS,
            json!({ "c": concert, "d": "01/01/2031" }),
            &fan.auth(),
        )
        .await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    let r = app.gql(DATES, json!({ "c": "42" }), &fan.auth()).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");

    let mut fan = app.fan().await;
    let r = app
        .gql(
            "mutation($c: ID!) { enterQueue(concertId: $c) { token } }",
            json!({ "c": uuid::Uuid::now_v7().to_string() }),
            &fan.auth(),
        )
        .await;
    assert_eq!(r.code(), "NOT_FOUND");
    fan.queue_token = None;
}
