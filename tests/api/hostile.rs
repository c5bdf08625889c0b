//! Documents built to break the server rather than to ask it anything: nesting thousands deep in
//! every kind of bracket, long tokens, unicode, huge numbers, deep variables. Whatever arrives,
//! over whichever transport: a coded answer, and a server still answering afterwards. (One
//! 4 KB document nested 2,000 deep once overflowed a worker's stack and aborted the process.)

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::common::ws::{LEGACY, MODERN, WsClient};
use crate::common::{Auth, TestApp};

/// `{ concert(id: [[[[ … "x" … ]]]]) { id } }`: the request that aborted the process.
pub fn deep_list_literal(levels: usize) -> String {
    format!(
        "{{ concert(id: {}\"x\"{}) {{ id }} }}",
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

/// The same with an input-object literal (`{a: {a: …}}`).
fn deep_object_literal(levels: usize) -> String {
    format!(
        "{{ concert(id: {}\"x\"{}) {{ id }} }}",
        "{a: ".repeat(levels),
        "}".repeat(levels)
    )
}

/// Every error carries a code, and the code is one of `allowed`.
fn assert_coded(body: &Value, allowed: &[&str], what: &str) {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no errors in {body}"));
    for error in errors {
        let code = error["extensions"]["code"].as_str().unwrap_or_default();
        assert!(allowed.contains(&code), "{what}: {code:?} in {body}");
    }
}

async fn health(app: &TestApp) -> u16 {
    let url = app.url.replace("/graphql", "/health/live");
    app.http
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn post_persisted(app: &TestApp, query: &str) -> Value {
    use sha2::Digest;
    let hash = format!("{:x}", sha2::Sha256::digest(query.as_bytes()));
    let body = json!({
        "query": query,
        "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } },
    });
    app.http
        .post(&app.url)
        .json(&body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

async fn get_query(app: &TestApp, query: &str) -> (u16, Value) {
    let response = app
        .http
        .get(&app.url)
        .query(&[("query", query)])
        .header("Apollo-Require-Preflight", "true")
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends `query` as an operation over a websocket of `protocol` and returns the first answer.
async fn over_websocket(app: &TestApp, protocol: &str, query: &str) -> Value {
    let mut ws = WsClient::connect(&app.server.url(), protocol, json!({}))
        .await
        .unwrap_or_else(|e| panic!("{protocol}: {e:?}"));
    ws.subscribe("deep", query, json!({})).await;
    ws.next(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("{protocol}: no answer"))
}

const REFUSED: &[&str] = &["GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"];

#[tokio::test(flavor = "multi_thread")]
async fn a_document_nested_two_thousand_deep_is_refused_on_every_path_and_the_server_lives() {
    let app = TestApp::spawn().await;
    for (kind, query) in [
        ("list", deep_list_literal(2_000)),
        ("object", deep_object_literal(2_000)),
    ] {
        let (status, body) = app
            .send(&query, json!({}), &Auth::none())
            .await
            .expect("POST answered");
        assert!(status < 500, "POST {kind}: {status}");
        assert_coded(&body, REFUSED, &format!("POST {kind}"));
        assert!(
            body.to_string().contains("QUERY_MAX_NESTING"),
            "POST {kind}: {body}"
        );

        let (status, body) = get_query(&app, &query).await;
        assert!(status < 500, "GET {kind}: {status}");
        assert_coded(&body, REFUSED, &format!("GET {kind}"));

        let body = post_persisted(&app, &query).await;
        assert_coded(&body, REFUSED, &format!("persisted {kind}"));

        for protocol in [MODERN, LEGACY] {
            let answer = over_websocket(&app, protocol, &query).await;
            let payload = match answer["type"].as_str() {
                // graphql-transport-ws: one `error` message with the errors.
                Some("error") => json!({ "errors": answer["payload"] }),
                _ => answer["payload"].clone(),
            };
            assert_coded(&payload, REFUSED, &format!("{protocol} {kind}"));
        }
        assert_eq!(health(&app).await, 200, "after {kind}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn in_allowlist_mode_a_deep_get_is_refused_before_it_is_parsed() {
    let app = TestApp::with_trusted_documents(&["query Concerts { concerts { id } }"]).await;
    let (status, body) = get_query(&app, &deep_list_literal(2_000)).await;
    assert!(status < 500, "{status}");
    assert_coded(
        &body,
        &["PERSISTED_QUERY_NOT_IN_LIST", "GRAPHQL_VALIDATION_FAILED"],
        "GET",
    );
    assert_eq!(health(&app).await, 200);
}

/// A hostile document: deep nesting of one kind, a long token, unicode, a huge number, or a
/// mixture, each at sizes that fit in a request body.
fn hostile_document() -> impl Strategy<Value = String> {
    let deep = (
        prop::sample::select(vec![
            ("[", "]"),
            ("{a: ", "}"),
            ("{ a ", "}"),
            ("(a: ", ")"),
            ("... on Query { ", "}"),
            ("[{a: ", "}]"),
        ]),
        1usize..5_000,
    )
        .prop_map(|((open, close), levels)| {
            format!(
                "{{ concert(id: {}\"x\"{}) {{ id }} }}",
                open.repeat(levels),
                close.repeat(levels)
            )
        });
    let unbalanced = (
        prop::sample::select(vec!["[", "{", "(", "]", "}", ")"]),
        1usize..20_000,
    )
        .prop_map(|(bracket, n)| bracket.repeat(n));
    let long_name = (1usize..60_000).prop_map(|n| format!("{{ {} }}", "a".repeat(n)));
    let long_string =
        (1usize..60_000).prop_map(|n| format!("{{ concert(id: \"{}\") {{ id }} }}", "[".repeat(n)));
    let huge_number = (1usize..30_000, prop::bool::ANY).prop_map(|(n, float)| {
        let digits = "9".repeat(n);
        let number = if float {
            format!("{digits}.5e99999")
        } else {
            digits
        };
        format!("{{ concert(id: {number}) {{ id }} }}")
    });
    let unicode =
        "\\PC{0,2000}".prop_map(|s: String| format!("{{ concert(id: \"{s}\") {{ {s} }} }}"));
    let anything = "(?s).{0,3000}";
    let many_tokens = (1usize..20_000).prop_map(|n| format!("{{ {} }}", "a ".repeat(n)));
    prop_oneof![
        3 => deep,
        1 => unbalanced,
        1 => long_name,
        1 => long_string,
        1 => huge_number,
        1 => unicode,
        1 => anything,
        1 => many_tokens,
    ]
}

/// Hostile variables: deeply nested JSON, huge numbers, unicode keys and values.
fn hostile_variables() -> impl Strategy<Value = String> {
    let deep = (1usize..3_000, prop::bool::ANY).prop_map(|(levels, object)| {
        let (open, close) = if object { ("{\"a\":", "}") } else { ("[", "]") };
        format!(
            "{{\"id\":{}1{}}}",
            open.repeat(levels),
            close.repeat(levels)
        )
    });
    let huge = (1usize..20_000).prop_map(|n| format!("{{\"id\":{}}}", "9".repeat(n)));
    let unicode = "\\PC{0,500}".prop_map(|s: String| json!({ s.clone(): s }).to_string());
    prop_oneof![deep, huge, unicode]
}

const ANSWERS: &[&str] = &[
    "GRAPHQL_VALIDATION_FAILED",
    "GRAPHQL_PARSE_FAILED",
    "BAD_REQUEST",
    "BAD_USER_INPUT",
    "PAYLOAD_TOO_LARGE",
    "NOT_FOUND",
    // The last entry of an error list cut at MAX_ERRORS.
    "TOO_MANY_ERRORS",
];

#[test]
fn generated_hostile_documents_and_variables_get_coded_answers_and_the_server_lives() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let app = runtime.block_on(TestApp::spawn());
    let cases = std::env::var("HOSTILE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let sent = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(
            &(hostile_document(), hostile_variables(), prop::bool::ANY),
            |(document, variables, with_variables)| {
                let raw = if with_variables {
                    format!(
                        "{{\"query\":{},\"variables\":{variables}}}",
                        Value::String(document.clone())
                    )
                } else {
                    json!({ "query": document }).to_string()
                };
                let (status, body) = runtime.block_on(async {
                    let response = app
                        .http
                        .post(&app.url)
                        .header("Content-Type", "application/json")
                        .body(raw)
                        .send()
                        .await
                        .map_err(|e| TestCaseError::fail(format!("no answer: {e:?}")))?;
                    let status = response.status().as_u16();
                    let body: Value = response
                        .json()
                        .await
                        .map_err(|e| TestCaseError::fail(format!("no JSON: {e}")))?;
                    Ok::<_, TestCaseError>((status, body))
                })?;
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                prop_assert!(status < 500, "HTTP {status}: {body}");
                if let Some(errors) = body["errors"].as_array() {
                    for error in errors {
                        let code = error["extensions"]["code"].as_str().unwrap_or_default();
                        prop_assert!(ANSWERS.contains(&code), "{code:?} in {body}");
                    }
                } else {
                    prop_assert!(body["data"].is_object(), "neither data nor errors: {body}");
                }
                Ok(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    // The same kinds of document over both websocket subprotocols, fewer of them.
    let mut runner = TestRunner::new(Config {
        cases: cases / 10,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&hostile_document(), |document| {
            // Past the websocket message cap the socket is closed (1009); that is an answer too.
            prop_assume!(document.len() < 60 * 1024);
            for protocol in [MODERN, LEGACY] {
                let answer = runtime.block_on(async {
                    let mut ws = WsClient::connect(&app.server.url(), protocol, json!({}))
                        .await
                        .map_err(|e| TestCaseError::fail(format!("{protocol}: {e:?}")))?;
                    ws.subscribe("h", &document, json!({})).await;
                    Ok::<_, TestCaseError>(ws.next(Duration::from_secs(10)).await)
                })?;
                let answer = answer.ok_or_else(|| TestCaseError::fail("no answer"))?;
                let errors = match answer["type"].as_str() {
                    Some("error") => answer["payload"].clone(),
                    _ => answer["payload"]["errors"].clone(),
                };
                if let Some(errors) = errors.as_array() {
                    for error in errors {
                        let code = error["extensions"]["code"].as_str().unwrap_or_default();
                        prop_assert!(ANSWERS.contains(&code), "{protocol}: {code:?} in {answer}");
                    }
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let alive = runtime.block_on(health(&app));
    assert_eq!(alive, 200);
    eprintln!(
        "hostile: {} documents over HTTP and {} over each websocket protocol, every answer coded",
        sent.load(std::sync::atomic::Ordering::Relaxed),
        cases / 10
    );
    runtime.block_on(async move { drop(app) });
}

/// `ticketSearch` (an operator's free-text e-mail, a seat number, an order id, a page size) with
/// generated values, odd and huge among them: every answer is a list or a coded refusal
/// (`BAD_USER_INPUT`), never a server error, and nothing in the database changes.
#[test]
fn generated_ticket_searches_get_a_list_or_a_coded_refusal_and_change_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let app = runtime.block_on(TestApp::spawn());
    let operator = runtime.block_on(app.operator());
    let (concert, _) = runtime.block_on(app.concert("40.00", 1));
    let before = runtime.block_on(app.count("reservations", "1=1"));
    let email = prop::option::of(prop_oneof![
        "\\PC{0,300}",
        "[%_\\\\@a]{1,40}",
        " {0,3}[A-Za-z0-9.@+-]{1,30} {0,3}",
    ]);
    let order = prop::option::of(prop_oneof![
        "\\PC{0,80}",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    ]);
    let seat = prop::option::of(any::<i32>());
    let first = prop_oneof![any::<i32>(), 1..=100i32];
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    // Both kinds of answer must have come, or the generator tested only one path.
    let lists = std::sync::atomic::AtomicUsize::new(0);
    let refusals = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(
            &(email, order, seat, first),
            |(email, order, seat, first)| {
                let answer = runtime.block_on(app.gql(
                    "query($c: ID!, $e: String, $s: Int, $o: ID, $f: Int!) { ticketSearch(concertId: $c, email: $e, seatNumber: $s, orderId: $o, first: $f) { reservationId fanEmail } }",
                    json!({ "c": concert, "e": email, "s": seat, "o": order, "f": first }),
                    &operator.auth(),
                ));
                let body = &answer.body;
                match body["errors"].as_array() {
                    Some(errors) => {
                        refusals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        for error in errors {
                            let code = error["extensions"]["code"].as_str().unwrap_or_default();
                            prop_assert_eq!(code, "BAD_USER_INPUT", "{}", body);
                        }
                    }
                    None => {
                        lists.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        prop_assert!(body["data"]["ticketSearch"].is_array(), "{}", body);
                    }
                }
                Ok(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let (lists, refusals) = (lists.into_inner(), refusals.into_inner());
    println!("ticketSearch: {lists} lists, {refusals} coded refusals");
    assert!(
        lists > 0 && refusals > 0,
        "{lists} lists, {refusals} refusals"
    );
    assert_eq!(runtime.block_on(app.count("reservations", "1=1")), before);
    runtime.block_on(crate::common::assert_invariants(&app.db.url));
}
