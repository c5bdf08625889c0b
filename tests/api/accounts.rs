//! Sign-up, sign-in and who is signed in.

use serde_json::json;

use crate::common::{Auth, TestApp, unique_name};

const SIGN_UP: &str = "mutation($u: String!, $e: String!, $p: String!) { signUp(username: $u, email: $e, password: $p) { token user { id username email balance } } }";
const SIGN_IN: &str =
    "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { token user { id } } }";

#[tokio::test(flavor = "multi_thread")]
async fn a_new_fan_signs_up_signs_in_and_sees_themself() {
    let app = TestApp::spawn().await;
    let name = unique_name();
    let signed_up = app
        .gql(
            SIGN_UP,
            json!({ "u": name, "e": format!("{name}@Fans.test"), "p": "password-123" }),
            &Auth::none(),
        )
        .await
        .ok();
    let user = &signed_up["signUp"]["user"];
    assert_eq!(user["balance"], "0.00");
    assert_eq!(
        user["email"],
        format!("{name}@fans.test"),
        "emails are stored lower-cased"
    );

    let signed_in = app
        .gql(
            SIGN_IN,
            json!({ "e": format!("{name}@FANS.test"), "p": "password-123" }),
            &Auth::none(),
        )
        .await
        .ok();
    assert_eq!(signed_in["signIn"]["user"]["id"], user["id"]);

    let token = signed_in["signIn"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let me = app
        .gql(
            "{ me { id username } }",
            json!({}),
            &Auth {
                bearer: Some(token),
                ..Auth::none()
            },
        )
        .await
        .ok();
    assert_eq!(me["me"]["username"], name);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_sign_up_input_is_refused_and_creates_nothing() {
    let app = TestApp::spawn().await;
    for (u, e, p) in [
        ("ab", "short@fans.test", "password-123"),
        ("good_name", "not-an-email", "password-123"),
        ("good_name", "good@fans.test", "short"),
    ] {
        let r = app
            .gql(SIGN_UP, json!({ "u": u, "e": e, "p": p }), &Auth::none())
            .await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{u} {e} {p}");
    }
    assert_eq!(app.count("users", "1=1").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_email_or_username_is_refused() {
    let app = TestApp::spawn().await;
    let fan = app.fan().await;
    let same_email = app
        .gql(
            SIGN_UP,
            json!({ "u": unique_name(), "e": fan.email, "p": "password-123" }),
            &Auth::none(),
        )
        .await;
    assert_eq!(same_email.code(), "BAD_USER_INPUT");
    assert!(same_email.message().contains("email"));
    let same_name = app
        .gql(
            SIGN_UP,
            json!({ "u": fan.username, "e": "other@fans.test", "p": "password-123" }),
            &Auth::none(),
        )
        .await;
    assert_eq!(same_name.code(), "BAD_USER_INPUT");
    assert_eq!(app.count("users", "1=1").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_and_missing_or_forged_tokens_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let fan = app.fan().await;
    let wrong = app
        .gql(
            SIGN_IN,
            json!({ "e": fan.email, "p": "wrong-password" }),
            &Auth::none(),
        )
        .await;
    assert_eq!(wrong.code(), "UNAUTHENTICATED");
    let unknown = app
        .gql(
            SIGN_IN,
            json!({ "e": "nobody@fans.test", "p": "password-123" }),
            &Auth::none(),
        )
        .await;
    assert_eq!(unknown.code(), "UNAUTHENTICATED");

    assert_eq!(
        app.gql("{ me { id } }", json!({}), &Auth::none())
            .await
            .code(),
        "UNAUTHENTICATED"
    );
    let forged = Auth {
        bearer: Some("eyJhbGciOiJIUzI1NiJ9.e30.forged".into()),
        ..Auth::none()
    };
    assert_eq!(
        app.gql("{ me { id } }", json!({}), &forged).await.code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        app.gql("{ wallet { balance } }", json!({}), &forged)
            .await
            .code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        app.gql("{ myReservations { id } }", json!({}), &Auth::none())
            .await
            .code(),
        "UNAUTHENTICATED"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_made_an_operator_sees_the_new_role_and_unknown_emails_are_refused() {
    let app = TestApp::spawn().await;
    let fan = app.fan().await;
    let role = async || {
        app.gql("{ me { role } }", json!({}), &fan.auth())
            .await
            .ok()["me"]["role"]
            .clone()
    };
    assert_eq!(role().await, "FAN");

    // What `encore operator grant --email` runs; the email is matched however it is cased.
    let services = app.services();
    let granted = encore::domain::accounts::grant_operator(services, &fan.email.to_uppercase())
        .await
        .expect("granted");
    assert_eq!(granted.role, encore::domain::accounts::Role::Operator);
    assert_eq!(role().await, "OPERATOR");
    // Granting twice changes nothing.
    encore::domain::accounts::grant_operator(services, &fan.email)
        .await
        .expect("granted again");
    assert_eq!(app.count("users", "role = 'OPERATOR'").await, 1);

    let unknown = encore::domain::accounts::grant_operator(services, "nobody@fans.test").await;
    assert!(matches!(unknown, Err(encore::domain::Error::NotFound(_))));
    assert_eq!(app.count("users", "role = 'OPERATOR'").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_token_of_a_deleted_account_is_unauthenticated_everywhere() {
    use diesel_async::RunQueryDsl;
    let app = TestApp::spawn().await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let fan = app.admitted_fan(&concert).await;
    app.charge(&fan, "50.00").await.ok();
    let held = app.hold(&fan, &concert, dates[0], 1).await.ok();
    let reservation = held["holdSeat"]["id"].as_str().expect("id").to_owned();
    // A socket opened while the account existed.
    let payload = json!({ "authorization": format!("Bearer {}", fan.token) });
    let mut open_socket = crate::common::ws::WsClient::connect(
        &app.server.url(),
        crate::common::ws::MODERN,
        payload.clone(),
    )
    .await
    .unwrap_or_else(|_| panic!("connection_ack"));
    let mut conn = app.conn().await;
    diesel::sql_query(format!("DELETE FROM users WHERE id = '{}'", fan.user_id))
        .execute(&mut conn)
        .await
        .expect("delete the account");

    let date = dates[0].to_string();
    let calls = [
        ("{ me { id } }", json!({})),
        ("{ wallet { balance } }", json!({})),
        ("{ myReservations { id } }", json!({})),
        (
            "{ myReservationsConnection { edges { cursor } } }",
            json!({}),
        ),
        (
            "query($c: ID!) { queueChallenge(concertId: $c) { difficulty } }",
            json!({ "c": concert }),
        ),
        (
            "mutation($c: ID!) { enterQueue(concertId: $c) { status } }",
            json!({ "c": concert }),
        ),
        (
            "mutation($c: ID!, $d: Date!) { holdSeat(concertId: $c, date: $d, seatNumber: 2) { id } }",
            json!({ "c": concert, "d": date }),
        ),
        (
            "mutation($r: ID!) { releaseSeat(reservationId: $r) { id } }",
            json!({ "r": reservation }),
        ),
        (
            "mutation { charge(amount: \"1.00\", idempotencyKey: \"gone-1\") { balance } }",
            json!({}),
        ),
        (
            "mutation($r: ID!) { pay(reservationId: $r, idempotencyKey: \"gone-2\") { id } }",
            json!({ "r": reservation }),
        ),
    ];
    // (Fields a queue token opens answer from memory and only match the token's id against
    // the ticket's: there the queue token is the credential.)
    for (query, variables) in calls {
        let answer = app.gql(query, variables, &fan.auth()).await;
        assert_eq!(answer.code(), "UNAUTHENTICATED", "{query}: {}", answer.body);
    }
    // The socket opened before learns of it at its next operation.
    open_socket
        .subscribe("w", "{ wallet { balance } }", json!({}))
        .await;
    let answer = open_socket
        .next(std::time::Duration::from_secs(5))
        .await
        .expect("an answer");
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{answer}"
    );
    // A websocket presenting the token is refused at connection_init.
    for protocol in [crate::common::ws::MODERN, crate::common::ws::LEGACY] {
        let refused =
            crate::common::ws::WsClient::connect(&app.server.url(), protocol, payload.clone())
                .await;
        match refused {
            Err(crate::common::ws::Refused::Closed(code, reason)) => {
                assert_eq!(code, 4403, "{reason}");
                assert!(reason.starts_with("UNAUTHENTICATED"), "{reason}");
            }
            Err(crate::common::ws::Refused::ConnectionError(payload)) => {
                assert!(payload.to_string().contains("UNAUTHENTICATED"), "{payload}");
            }
            Ok(_) => panic!("{protocol}: a deleted account's token was acknowledged"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn look_alike_emails_are_one_identity_with_one_budget_or_refused() {
    let quotas = encore::domain::rules::Quotas {
        sign_ins_per_account_per_min: 4,
        ..encore::domain::rules::Quotas::unlimited()
    };
    let rules = encore::config::Rules {
        quotas,
        ..crate::common::test_rules()
    };
    let app = TestApp::spawn_with(rules, encore::background::Background::NONE).await;
    let name = unique_name();
    let email = format!("{name}@fans.test");
    let signed_up = app
        .gql(
            SIGN_UP,
            json!({ "u": name, "e": email, "p": "password-123" }),
            &Auth::none(),
        )
        .await
        .ok();
    let id = signed_up["signUp"]["user"]["id"].clone();
    let full_width: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' => char::from_u32(c as u32 - 'a' as u32 + 0xFF41).unwrap_or(c),
            _ => c,
        })
        .collect();
    // Spellings of the same address sign in to the same account, and share one budget.
    for spelling in [
        email.to_uppercase(),
        format!("{full_width}@fans.test"),
        format!("  {email} "),
        email.clone(),
    ] {
        let r = app
            .gql(
                SIGN_IN,
                json!({ "e": spelling, "p": "password-123" }),
                &Auth::none(),
            )
            .await
            .ok();
        assert_eq!(r["signIn"]["user"]["id"], id, "{spelling:?}");
    }
    let fifth = app
        .gql(
            SIGN_IN,
            json!({ "e": email.to_uppercase(), "p": "password-123" }),
            &Auth::none(),
        )
        .await;
    assert_eq!(
        fifth.code(),
        "RATE_LIMITED",
        "one bucket for every spelling"
    );

    // An invisible character is refused, not dropped: neither a way in nor a second identity.
    let hidden = format!("{}\u{200b}{}@fans.test", &name[..2], &name[2..]);
    let sign_up = app
        .gql(
            SIGN_UP,
            json!({ "u": unique_name(), "e": hidden, "p": "password-123" }),
            &Auth::none(),
        )
        .await;
    assert_eq!(sign_up.code(), "BAD_USER_INPUT", "{}", sign_up.body);
    // An accent is another address (the database no longer says á = a).
    let accented = format!("\u{e1}{name}@fans.test");
    let other = app
        .gql(
            SIGN_UP,
            json!({ "u": unique_name(), "e": accented, "p": "password-123" }),
            &Auth::none(),
        )
        .await
        .ok();
    assert_ne!(other["signUp"]["user"]["id"], id);
    // The same address spelt otherwise cannot be registered twice.
    let again = app
        .gql(
            SIGN_UP,
            json!({ "u": unique_name(), "e": format!("{full_width}@FANS.test"), "p": "password-123" }),
            &Auth::none(),
        )
        .await;
    assert_eq!(again.code(), "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_emails_are_normalised_once_and_collisions_are_reported_not_merged() {
    use diesel_async::RunQueryDsl;
    let app = TestApp::spawn().await;
    let mut conn = app.conn().await;
    // Rows as an older version stored them (lower-cased only), some of them look-alikes.
    let rows = [
        ("00000000-0000-7000-8000-000000000001", "ｆｕｌｌ@fans.test"),
        ("00000000-0000-7000-8000-000000000002", "dup@fans.test"),
        ("00000000-0000-7000-8000-000000000003", "ｄｕｐ@fans.test"),
        (
            "00000000-0000-7000-8000-000000000004",
            "zero\u{200b}width@fans.test",
        ),
        ("00000000-0000-7000-8000-000000000005", "plain@fans.test"),
    ];
    for (n, (id, email)) in rows.iter().enumerate() {
        diesel::sql_query(format!(
            "INSERT INTO users (id, username, email, password_hash, balance, created_at, role) \
             VALUES ('{id}', 'old_{n}', '{email}', 'x', 0, UTC_TIMESTAMP(6), 'FAN')"
        ))
        .execute(&mut conn)
        .await
        .expect("an old row");
    }
    let report = encore::domain::accounts::normalise_stored_emails(&mut conn)
        .await
        .expect("normalise");
    assert_eq!(report.normalised, 1);
    let ids =
        |list: &[encore::db::ids::UserId]| list.iter().map(|i| i.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&report.collisions), vec![rows[2].0]);
    assert_eq!(ids(&report.invalid), vec![rows[3].0]);
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::Text)]
        email: String,
    }
    let stored: Vec<Stored> = diesel::sql_query(
        "SELECT email FROM users WHERE id LIKE '00000000-0000-7000-8000-%' ORDER BY id",
    )
    .load(&mut conn)
    .await
    .expect("emails");
    let stored: Vec<&str> = stored.iter().map(|s| s.email.as_str()).collect();
    assert_eq!(
        stored,
        vec![
            "full@fans.test",
            "dup@fans.test",
            "ｄｕｐ@fans.test",
            "zero\u{200b}width@fans.test",
            "plain@fans.test"
        ],
        "nothing merged, nothing lost"
    );
    // A second pass has nothing left to do but the same two reports.
    let again = encore::domain::accounts::normalise_stored_emails(&mut conn)
        .await
        .expect("normalise");
    assert_eq!(
        (
            again.normalised,
            again.collisions.len(),
            again.invalid.len()
        ),
        (0, 1, 1)
    );
}
