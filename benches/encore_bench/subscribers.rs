//! `encore-bench subscribers`: the cost of live updates with a crowd watching.
//!
//! Starts the `encore` binary's server as a child process on a fresh database, makes `count` fans
//! with WAITING tickets in bulk, holds admission back with a full active set, opens one
//! websocket per fan subscribed to `queueTicket`, then releases admission and measures, for every
//! fan, the delay from admission (`activated_at`, database clock) to the ACTIVE push arriving.
//! Prints connections held, the server's RSS, p50/p99/max push delay and the live ticker's
//! statements per tick (from the server's `/metrics`, on its METRICS_BIND), and fails when any
//! fan's push did not arrive or nothing was measured. Runs on loopback only. A test runs it at a
//! small count (`tests/api/bench_smoke.rs`), so it cannot silently stop measuring again.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{NaiveDateTime, Utc};
use clap::Args;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use encore::db::ids::UserId;
use encore::db::{self, Conn};
use encore::domain::accounts::tokens::TokenSigner;

#[derive(Debug, Clone, Args)]
pub struct SubscribersBench {
    /// Admin URL of a MySQL/MariaDB server (no database); the bench creates and drops its own.
    #[arg(long, env = "ENCORE_BENCH_DATABASE_URL")]
    pub admin_url: String,
    /// Websocket subscribers to open.
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Admissions per second once admission is released.
    #[arg(long, default_value_t = 2_000)]
    pub admit_per_sec: u32,
    /// Connections opened at once while ramping up.
    #[arg(long, default_value_t = 200)]
    pub ramp: usize,
}

const SECRET: &str = "bench-secret-bench-secret-bench-secret!!";

pub async fn subscribers(args: SubscribersBench) -> anyhow::Result<()> {
    let admin = args.admin_url.clone();
    super::on_fresh_database(&admin, "encore_bench", async |url| run(&args, &url).await).await
}

async fn run(args: &SubscribersBench, url: &str) -> anyhow::Result<()> {
    db::migrate(url).await?;
    let n = args.count;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?.port()
    };
    let metrics_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?.port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let metrics_base = format!("http://127.0.0.1:{metrics_port}");
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_encore"))
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("METRICS_BIND", format!("127.0.0.1:{metrics_port}"))
        .env("JWT_SECRET", SECRET)
        .env("QUEUE_ACTIVE_LIMIT", n.to_string())
        .env("QUEUE_ADMIT_PER_SEC", args.admit_per_sec.to_string())
        .env("DATABASE_POOL_SIZE", "32")
        // The whole crowd comes from loopback.
        .env("RATE_LIMIT_REQUESTS_PER_SEC", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting the server")?;
    let server_pid = server.id().context("server pid")?;
    let http = reqwest_free_get(&base).await?;
    println!("server pid {server_pid} on {base} (health {http})");

    // Fans and tickets in bulk. `n` blockers fill the active set so nobody is admitted until the
    // subscribers are connected.
    let mut conn = Conn::establish(url).await?;
    let concert = prepare(&mut conn, n).await?;
    let signer = TokenSigner::new(SECRET.as_bytes(), Duration::from_secs(3600));

    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.ramp));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, NaiveDateTime)>();
    let connected = Arc::new(AtomicUsize::new(0));
    // Every queueTicket message the fans receive, to tell the ACTIVE pushes' share of the traffic.
    let received = Arc::new(AtomicUsize::new(0));
    // ACTIVE messages beyond the first per fan: a turn is news once.
    let repeated = Arc::new(AtomicUsize::new(0));
    for i in 0..n {
        let user = UserId::parse(&user_id(i)).context("bench user ids are UUIDs")?;
        let token = signer.issue(&user)?;
        let queue_token = queue_token(i);
        let ws_url = format!("ws://127.0.0.1:{port}/graphql/ws");
        let gate = Arc::clone(&gate);
        let tx = tx.clone();
        let connected = Arc::clone(&connected);
        let received = Arc::clone(&received);
        let repeated = Arc::clone(&repeated);
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let Ok(mut ws) = open(&ws_url, &token, &queue_token).await else {
                return;
            };
            connected.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            let mut told = false;
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    let Ok(msg) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    if msg["type"] == "ping" {
                        let _ = ws
                            .send(Message::Text(json!({"type": "pong"}).to_string().into()))
                            .await;
                    }
                    let ticket = &msg["payload"]["data"]["queueTicket"];
                    if !ticket.is_null() {
                        AtomicUsize::fetch_add(&received, 1, Ordering::Relaxed);
                    }
                    if ticket["status"] == "ACTIVE" {
                        if told {
                            AtomicUsize::fetch_add(&repeated, 1, Ordering::Relaxed);
                        } else {
                            told = true;
                            let _ = tx.send((i, Utc::now().naive_utc()));
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    while AtomicUsize::load(&connected, Ordering::Relaxed) < n {
        if started.elapsed() > Duration::from_secs(300) {
            bail!(
                "only {} of {n} subscribers connected",
                AtomicUsize::load(&connected, Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{n} subscribers connected in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_connected = rss_kib(server_pid)?;
    let metrics_before = scrape(&metrics_base).await?;
    let received_before = AtomicUsize::load(&received, Ordering::Relaxed);

    // Release admission: the blockers' turns end now.
    diesel::sql_query(
        "UPDATE queue_tickets SET expires_at = UTC_TIMESTAMP(6) WHERE status = 'ACTIVE'",
    )
    .execute(&mut conn)
    .await?;
    let mut pushed: Vec<(usize, NaiveDateTime)> = Vec::with_capacity(n);
    let deadline =
        Instant::now() + Duration::from_secs((n as u64 / u64::from(args.admit_per_sec)) + 60);
    while pushed.len() < n && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(p)) => pushed.push(p),
            Ok(None) => break,
            Err(_) => continue,
        }
    }
    // A few ticks more: a turn told again would be told within them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics_after = scrape(&metrics_base).await?;
    let repeated = AtomicUsize::load(&repeated, Ordering::Relaxed);
    let received_during = AtomicUsize::load(&received, Ordering::Relaxed) - received_before;
    let rss_end = rss_kib(server_pid)?;

    // Delay per fan: push received (client clock) minus activated_at (database clock; both are
    // this machine's clock).
    let activated: Vec<(String, Option<NaiveDateTime>)> = {
        use diesel::{ExpressionMethods, QueryDsl, TextExpressionMethods};
        use encore::db::schema::queue_tickets;
        queue_tickets::table
            .filter(queue_tickets::concert_id.eq(&concert))
            .filter(queue_tickets::token.like("bench%"))
            .select((queue_tickets::token, queue_tickets::activated_at))
            .load(&mut conn)
            .await?
    };
    let activated: std::collections::HashMap<String, NaiveDateTime> = activated
        .into_iter()
        .filter_map(|(t, a)| a.map(|a| (t, a)))
        .collect();
    // Each fan's delay, and the longest per admission round (fans admitted in the same second),
    // in order: tells a tail that grows round by round (a backlog) from one slow round.
    let mut delays: Vec<f64> = Vec::with_capacity(pushed.len());
    let mut rounds: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    for (i, at) in &pushed {
        if let Some(a) = activated.get(&queue_token(*i)) {
            let delay = (*at - *a).num_microseconds().unwrap_or(0) as f64 / 1e6;
            delays.push(delay);
            let round = rounds.entry(a.and_utc().timestamp()).or_insert(0.0);
            *round = round.max(delay);
        }
    }
    delays.sort_by(f64::total_cmp);
    let pct = |p: f64| super::percentile(&delays, p);
    let ticks = metrics_after.0 - metrics_before.0;
    let statements = metrics_after.1 - metrics_before.1;

    println!(
        "--- bench subscribers (count {n}, admit {} /s, {})",
        args.admit_per_sec,
        super::support::durability(&mut conn).await?
    );
    println!(
        "connections held:        {}",
        AtomicUsize::load(&connected, Ordering::Relaxed)
    );
    println!("ACTIVE pushes received:  {} of {n}", pushed.len());
    println!("fans told ACTIVE again:  {repeated}");
    println!(
        "messages while admitting: {received_during} ({:.1} per fan)",
        received_during as f64 / n.max(1) as f64
    );
    println!(
        "server RSS:              {:.1} MiB connected, {:.1} MiB at end",
        rss_connected as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
    println!(
        "push delay p50/p99/max:  {:.3}s / {:.3}s / {:.3}s",
        pct(0.50),
        pct(0.99),
        delays.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "longest delay by round:  {}",
        rounds
            .values()
            .map(|d| format!("{d:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "live ticker:             {ticks} ticks, {statements} statements, {:.1} per tick",
        if ticks > 0.0 {
            statements / ticks
        } else {
            f64::NAN
        }
    );
    println!(
        "ticker parts (whole run):  {}",
        ticker_timing(&metrics_base).await?
    );
    server.kill().await.ok();
    // A bench that measured nothing fails, whatever it printed.
    if pushed.len() < n {
        bail!("only {} of {n} ACTIVE pushes arrived", pushed.len());
    }
    if repeated > 0 {
        bail!("{repeated} ACTIVE pushes repeated a turn the fan had already been told of");
    }
    if delays.len() < n || delays.iter().any(|d| !d.is_finite()) {
        bail!("push delays measured for {} of {n} fans", delays.len());
    }
    if ticks <= 0.0 {
        bail!("the live ticker did not tick during the run");
    }
    Ok(())
}

fn user_id(i: usize) -> String {
    format!("00000000-0000-7000-8000-{i:012}")
}

fn queue_token(i: usize) -> String {
    format!("bench{i:0>38}")
}

/// A concert with seats to sell (admission admits nobody into a room with nothing left) and `n`
/// fans with WAITING tickets behind `n` ACTIVE blockers. Returns the concert id.
async fn prepare(conn: &mut Conn, n: usize) -> anyhow::Result<String> {
    let concert = uuid::Uuid::now_v7().to_string();
    super::seed_concert(conn, &concert, "Bench Night", 1, 2 * n, n).await?;
    for start in (0..n).step_by(2000) {
        let end = (start + 2000).min(n);
        let users: Vec<String> = (start..end)
            .map(|i| {
                format!(
                    "('{}', 'bench{i}', 'bench{i}@bench.test', '-', 0, UTC_TIMESTAMP(6))",
                    user_id(i)
                )
            })
            .collect();
        let blockers: Vec<String> = (start..end)
            .map(|i| {
                format!(
                    "(UUID(), 'block{i:0>38}', UUID(), '{concert}', {}, 'ACTIVE', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), \
                     UTC_TIMESTAMP(6) + INTERVAL 1 HOUR, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
                    i + 1
                )
            })
            .collect();
        let fans: Vec<String> = (start..end)
            .map(|i| {
                format!(
                    "(UUID(), '{}', '{}', '{concert}', {}, 'WAITING', UTC_TIMESTAMP(6), NULL, NULL, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
                    queue_token(i),
                    user_id(i),
                    n + i + 1
                )
            })
            .collect();
        conn.batch_execute(&format!(
            "INSERT INTO users (id, username, email, password_hash, balance, created_at) VALUES {};
             INSERT INTO queue_tickets (id, token, user_id, concert_id, seq, status, last_seen_at, activated_at, expires_at, created_at, updated_at) VALUES {};
             INSERT INTO queue_tickets (id, token, user_id, concert_id, seq, status, last_seen_at, activated_at, expires_at, created_at, updated_at) VALUES {};",
            users.join(","),
            blockers.join(","),
            fans.join(",")
        ))
        .await?;
    }
    super::support::count_turns(conn, &concert).await?;
    Ok(concert)
}

pub(super) async fn open(
    url: &str,
    token: &str,
    queue_token: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}"), "queueToken": queue_token } });
    ws.send(Message::Text(init.to_string().into())).await?;
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message? {
            if text.contains("connection_ack") {
                break;
            }
            bail!("connection refused: {text}");
        }
    }
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { queueTicket { status position } }" } });
    ws.send(Message::Text(subscribe.to_string().into())).await?;
    Ok(ws)
}

/// Waits for the server's /health, with a plain HTTP/1.1 request (no client library needed).
async fn reqwest_free_get(base: &str) -> anyhow::Result<u16> {
    for _ in 0..300 {
        if let Ok(body) = http_get(base, "/health").await
            && body.starts_with("HTTP/1.1 200")
        {
            return Ok(200);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("server did not become healthy")
}

async fn http_get(base: &str, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body)
}

/// (live_ticks_total, live_tick_statements_total) from the server's /metrics.
async fn scrape(base: &str) -> anyhow::Result<(f64, f64)> {
    let text = http_get(base, "/metrics").await?;
    Ok((
        metric(&text, "live_ticks_total"),
        metric(&text, "live_tick_statements_total"),
    ))
}

/// One sample's value from a Prometheus text page (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// How long the ticker's parts took over the whole run: rounds, mean and longest, per part.
async fn ticker_timing(base: &str) -> anyhow::Result<String> {
    let text = http_get(base, "/metrics").await?;
    let part = |name: &str| {
        let count = metric(&text, &format!("{name}_count"));
        let sum = metric(&text, &format!("{name}_sum"));
        let max = metric(&text, &format!("{name}{{quantile=\"1\"}}"));
        format!(
            "{count:.0} rounds, mean {:.3}s, max {max:.3}s",
            sum / count.max(1.0)
        )
    };
    Ok(format!(
        "admission {}; live read {}",
        part("ticker_admission_seconds"),
        part("ticker_live_seconds")
    ))
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS not found")
}
