//! The service around the API: SDL in sync, health, GraphiQL, metrics, error hygiene.

use serde_json::json;

use crate::common::{Auth, TestApp};

#[test]
fn schema_graphql_is_the_sdl_of_the_served_schema() {
    let sdl = encore::graphql::sdl();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &sdl).expect("write schema.graphql");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema.graphql is out of date: run `UPDATE_SCHEMA=1 cargo test schema_graphql` and commit it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_a_reachable_database() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .get(format!("{}/health", app.server.url()))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["database"], "up");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_is_503_when_the_database_is_unreachable() {
    let server = TestApp::with_dead_database().await;
    let response = reqwest::get(format!("{}/health", server.url()))
        .await
        .expect("request");
    assert_eq!(response.status(), 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_is_service_unavailable_fast_and_leaks_nothing() {
    let server = TestApp::with_dead_database().await;
    let client = crate::common::Client::for_server(&server);
    let started = std::time::Instant::now();
    let r = client
        .gql("{ concerts { id } }", json!({}), &Auth::none())
        .await;
    assert_eq!(r.code(), "SERVICE_UNAVAILABLE", "{}", r.body);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "answered after {:?}",
        started.elapsed()
    );
    assert!(!r.body.to_string().contains("127.0.0.1:9"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn graphiql_is_served_on_get_and_metrics_in_prometheus_format() {
    let app = TestApp::spawn().await;
    let page = app
        .http
        .get(format!("{}/graphql", app.server.url()))
        .header("Accept", "text/html")
        .send()
        .await
        .expect("request");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("body");
    // Self-hosted: every script and style from this server (scripts/test installs them with
    // `npm ci` in web/graphiql), nothing from a CDN.
    assert!(html.contains(r#"src="/graphiql/graphiql.js""#), "{html}");
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "{html}"
    );
    for (asset, kind) in [
        ("react.js", "text/javascript"),
        ("react-dom.js", "text/javascript"),
        ("graphql-ws.js", "text/javascript"),
        ("graphiql.js", "text/javascript"),
        ("graphiql.css", "text/css"),
    ] {
        let r = app
            .http
            .get(format!("{}/graphiql/{asset}", app.server.url()))
            .send()
            .await
            .expect("asset");
        assert_eq!(r.status(), 200, "{asset}");
        assert_eq!(r.headers()["content-type"], kind, "{asset}");
        assert!(r.bytes().await.expect("body").len() > 1000, "{asset}");
    }
    let unknown = app
        .http
        .get(format!(
            "{}/graphiql/..%2F..%2FCargo.toml",
            app.server.url()
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(unknown.status(), 404);

    app.gql("{ concerts { id } }", json!({}), &Auth::none())
        .await
        .ok();
    let metrics = app
        .http
        .get(app.server.metrics_url().expect("metrics served"))
        .send()
        .await
        .expect("request");
    let text = metrics.text().await.expect("body");
    assert!(text.contains("http_requests_total"), "{text}");
    // Only there: the service port does not hand what an instance counts to whoever asks.
    let public = app
        .http
        .get(format!("{}/metrics", app.server.url()))
        .send()
        .await
        .expect("request");
    assert_eq!(public.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_operations_get_a_code_too() {
    let app = TestApp::spawn().await;
    let unknown_field = app.gql("{ nonsense }", json!({}), &Auth::none()).await;
    assert_eq!(unknown_field.code(), "GRAPHQL_VALIDATION_FAILED");
    let syntax = app.gql("{ concerts { id ", json!({}), &Auth::none()).await;
    assert_eq!(syntax.code(), "GRAPHQL_PARSE_FAILED");
    let wrong_type = app
        .gql(
            "mutation { charge(amount: 10.5, idempotencyKey: \"k\") { balance } }",
            json!({}),
            &Auth::none(),
        )
        .await;
    assert_eq!(
        wrong_type.code(),
        "BAD_USER_INPUT",
        "a JSON number is not a Decimal"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn graphiql_introspection_fits_the_limits_but_abusive_depth_does_not() {
    let app = TestApp::spawn().await;
    let introspection = app.gql(INTROSPECTION, json!({}), &Auth::none()).await;
    assert!(introspection.is_ok(), "{}", introspection.body);

    let nested = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {}name{} }} }} }} }} }}",
        "ofType { ".repeat(20),
        " }".repeat(20)
    );
    let deep = app.gql(&nested, json!({}), &Auth::none()).await;
    assert_eq!(deep.code(), "GRAPHQL_VALIDATION_FAILED", "{}", deep.body);
}

/// The introspection query GraphiQL and Apollo tooling send.
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn malformed_operations_over_websockets_carry_codes_too() {
    use crate::common::ws::{MODERN, WsClient};
    let app = TestApp::spawn().await;
    let mut ws = WsClient::connect(&app.server.url(), MODERN, json!({}))
        .await
        .expect("connection_init");
    for (id, query, code) in [
        (
            "p",
            "subscription { queueTicket { status ",
            "GRAPHQL_PARSE_FAILED",
        ),
        ("v", "subscription { nope }", "GRAPHQL_VALIDATION_FAILED"),
    ] {
        ws.subscribe(id, query, json!({})).await;
        let msg = loop {
            let msg = ws
                .next(std::time::Duration::from_secs(5))
                .await
                .expect("an answer");
            if msg["id"] == id && msg["type"] != "complete" {
                break msg;
            }
        };
        // The protocol's `error` message carries the list directly.
        assert_eq!(msg["type"], "error", "{msg}");
        assert_eq!(msg["payload"][0]["extensions"]["code"], code, "{msg}");
    }
}

/// Checkouts (pool leases) one call takes; nothing else uses the pool in this test.
async fn checkouts(app: &TestApp, query: &str, variables: serde_json::Value, auth: &Auth) -> u64 {
    let before = app.services().db.leases();
    let r = app.gql(query, variables, auth).await;
    assert!(r.is_ok(), "{query}: {}", r.body);
    app.services().db.leases() - before
}

#[tokio::test(flavor = "multi_thread")]
async fn mutations_take_one_checkout_per_transaction_and_do_not_read_back() {
    let rules = encore::config::Rules {
        queue_active_limit: 1,
        ..crate::common::test_rules()
    };
    let app = TestApp::spawn_with(rules, encore::background::Background::NONE).await;
    let (concert, dates) = app.concert("10.00", 1).await;
    let enter = "mutation($c: ID!) { enterQueue(concertId: $c) { token status } }";
    let mut first = app.fan().await;
    let mut second = app.fan().await;
    let mut third = app.fan().await;
    app.enter_queue(&mut first, &concert).await;
    app.enter_queue(&mut second, &concert).await;
    // Behind someone who is not at the head: one transaction, nothing else.
    let behind = checkouts(&app, enter, json!({ "c": concert }), &third.auth()).await;
    app.enter_queue(&mut third, &concert).await;
    let charge = checkouts(
        &app,
        "mutation { charge(amount: \"50.00\", idempotencyKey: \"checkouts\") { balance } }",
        json!({}),
        &first.auth(),
    )
    .await;
    // The turn gate's early check, then one transaction that returns the hold it wrote.
    let hold = checkouts(
        &app,
        "mutation($c: ID!, $d: Date!) { holdSeat(concertId: $c, date: $d, seatNumber: 3) { id status } }",
        json!({ "c": concert, "d": dates[0].to_string() }),
        &first.auth(),
    )
    .await;
    let held = app.hold(&first, &concert, dates[0], 4).await.ok()["holdSeat"]["id"].clone();
    let release = checkouts(
        &app,
        "mutation($r: ID!) { releaseSeat(reservationId: $r) { status } }",
        json!({ "r": held }),
        &first.auth(),
    )
    .await;
    app.charge(&first, "20.00").await.ok();
    let reservation = app.hold(&first, &concert, dates[0], 5).await.ok()["holdSeat"]["id"].clone();
    // The read that names the seat to lock first, then one transaction returning the payment.
    let pay = checkouts(
        &app,
        "mutation($r: ID!) { pay(reservationId: $r) { id reservation { status } } }",
        json!({ "r": reservation }),
        &first.auth(),
    )
    .await;
    eprintln!(
        "checkouts: enterQueue behind others {behind}, charge {charge}, holdSeat {hold}, \
         releaseSeat {release}, pay {pay}"
    );
    assert_eq!(behind, 1);
    assert_eq!(charge, 1);
    assert_eq!(hold, 2);
    assert_eq!(release, 2);
    assert_eq!(pay, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_app_is_served_under_app_with_its_routes() {
    // scripts/test builds web/app into web/app/dist before the suite.
    let app = TestApp::spawn().await;
    let base = app.server.url();
    for path in ["/app/", "/app/concert/anything"] {
        let page = app
            .http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("page");
        assert_eq!(page.status(), 200, "{path}");
        let html = page.text().await.expect("html");
        assert!(html.contains(r#"<div id="root">"#), "{path}: {html}");
        let script = html
            .split(r#"src=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a script");
        assert!(script.starts_with("/app/assets/"), "{script}");
        let js = app
            .http
            .get(format!("{base}{script}"))
            .send()
            .await
            .expect("script");
        assert_eq!(js.status(), 200, "{script}");
    }
    let bare = app
        .http
        .get(format!("{base}/app"))
        .send()
        .await
        .expect("redirected");
    assert_eq!(bare.url().path(), "/app/");
}
