//! Hostile requests: each is refused before it costs anything, with a GraphQL-shaped body and a
//! stable `extensions.code`, and the server serves everyone else afterwards.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use encore::config::Rules;
use encore::domain::rules::Quotas;

use crate::common::{Auth, TestApp, test_rules};

/// Fragments F0..F{n-1}, each spreading the next twice: 2^n fields once expanded.
fn fan_out(n: usize) -> String {
    let mut query = String::from("query { ...F0 }");
    for i in 0..n {
        let next = if i + 1 < n {
            format!("a: concerts {{ id }} ...F{} ...F{}", i + 1, i + 1)
        } else {
            "__typename".to_owned()
        };
        query.push_str(&format!(" fragment F{i} on Query {{ {next} }}"));
    }
    query
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exponential_fragment_fan_out_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let query = fan_out(30);
    assert!(
        query.len() < 2048,
        "the attack is small: {} bytes",
        query.len()
    );
    let started = Instant::now();
    let r = app.gql(&query, json!({}), &Auth::none()).await;
    let took = started.elapsed();
    eprintln!("fan-out n=30 refused in {took:?}");
    assert_eq!(r.code(), "GRAPHQL_VALIDATION_FAILED", "{}", r.body);
    assert!(r.message().contains("fields"), "{}", r.message());
    // Unbounded, this took minutes of CPU; measured it is a few milliseconds.
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // As many as fit in the body limit.
    let aliases: String = (0..3_000).map(|i| format!("a{i}: __typename ")).collect();
    let r = app
        .gql(&format!("{{ {aliases} }}"), json!({}), &Auth::none())
        .await;
    assert_eq!(r.code(), "GRAPHQL_VALIDATION_FAILED");

    // Everyone else is still served.
    app.gql("{ concerts { id } }", json!({}), &Auth::none())
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_body_is_refused_before_it_is_read() {
    let app = TestApp::spawn().await;
    // Announce 50 MB and send only the start: the answer must come without the rest.
    let mut socket = TcpStream::connect(app.server.addr).await.expect("connect");
    let head = "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 52428800\r\n\r\n{\"query\":\"";
    socket.write_all(head.as_bytes()).await.expect("write");
    socket.write_all(&[b'a'; 4096]).await.expect("write");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut answer))
        .await
        .expect("answered without the rest of the body")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("PAYLOAD_TOO_LARGE"), "{answer}");

    // Without a length (chunked), it is cut at the limit while reading.
    let mut socket = TcpStream::connect(app.server.addr).await.expect("connect");
    let chunk = vec![b'a'; 70_000];
    let mut request = b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                        Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
    request.extend_from_slice(&chunk);
    request.extend_from_slice(b"\r\n0\r\n\r\n");
    socket.write_all(&request).await.expect("write");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut answer))
        .await
        .expect("answered")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("PAYLOAD_TOO_LARGE"), "{answer}");
}

/// POSTs `body` as JSON and returns status and body.
async fn post_raw(app: &TestApp, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = app.http.post(&app.url).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_batches_and_simple_requests_get_coded_refusals() {
    let app = TestApp::spawn().await;
    let json_type = [("Content-Type", "application/json")];
    let (status, body) = post_raw(&app, "{{{{", &json_type).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    assert!(
        !body.to_string().contains("InvalidRequest"),
        "no Rust debug text: {body}"
    );
    assert!(body.get("data").is_none());

    let batch = r#"[{"query":"{ concerts { id } }"},{"query":"{ concerts { id } }"}]"#;
    let (status, body) = post_raw(&app, batch, &json_type).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");

    // What a cross-site form could send without a preflight.
    let query =
        r#"{"query":"mutation { charge(amount: \"1.00\", idempotencyKey: \"k\") { balance } }"}"#;
    let (status, body) = post_raw(&app, query, &[("Content-Type", "text/plain")]).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "CSRF_PREVENTED");
}

async fn get(
    app: &TestApp,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (u16, String, Value) {
    let mut request = app.http.get(&app.url).query(params);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, media, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_run_over_get_and_mutations_do_not() {
    let app = TestApp::spawn().await;
    let (concert, _) = app.concert("10.00", 1).await;
    let preflight = [("Apollo-Require-Preflight", "true")];
    let query = "query Dates($c: ID!) { availableDates(concertId: $c) }";
    let variables = json!({ "c": concert }).to_string();
    let (status, media, body) = get(
        &app,
        &[
            ("query", query),
            ("variables", &variables),
            ("operationName", "Dates"),
        ],
        &preflight,
    )
    .await;
    // Reached execution (the turn gate answers), so the URL-encoded variables were read.
    assert_eq!(status, 200, "{body}");
    assert!(media.starts_with("application/json"), "no Accept: {media}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_ADMITTED");

    let (status, _, body) = get(
        &app,
        &[(
            "query",
            "mutation { charge(amount: \"1.00\", idempotencyKey: \"k\") { balance } }",
        )],
        &preflight,
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "METHOD_NOT_ALLOWED"
    );

    let (status, _, body) = get(&app, &[("query", "{ concerts { id } }")], &[]).await;
    assert_eq!(status, 400, "a GET without a preflight header: {body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "CSRF_PREVENTED");
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_before_execution_follow_the_media_type_the_client_accepts() {
    let app = TestApp::spawn().await;
    let bad = json!({ "query": "{ nope }" }).to_string();
    let (status, body) = post_raw(
        &app,
        &bad,
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ],
    )
    .await;
    assert_eq!(status, 200, "legacy clients get 200");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert!(
        body.get("data").is_none(),
        "no data before execution: {body}"
    );

    let (status, body) = post_raw(
        &app,
        &bad,
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/graphql-response+json"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.get("data").is_none());

    let (status, body) = post_raw(
        &app,
        &bad,
        &[
            ("Content-Type", "application/json"),
            ("Accept", "text/plain"),
        ],
    )
    .await;
    assert_eq!(status, 406);
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_ACCEPTABLE");
}

#[tokio::test(flavor = "multi_thread")]
async fn production_hides_graphiql_and_introspection() {
    let limits = encore::config::ServerLimits {
        production: true,
        ..Default::default()
    };
    let app = TestApp::spawn_custom(
        crate::common::test_rules(),
        encore::background::Background::NONE,
        &crate::common::test_pool(4),
        limits,
    )
    .await;
    let page = app
        .http
        .get(&app.url)
        .header("Accept", "text/html")
        .send()
        .await
        .expect("request");
    assert_eq!(page.status(), 400);
    let asset = app
        .http
        .get(format!("{}/graphiql/graphiql.js", app.server.url()))
        .send()
        .await
        .expect("request");
    assert_eq!(asset.status(), 404, "no GraphiQL assets in production");
    let r = app
        .gql("{ __schema { types { name } } }", json!({}), &Auth::none())
        .await;
    assert_eq!(
        r.code(),
        "GRAPHQL_VALIDATION_FAILED",
        "introspection is off"
    );
    app.gql("{ concerts { id } }", json!({}), &Auth::none())
        .await
        .ok();
    // A misspelt name is refused without naming the ones that exist: suggestions would hand out
    // the schema introspection hides.
    let misspelt = app
        .gql("{ concrts { id } }", json!({}), &Auth::none())
        .await;
    assert_eq!(misspelt.code(), "GRAPHQL_VALIDATION_FAILED");
    assert!(
        !misspelt.body.to_string().contains("Did you mean"),
        "{}",
        misspelt.body
    );
    let development = TestApp::spawn().await;
    let suggested = development
        .gql("{ concrts { id } }", json!({}), &Auth::none())
        .await;
    assert!(
        suggested.body.to_string().contains("Did you mean"),
        "{}",
        suggested.body
    );
}

/// Resident memory of this process, in MiB.
fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_storm_is_bounded_in_memory_and_answered_at_once() {
    // The product's hashing bounds (test rules lift them for crowd tests); rate limits off, so
    // every sign-in reaches the hasher.
    let rules = encore::config::Rules {
        queue_active_limit: 10_000,
        quotas: Quotas::unlimited(),
        ..Default::default()
    };
    let app = TestApp::spawn_with(rules, encore::background::Background::NONE).await;
    let fan = app.fan().await;
    let before = rss_mib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampling = {
        let peak = std::sync::Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_mib(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let sign_in =
        "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { token } }";
    let storm = (0..200).map(|i| {
        let client = app.client();
        let email = if i % 2 == 0 {
            fan.email.clone()
        } else {
            format!("nobody{i}@fans.test")
        };
        async move {
            client
                .gql(
                    sign_in,
                    json!({ "e": email, "p": "wrong-password" }),
                    &Auth::none(),
                )
                .await
        }
    });
    let (answers, during) = tokio::join!(futures::future::join_all(storm), async {
        app.gql("{ concerts { id } }", json!({}), &Auth::none())
            .await
    });
    sampling.abort();
    during.ok();
    let mut codes = std::collections::BTreeMap::new();
    for answer in &answers {
        let code = answer.code();
        if code == "SERVICE_UNAVAILABLE" {
            assert!(answer.body["errors"][0]["extensions"]["retryAfter"].is_u64());
        }
        *codes.entry(code).or_insert(0) += 1;
    }
    let grew = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before);
    eprintln!("200 wrong sign-ins: {codes:?}; RSS grew at most {grew} MiB");
    assert!(
        // RATE_LIMITED: the attacked account's sign-in locked after five wrong passwords.
        codes.keys().all(
            |c| ["UNAUTHENTICATED", "SERVICE_UNAVAILABLE", "RATE_LIMITED"].contains(&c.as_str())
        ),
        "{codes:?}"
    );
    assert!(
        codes.contains_key("SERVICE_UNAVAILABLE"),
        "the hashing queue is bounded"
    );
    // Two hashing threads with one 19 MiB block each (measured +52 MiB); hashing on the blocking
    // pool kept +300 to +528 MiB after this storm, and unbounded it took gigabytes.
    assert!(grew < 160, "RSS grew {grew} MiB");
}

fn with_quotas(quotas: Quotas) -> Rules {
    Rules {
        quotas,
        ..test_rules()
    }
}

const SIGN_IN: &str =
    "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { token } }";

#[tokio::test(flavor = "multi_thread")]
async fn brute_force_on_one_account_locks_its_sign_in_for_a_doubling_time() {
    let quotas = Quotas {
        sign_in_lockout_after: 3,
        ..Quotas::unlimited()
    };
    let app = TestApp::spawn_with(with_quotas(quotas), encore::background::Background::NONE).await;
    let fan = app.fan().await;
    let attempt = async |password: &str| {
        app.gql(
            SIGN_IN,
            json!({ "e": fan.email, "p": password }),
            &Auth::none(),
        )
        .await
    };
    for _ in 0..3 {
        assert_eq!(attempt("wrong-password").await.code(), "UNAUTHENTICATED");
    }
    let locked = attempt("password-123").await;
    assert_eq!(
        locked.code(),
        "RATE_LIMITED",
        "even the right password waits"
    );
    assert!(locked.body["errors"][0]["extensions"]["retryAfter"].as_u64() >= Some(1));

    // The lock lapses on the database clock; one more wrong password doubles it.
    app.time_passes_for_sign_in().await;
    assert_eq!(attempt("wrong-password").await.code(), "UNAUTHENTICATED");
    let again = attempt("password-123").await;
    assert_eq!(again.code(), "RATE_LIMITED");
    assert!(again.body["errors"][0]["extensions"]["retryAfter"].as_u64() >= Some(2));

    app.time_passes_for_sign_in().await;
    attempt("password-123").await.ok();
    assert_eq!(
        app.count("sign_in_failures", "1=1").await,
        0,
        "a right password ends the run"
    );
}

/// The answers to a run of wrong passwords for `email`: (code, message, retryAfter, time).
async fn failed_sign_ins(
    app: &TestApp,
    email: &str,
    n: usize,
) -> Vec<(String, String, Option<u64>, Duration)> {
    let mut answers = Vec::new();
    for _ in 0..n {
        let started = std::time::Instant::now();
        let r = app
            .gql(
                SIGN_IN,
                json!({ "e": email, "p": "wrong-password" }),
                &Auth::none(),
            )
            .await;
        answers.push((
            r.code(),
            r.message(),
            r.body["errors"][0]["extensions"]["retryAfter"].as_u64(),
            started.elapsed(),
        ));
        // Past each lock, so the next failure extends the schedule.
        app.time_passes_for_sign_in().await;
    }
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lockout_answers_an_unknown_email_exactly_as_a_known_one() {
    let quotas = Quotas {
        sign_in_lockout_after: 3,
        ..Quotas::unlimited()
    };
    let app = TestApp::spawn_with(with_quotas(quotas), encore::background::Background::NONE).await;
    let fan = app.fan().await;
    let nobody = format!("nobody-{}@fans.test", crate::common::unique_name());
    // Without lapsing the locks: the run as an attacker meets it.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..6 {
        for (email, into) in [(&fan.email, &mut known), (&nobody, &mut unknown)] {
            let r = app
                .gql(
                    SIGN_IN,
                    json!({ "e": email, "p": "wrong-password" }),
                    &Auth::none(),
                )
                .await;
            into.push((r.code(), r.message()));
        }
    }
    eprintln!("known: {known:?}\nunknown: {unknown:?}");
    assert_eq!(known, unknown, "codes and messages");
    assert!(
        known.iter().any(|(code, _)| code == "RATE_LIMITED"),
        "{known:?}"
    );

    // The lock schedule: the same doubling for both (each lock lapsed before the next try).
    app.time_passes_for_sign_in().await;
    let known = failed_sign_ins(&app, &fan.email, 4).await;
    let unknown = failed_sign_ins(&app, &nobody, 4).await;
    let schedule = |answers: &[(String, String, Option<u64>, Duration)]| {
        answers
            .iter()
            .map(|(c, m, r, _)| (c.clone(), m.clone(), *r))
            .collect::<Vec<_>>()
    };
    assert_eq!(schedule(&known), schedule(&unknown));
    // And the same cost: both verify a password hash (the median of the refusals' times).
    let median = |answers: &[(String, String, Option<u64>, Duration)]| {
        let mut times: Vec<Duration> = answers.iter().map(|a| a.3).collect();
        times.sort();
        times[times.len() / 2]
    };
    let (k, u) = (median(&known), median(&unknown));
    eprintln!("median answer: known {k:?}, unknown {u:?}");
    assert!(u * 4 > k && k * 4 > u, "known {k:?} vs unknown {u:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attacker_elsewhere_locks_only_themself_out() {
    let quotas = Quotas {
        sign_in_lockout_after: 3,
        ..Quotas::unlimited()
    };
    let app = TestApp::behind_proxy(quotas).await;
    let fan = app.fan().await;
    let sign_in = async |from: &str, password: &str| -> Value {
        app.http
            .post(&app.url)
            .header("x-forwarded-for", from)
            .json(&json!({ "query": SIGN_IN, "variables": { "e": fan.email, "p": password } }))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    };
    for _ in 0..5 {
        sign_in("203.0.113.66", "wrong-password").await;
    }
    let attacker = sign_in("203.0.113.66", "password-123").await;
    assert_eq!(
        attacker["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{attacker}"
    );
    let owner = sign_in("198.51.100.7", "password-123").await;
    assert!(owner["data"]["signIn"]["token"].is_string(), "{owner}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_cannot_flood_sign_ups_sign_ins_or_the_queue() {
    let quotas = Quotas {
        sign_ups_per_hour: 3,
        sign_ins_per_min: 4,
        queue_entries_per_min: 2,
        ..Quotas::unlimited()
    };
    let app = TestApp::spawn_with(with_quotas(quotas), encore::background::Background::NONE).await;
    let (concert, _) = app.concert("10.00", 1).await;
    let mut fans = Vec::new();
    for _ in 0..3 {
        fans.push(app.fan().await);
    }
    let name = crate::common::unique_name();
    let fourth = app
        .gql(
            "mutation($u: String!, $e: String!) { signUp(username: $u, email: $e, password: \"password-123\") { token } }",
            json!({ "u": name, "e": format!("{name}@fans.test") }),
            &Auth::none(),
        )
        .await;
    assert_eq!(fourth.code(), "RATE_LIMITED");
    assert!(fourth.body["errors"][0]["extensions"]["retryAfter"].as_u64() > Some(60));
    assert_eq!(
        app.count("users", "1=1").await,
        3,
        "the refused sign-up wrote nothing"
    );

    let none = Auth::none();
    let attempt = json!({ "e": fans[0].email, "p": "nope-nope" });
    let codes: Vec<String> =
        futures::future::join_all((0..5).map(|_| app.gql(SIGN_IN, attempt.clone(), &none)))
            .await
            .iter()
            .map(|r| r.code())
            .collect();
    assert_eq!(
        codes.iter().filter(|c| *c == "RATE_LIMITED").count(),
        1,
        "{codes:?}"
    );

    let mut entered = 0;
    let mut limited = 0;
    for fan in &mut fans {
        let r = app
            .gql(
                "mutation($c: ID!) { enterQueue(concertId: $c) { status } }",
                json!({ "c": concert }),
                &fan.auth(),
            )
            .await;
        if r.is_ok() {
            entered += 1
        } else {
            assert_eq!(r.code(), "RATE_LIMITED");
            limited += 1
        }
    }
    assert_eq!((entered, limited), (2, 1));
    assert_eq!(app.count("queue_tickets", "1=1").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_flood_gets_429_and_a_trusted_proxy_tells_clients_apart() {
    let quotas = Quotas {
        requests_per_sec: 5,
        ..Quotas::unlimited()
    };
    let app = TestApp::behind_proxy(quotas).await;
    let send = |client: &'static str| {
        app.http
            .post(&app.url)
            .header("x-forwarded-for", client)
            .json(&json!({ "query": "{ concerts { id } }" }))
            .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(send("198.51.100.1").await.expect("request"));
    }
    let limited = statuses.iter().filter(|r| r.status() == 429).count();
    assert!(limited >= 2, "5 per second, 8 sent: {limited} limited");
    let refused = statuses
        .into_iter()
        .find(|r| r.status() == 429)
        .expect("a 429");
    assert!(refused.headers().get("retry-after").is_some());
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    // Another client behind the same proxy has its own budget.
    assert_eq!(send("198.51.100.2").await.expect("request").status(), 200);
}

fn sha256(query: &str) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(query.as_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn automatic_persisted_queries_register_once_then_run_by_hash_even_over_get() {
    let app = TestApp::spawn().await;
    let query = "query Concerts { concerts { id } }";
    let hash = sha256(query);
    let persisted = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let json_type = [("Content-Type", "application/json")];
    let (_, body) = post_raw(
        &app,
        &json!({ "extensions": persisted }).to_string(),
        &json_type,
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    let (status, body) = post_raw(
        &app,
        &json!({ "query": query, "extensions": persisted }).to_string(),
        &json_type,
    )
    .await;
    assert_eq!((status, body.get("errors")), (200, None), "{body}");
    let extensions = persisted.to_string();
    let (status, _, body) = get(
        &app,
        &[("extensions", &extensions)],
        &[("Apollo-Require-Preflight", "true")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["concerts"].is_array(), "{body}");

    // A mutation registered by POST does not run by hash over GET.
    let mutation = "mutation { charge(amount: \"1.00\", idempotencyKey: \"k\") { balance } }";
    let m = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256(mutation) } });
    post_raw(
        &app,
        &json!({ "query": mutation, "extensions": m }).to_string(),
        &json_type,
    )
    .await;
    let (_, _, body) = get(
        &app,
        &[("extensions", &m.to_string())],
        &[("Apollo-Require-Preflight", "true")],
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "METHOD_NOT_ALLOWED",
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_allowlist_only_trusted_documents_run() {
    let query = "query Concerts { concerts { id } }";
    let app = TestApp::with_trusted_documents(&[query]).await;
    app.gql(query, json!({}), &Auth::none()).await.ok();
    let other = app
        .gql("{ concerts { title } }", json!({}), &Auth::none())
        .await;
    assert_eq!(other.code(), "PERSISTED_QUERY_NOT_IN_LIST");
}
