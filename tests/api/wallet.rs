//! The wallet: exact decimal charges, a ledger that always adds up, idempotency keys, and
//! histories that page with cursors.

use serde_json::json;

use crate::common::TestApp;

const LEDGER: &str = "{ wallet { balance transactions { kind amount balanceAfter createdAt } } }";

#[tokio::test(flavor = "multi_thread")]
async fn a_charge_adds_to_the_balance_and_writes_the_ledger() {
    let app = TestApp::spawn().await;
    let fan = app.fan().await;
    let r = app.charge(&fan, "50000").await.ok();
    assert_eq!(r["charge"]["balance"], "50000.00");
    app.charge(&fan, "0.25").await.ok();

    let wallet = app.gql(LEDGER, json!({}), &fan.auth()).await.ok();
    assert_eq!(wallet["wallet"]["balance"], "50000.25");
    let txs = &wallet["wallet"]["transactions"];
    assert_eq!(txs[0]["amount"], "0.25", "newest first");
    assert_eq!(txs[0]["balanceAfter"], "50000.25");
    assert_eq!(txs[1]["kind"], "CHARGE");
    assert_eq!(txs[1]["balanceAfter"], "50000.00");
    app.assert_ledgers_balance().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_amounts_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let fan = app.fan().await;
    for amount in ["0", "-5", "1.001", "1e3", "abc", "1000000.01", ""] {
        assert_eq!(
            app.charge(&fan, amount).await.code(),
            "BAD_USER_INPUT",
            "{amount:?}"
        );
    }
    let number = app
        .gql(
            "mutation { charge(amount: 10, idempotencyKey: \"number\") { balance } }",
            json!({}),
            &fan.auth(),
        )
        .await;
    assert_eq!(
        number.code(),
        "BAD_USER_INPUT",
        "JSON numbers are not money"
    );
    assert_eq!(app.balance(&fan).await, "0.00");
    assert_eq!(app.count("wallet_transactions", "1=1").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_idempotency_key_applies_once_and_returns_the_first_result() {
    let app = TestApp::spawn().await;
    let fan = app.fan().await;
    let first = app.charge_with_key(&fan, "100.00", "top-up-1").await.ok();
    app.charge(&fan, "1.00").await.ok();
    let repeat = app.charge_with_key(&fan, "100.00", "top-up-1").await.ok();
    assert_eq!(
        repeat["charge"]["balance"], first["charge"]["balance"],
        "the first result, not the current balance"
    );
    assert_eq!(app.balance(&fan).await, "101.00");

    let different = app.charge_with_key(&fan, "5.00", "top-up-1").await;
    assert_eq!(different.code(), "BAD_USER_INPUT");
    assert_eq!(app.balance(&fan).await, "101.00");

    // Keys are scoped to the user.
    let other = app.fan().await;
    let theirs = app.charge_with_key(&other, "7.00", "top-up-1").await.ok();
    assert_eq!(theirs["charge"]["balance"], "7.00");
    app.assert_ledgers_balance().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ledger_page_size_is_bounded() {
    let app = TestApp::spawn().await;
    let fan = app.fan().await;
    for n in 1..=3 {
        app.charge(&fan, &format!("{n}.00")).await.ok();
    }
    let page = app
        .gql(
            "{ wallet { transactions(first: 2) { amount } } }",
            json!({}),
            &fan.auth(),
        )
        .await
        .ok();
    assert_eq!(
        page["wallet"]["transactions"],
        json!([{ "amount": "3.00" }, { "amount": "2.00" }])
    );
    for first in [0, 101] {
        let r = app
            .gql(
                "query($f: Int!) { wallet { transactions(first: $f) { amount } } }",
                json!({ "f": first }),
                &fan.auth(),
            )
            .await;
        assert_eq!(r.code(), "BAD_USER_INPUT");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_ledger_and_reservation_history_page_through_with_cursors() {
    let app = TestApp::spawn().await;
    let fan = app.fan().await;
    for i in 1..=130 {
        app.charge(&fan, &format!("{i}.00")).await.ok();
    }
    const PAGE: &str = "query($f: Int!, $a: String) { wallet { transactionsConnection(first: $f, after: $a) { edges { cursor node { amount } } pageInfo { hasNextPage hasPreviousPage endCursor } } } }";
    let mut amounts = Vec::new();
    let mut after = serde_json::Value::Null;
    let mut pages = 0;
    loop {
        let r = app
            .gql(PAGE, json!({ "f": 100, "a": after }), &fan.auth())
            .await
            .ok();
        let conn = &r["wallet"]["transactionsConnection"];
        pages += 1;
        assert_eq!(conn["pageInfo"]["hasPreviousPage"], pages > 1);
        for edge in conn["edges"].as_array().expect("edges") {
            amounts.push(edge["node"]["amount"].as_str().expect("amount").to_owned());
        }
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 2);
    let expected: Vec<String> = (1..=130).rev().map(|i| format!("{i}.00")).collect();
    assert_eq!(amounts, expected, "every entry once, newest first");
    // The old list field still works, and bad paging input is refused.
    let list = app
        .gql(
            "{ wallet { transactions(first: 3) { amount } } }",
            json!({}),
            &fan.auth(),
        )
        .await
        .ok();
    assert_eq!(list["wallet"]["transactions"][0]["amount"], "130.00");
    for (first, after) in [
        (0, json!(null)),
        (101, json!(null)),
        (10, json!("not-a-cursor")),
    ] {
        let r = app
            .gql(PAGE, json!({ "f": first, "a": after }), &fan.auth())
            .await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{first} {after}");
    }

    // Reservations page the same way.
    let (concert, dates) = app.concert("1.00", 1).await;
    let holder = app.admitted_fan(&concert).await;
    for seat in 1..=3 {
        app.hold(&holder, &concert, dates[0], seat).await.ok();
    }
    const MINE: &str = "query($a: String) { myReservationsConnection(first: 2, after: $a) { edges { node { seatNumber } } pageInfo { hasNextPage endCursor } } }";
    let first = app
        .gql(MINE, json!({ "a": null }), &holder.auth())
        .await
        .ok();
    let c = &first["myReservationsConnection"];
    assert_eq!(c["edges"].as_array().map(Vec::len), Some(2));
    assert_eq!(c["pageInfo"]["hasNextPage"], true);
    let second = app
        .gql(
            MINE,
            json!({ "a": c["pageInfo"]["endCursor"] }),
            &holder.auth(),
        )
        .await
        .ok();
    let c2 = &second["myReservationsConnection"];
    assert_eq!(c2["edges"].as_array().map(Vec::len), Some(1));
    assert_eq!(c2["pageInfo"]["hasNextPage"], false);
    let mut seats: Vec<i64> = c["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(c2["edges"].as_array().into_iter().flatten())
        .map(|e| e["node"]["seatNumber"].as_i64().expect("seat"))
        .collect();
    seats.sort_unstable();
    assert_eq!(seats, vec![1, 2, 3]);
}
