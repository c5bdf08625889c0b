//! The wallet: exact decimal charges, a ledger that always adds up, idempotency keys.

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
            "mutation { charge(amount: 10) { balance } }",
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
