//! The rush's `flow` mode: every fan goes the whole way at once, as in an on-sale minute.
//!
//! Each fan enters the queue, waits for their turn (a share over a `queueTicket` websocket
//! subscription, the rest polling every half second), reads the seat map of a date, holds a seat
//! it showed AVAILABLE (another on `SEAT_UNAVAILABLE`, another date when one is full) and pays.
//! The server runs with a real admission pace (`--flow-active-limit`, `--flow-admit-per-sec`), so
//! a line forms. The run prints per operation requests, p50/p95/p99 and errors by code, the time
//! from the first entry to the last seat sold, checks every invariant in SQL, and writes an SVG
//! report of the time series a capacity planner reads: people waiting and active, entries,
//! admissions, holds and payments per second (from the database's own timestamps), and the p99 of
//! every operation per second (as the fans saw it).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use diesel::QueryableByName;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::percentile;
use encore::db::ids::UserId;
use encore::db::{self, Conn};
use encore::domain::accounts::tokens::TokenSigner;

/// The operations a fan makes, in the order of the flow.
const OPS: [&str; 5] = ["enter", "poll", "seats", "hold", "pay"];

/// The longest one fan's flow may take.
const FAN_LIMIT: Duration = Duration::from_secs(120);

/// What the flow is asked to do.
pub struct FlowPlan {
    pub fans: usize,
    pub dates: usize,
    /// Share of fans who wait on a websocket subscription rather than polling (0..=1).
    pub websocket_share: f64,
    pub report: std::path::PathBuf,
    /// The server's admission pace, for the printout.
    pub active_limit: u32,
    pub admit_per_sec: u32,
}

/// What the fans saw: per operation, every latency with the second it ended in, and errors.
#[derive(Default)]
struct Seen {
    latencies: BTreeMap<&'static str, Vec<(u64, f64)>>,
    errors: BTreeMap<String, usize>,
    seated: usize,
    left_empty_handed: usize,
}

struct Fan {
    http: reqwest::Client,
    base: String,
    token: String,
    started: Instant,
    seen: Arc<Mutex<Seen>>,
    /// Set by the first fan who finds every date full: those still waiting then leave, as they
    /// do when a sale is announced sold out (and they leave when their ticket reads SOLD_OUT,
    /// once the room closes).
    sold_out: Arc<std::sync::atomic::AtomicBool>,
}

impl Fan {
    fn sold_out(&self) -> bool {
        std::sync::atomic::AtomicBool::load(&self.sold_out, std::sync::atomic::Ordering::Relaxed)
    }
}

impl Fan {
    /// One GraphQL request, timed and recorded under `op`; the `data` or the error code.
    async fn ask(
        &self,
        op: &'static str,
        queue_token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Value, String> {
        let sent = Instant::now();
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(queue_token) = queue_token {
            request = request.header("Queue-Token", queue_token);
        }
        let answer = match request.send().await {
            Ok(response) => response.json::<Value>().await.ok(),
            Err(_) => None,
        };
        let took = sent.elapsed().as_secs_f64() * 1000.0;
        let second = self.started.elapsed().as_secs();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.latencies.entry(op).or_default().push((second, took));
        match answer {
            None => Err("HTTP_FAILED".to_owned()),
            Some(body) => match body["errors"][0]["extensions"]["code"].as_str() {
                Some(code) => Err(code.to_owned()),
                None => Ok(body["data"].clone()),
            },
        }
    }

    fn error(&self, code: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        *seen.errors.entry(code.to_owned()).or_default() += 1;
    }
}

/// Runs the flow against the servers at `bases` (fan `i` uses `bases[i % len]`, all started with
/// the flow's admission pace), writing
/// to the database behind `conn`; true when nothing failed and every invariant holds.
pub async fn run(
    plan: &FlowPlan,
    bases: &[String],
    secret: &str,
    conn: &mut Conn,
) -> anyhow::Result<bool> {
    let concert = prepare(conn, plan.fans, plan.dates).await?;
    let signer = TokenSigner::new(secret.as_bytes(), Duration::from_secs(3600));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sold_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let dates: Vec<String> = read_dates(conn, &concert).await?;

    let websockets = (plan.fans as f64 * plan.websocket_share.clamp(0.0, 1.0)) as usize;

    let fans = (0..plan.fans).map(|i| {
        let fan = Fan {
            http: http.clone(),
            base: bases[i % bases.len()].clone(),
            token: UserId::parse(&flow_user(i))
                .and_then(|user| signer.issue(&user).ok())
                .unwrap_or_default(),
            started,
            seen: Arc::clone(&seen),
            sold_out: Arc::clone(&sold_out),
        };
        let concert = concert.clone();
        let dates = dates.clone();
        let ws_url = format!("{}/graphql/ws", fan.base.replacen("http", "ws", 1));
        tokio::spawn(async move {
            // Fans arrive over the first second, not in one instant.
            tokio::time::sleep(Duration::from_micros(
                (i as u64 * 1_000_000) / 3_000 % 1_000_000,
            ))
            .await;
            let websocket = (i < websockets).then_some(ws_url);
            // A fan stuck anywhere is an error of the run, not a hung bench.
            let gone = tokio::time::timeout(FAN_LIMIT, go(&fan, &concert, &dates, websocket, i));
            if gone.await.is_err() {
                fan.error("FAN_TIMED_OUT");
            }
        })
    });
    let finished = futures_util::future::join_all(fans).await;
    let elapsed = started.elapsed();
    let panicked = finished.iter().filter(|f| f.is_err()).count();

    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    let broken = db::invariants::broken(conn).await?;
    let timeline = database_timeline(conn, &concert).await?;
    let sold_out_after = sold_out_after(conn, &concert).await?;

    println!(
        "--- flow: {} fans ({} on websockets), {} seats, admission {}/s up to {} active",
        plan.fans,
        websockets,
        plan.dates * 50,
        plan.admit_per_sec,
        plan.active_limit
    );
    println!(
        "{:<9} {:>8} {:>9} {:>9} {:>9}",
        "op", "requests", "p50 ms", "p95 ms", "p99 ms"
    );
    for op in OPS {
        let mut l: Vec<f64> = seen
            .latencies
            .get(op)
            .map(|v| v.iter().map(|(_, ms)| *ms).collect())
            .unwrap_or_default();
        l.sort_by(f64::total_cmp);
        println!(
            "{op:<9} {:>8} {:>9.2} {:>9.2} {:>9.2}",
            l.len(),
            percentile(&l, 0.5),
            percentile(&l, 0.95),
            percentile(&l, 0.99)
        );
    }
    println!(
        "seated {} fans, {} left with nothing (sold out); errors: {}; finished in {:.1}s",
        seen.seated,
        seen.left_empty_handed,
        if seen.errors.is_empty() && panicked == 0 {
            "none".to_owned()
        } else {
            format!("{:?} (+{panicked} panicked)", seen.errors)
        },
        elapsed.as_secs_f64()
    );
    match sold_out_after {
        Some(s) => println!("first entry to last seat sold: {s:.1}s"),
        None => println!("not sold out"),
    }
    if !broken.is_empty() {
        println!("INVARIANTS BROKEN: {broken:?}");
    }
    let svg = report_svg(&timeline, &seen, plan);
    std::fs::write(&plan.report, svg)
        .with_context(|| format!("writing {}", plan.report.display()))?;
    println!("report: {}", plan.report.display());
    Ok(seen.errors.is_empty() && panicked == 0 && broken.is_empty())
}

/// One fan's whole flow.
async fn go(fan: &Fan, concert: &str, dates: &[String], websocket: Option<String>, i: usize) {
    let enter = "mutation($c: ID!) { enterQueue(concertId: $c) { token status } }";
    let ticket = match fan.ask("enter", None, enter, json!({ "c": concert })).await {
        Ok(data) => data["enterQueue"].clone(),
        Err(code) => return fan.error(&code),
    };
    let Some(queue_token) = ticket["token"].as_str().map(str::to_owned) else {
        return fan.error("NO_TOKEN");
    };
    if ticket["status"] != "ACTIVE" {
        let admitted = match websocket {
            Some(url) => wait_on_websocket(fan, &url, &queue_token).await,
            None => wait_polling(fan, &queue_token).await,
        };
        match admitted {
            Ok(true) => {}
            Ok(false) => {
                let mut seen = fan.seen.lock().unwrap_or_else(|e| e.into_inner());
                seen.left_empty_handed += 1;
                return;
            }
            Err(code) => return fan.error(&code),
        }
    }
    let seats = "query($c: ID!, $d: Date!) { seats(concertId: $c, date: $d) { number status } }";
    let hold = "mutation($c: ID!, $d: Date!, $s: Int!) { holdSeat(concertId: $c, date: $d, seatNumber: $s) { id } }";
    let pay = "mutation($r: ID!) { pay(reservationId: $r) { id } }";
    // Start at a date of one's own, as people spread over a tour's dates.
    for d in 0..dates.len() {
        let date = &dates[(i + d) % dates.len()];
        for _attempt in 0..5 {
            let map = match fan
                .ask(
                    "seats",
                    Some(&queue_token),
                    seats,
                    json!({ "c": concert, "d": date }),
                )
                .await
            {
                Ok(data) => data["seats"].clone(),
                Err(code) => return fan.error(&code),
            };
            let free: Vec<i64> = map
                .as_array()
                .map(|seats| {
                    seats
                        .iter()
                        .filter(|s| s["status"] == "AVAILABLE")
                        .filter_map(|s| s["number"].as_i64())
                        .collect()
                })
                .unwrap_or_default();
            if free.is_empty() {
                break;
            }
            let seat = free[(i * 7 + _attempt) % free.len()];
            let vars = json!({ "c": concert, "d": date, "s": seat });
            match fan.ask("hold", Some(&queue_token), hold, vars).await {
                Ok(data) => {
                    let id = data["holdSeat"]["id"].clone();
                    match fan
                        .ask("pay", Some(&queue_token), pay, json!({ "r": id }))
                        .await
                    {
                        Ok(_) => {
                            let mut seen = fan.seen.lock().unwrap_or_else(|e| e.into_inner());
                            seen.seated += 1;
                        }
                        Err(code) => fan.error(&code),
                    }
                    return;
                }
                // Someone was quicker: an expected outcome of a rush, not an error.
                Err(code)
                    if code == encore::graphql::error::ErrorCode::SeatUnavailable.as_str() =>
                {
                    continue;
                }
                Err(code) => return fan.error(&code),
            }
        }
    }
    fan.sold_out
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = fan.seen.lock().unwrap_or_else(|e| e.into_inner());
    seen.left_empty_handed += 1;
}

/// Waits for the turn: true once ACTIVE, false when the sale sold out first.
async fn wait_polling(fan: &Fan, queue_token: &str) -> Result<bool, String> {
    let poll = "{ queueTicket { status position } }";
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if fan.sold_out() {
            return Ok(false);
        }
        let data = fan.ask("poll", Some(queue_token), poll, json!({})).await?;
        match data["queueTicket"]["status"].as_str() {
            Some("ACTIVE") => return Ok(true),
            // The room closed: every seat is sold.
            Some("SOLD_OUT") => return Ok(false),
            Some("WAITING") => {}
            other => return Err(format!("TICKET_{}", other.unwrap_or("MISSING"))),
        }
    }
}

async fn wait_on_websocket(fan: &Fan, url: &str, queue_token: &str) -> Result<bool, String> {
    let mut ws = super::subscribers::open(url, &fan.token, queue_token)
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "websocket refused");
            "WEBSOCKET_FAILED".to_owned()
        })?;
    loop {
        let message = match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
            Err(_) if fan.sold_out() => {
                let _ = ws.close(None).await;
                return Ok(false);
            }
            Err(_) => continue,
            Ok(None) => break,
            Ok(Some(message)) => message,
        };
        let Ok(Message::Text(text)) = message else {
            continue;
        };
        let body: Value = serde_json::from_str(&text).unwrap_or_default();
        if body["type"] == "next" {
            match body["payload"]["data"]["queueTicket"]["status"].as_str() {
                Some("ACTIVE") => {
                    let _ = ws.close(None).await;
                    return Ok(true);
                }
                Some("SOLD_OUT") => {
                    let _ = ws.close(None).await;
                    return Ok(false);
                }
                Some("WAITING") => {}
                other => return Err(format!("TICKET_{}", other.unwrap_or("MISSING"))),
            }
        } else if body["type"] == "error" {
            return Err("SUBSCRIPTION_ERROR".to_owned());
        }
    }
    Err("WEBSOCKET_CLOSED".to_owned())
}

fn flow_user(i: usize) -> String {
    format!("00000000-0000-7000-9000-{i:012}")
}

/// A concert of `dates` dates of 50 seats and `fans` funded fans; its id.
async fn prepare(conn: &mut Conn, fans: usize, dates: usize) -> anyhow::Result<String> {
    let concert = uuid::Uuid::now_v7().to_string();
    super::seed_concert(conn, &concert, "Flow Night", dates, 0, 0).await?;
    for start in (0..fans).step_by(2000) {
        let end = (start + 2000).min(fans);
        let users: Vec<String> = (start..end)
            .map(|i| {
                format!(
                    "('{}', 'flow{i}', 'flow{i}@bench.test', '-', 100.00, UTC_TIMESTAMP(6))",
                    flow_user(i)
                )
            })
            .collect();
        let ledger: Vec<String> = (start..end)
            .map(|i| {
                format!(
                    "(UUID(), '{}', 'CHARGE', 100.00, 100.00, NULL, UTC_TIMESTAMP(6))",
                    flow_user(i)
                )
            })
            .collect();
        conn.batch_execute(&format!(
            "INSERT INTO users (id, username, email, password_hash, balance, created_at) VALUES {}; \
             INSERT INTO wallet_transactions (id, user_id, kind, amount, balance_after, reservation_id, created_at) VALUES {};",
            users.join(","),
            ledger.join(",")
        ))
        .await?;
    }
    Ok(concert)
}

#[derive(QueryableByName)]
struct DateRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    date: String,
}

async fn read_dates(conn: &mut Conn, concert: &str) -> anyhow::Result<Vec<String>> {
    let rows: Vec<DateRow> = diesel::sql_query(format!(
        "SELECT CAST(date AS CHAR) AS date FROM concert_dates WHERE concert_id = '{concert}' ORDER BY date"
    ))
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.date).collect())
}

#[derive(QueryableByName)]
struct SecondRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    series: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    second: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Per second since the first entry, from the database's own timestamps: entries, admissions,
/// holds, payments.
async fn database_timeline(
    conn: &mut Conn,
    concert: &str,
) -> anyhow::Result<BTreeMap<String, BTreeMap<i64, i64>>> {
    let start =
        format!("(SELECT MIN(created_at) FROM queue_tickets WHERE concert_id = '{concert}')");
    let sec = |col: &str| format!("FLOOR(TIMESTAMPDIFF(MICROSECOND, {start}, {col}) / 1000000)");
    let rows: Vec<SecondRow> = diesel::sql_query(format!(
        "SELECT 'entries' AS series, {e} AS second, COUNT(*) AS n FROM queue_tickets WHERE concert_id = '{concert}' GROUP BY 2
         UNION ALL SELECT 'admissions', {a}, COUNT(*) FROM queue_tickets WHERE concert_id = '{concert}' AND activated_at IS NOT NULL GROUP BY 2
         UNION ALL SELECT 'holds', {h}, COUNT(*) FROM reservations WHERE concert_id = '{concert}' GROUP BY 2
         UNION ALL SELECT 'payments', {p}, COUNT(*) FROM payments p JOIN orders r ON r.id = p.order_id
                   WHERE r.concert_id = '{concert}' GROUP BY 2",
        e = sec("created_at"),
        a = sec("activated_at"),
        h = sec("created_at"),
        p = sec("p.paid_at"),
    ))
    .load(conn)
    .await?;
    let mut series: BTreeMap<String, BTreeMap<i64, i64>> = BTreeMap::new();
    for row in rows {
        series
            .entry(row.series)
            .or_default()
            .insert(row.second, row.n);
    }
    Ok(series)
}

#[derive(QueryableByName)]
struct Seconds {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    s: Option<f64>,
}

/// Seconds from the first entry to the last seat sold, when every seat is sold.
async fn sold_out_after(conn: &mut Conn, concert: &str) -> anyhow::Result<Option<f64>> {
    let row: Seconds = diesel::sql_query(format!(
        "SELECT IF((SELECT COUNT(*) FROM seats WHERE concert_id = '{concert}' AND status <> 'SOLD') = 0,
                   TIMESTAMPDIFF(MICROSECOND,
                     (SELECT MIN(created_at) FROM queue_tickets WHERE concert_id = '{concert}'),
                     (SELECT MAX(p.paid_at) FROM payments p JOIN orders r ON r.id = p.order_id
                       WHERE r.concert_id = '{concert}')) / 1e6, NULL) AS s"
    ))
    .get_result(conn)
    .await?;
    Ok(row.s)
}

/// The report: three charts over the same seconds.
fn report_svg(db: &BTreeMap<String, BTreeMap<i64, i64>>, seen: &Seen, plan: &FlowPlan) -> String {
    let last = db
        .values()
        .flat_map(|s| s.keys().copied())
        .chain(
            seen.latencies
                .values()
                .flat_map(|v| v.iter().map(|(s, _)| *s as i64)),
        )
        .max()
        .unwrap_or(1)
        .max(1);
    let per_second = |name: &str| -> Vec<f64> {
        (0..=last)
            .map(|s| db.get(name).and_then(|m| m.get(&s)).copied().unwrap_or(0) as f64)
            .collect()
    };
    let cumulative = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .scan(0.0, |sum, x| {
                *sum += x;
                Some(*sum)
            })
            .collect()
    };
    let entries = per_second("entries");
    let admissions = per_second("admissions");
    let payments = per_second("payments");
    let waiting: Vec<f64> = cumulative(&entries)
        .iter()
        .zip(cumulative(&admissions))
        .map(|(e, a)| e - a)
        .collect();
    let active: Vec<f64> = cumulative(&admissions)
        .iter()
        .zip(cumulative(&payments))
        .map(|(a, p)| a - p)
        .collect();
    let p99 = |op: &str| -> Vec<f64> {
        (0..=last)
            .map(|s| {
                let mut l: Vec<f64> = seen
                    .latencies
                    .get(op)
                    .map(|v| {
                        v.iter()
                            .filter(|(sec, _)| *sec as i64 == s)
                            .map(|(_, ms)| *ms)
                            .collect()
                    })
                    .unwrap_or_default();
                l.sort_by(f64::total_cmp);
                let p = percentile(&l, 0.99);
                if p.is_nan() { 0.0 } else { p }
            })
            .collect()
    };

    let mut svg = String::new();
    let (w, h) = (900.0, 760.0);
    let _ = write!(
        svg,
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\
         <rect width='100%' height='100%' fill='white'/>\
         <text x='20' y='24' font-size='16'>encore-bench rush --modes flow: {} fans, {} seats, {:.0}% on websockets</text>",
        plan.fans,
        plan.dates * 50,
        plan.websocket_share * 100.0
    );
    chart(
        &mut svg,
        40.0,
        "people (from the database)",
        &[
            ("waiting", &waiting, "#1f77b4"),
            ("active", &active, "#ff7f0e"),
        ],
    );
    chart(
        &mut svg,
        280.0,
        "per second (from the database)",
        &[
            ("entries", &entries, "#7f7f7f"),
            ("admissions", &admissions, "#2ca02c"),
            ("holds", &per_second("holds"), "#d62728"),
            ("payments", &payments, "#9467bd"),
        ],
    );
    let (enter, poll, seats, hold, pay) = (
        p99("enter"),
        p99("poll"),
        p99("seats"),
        p99("hold"),
        p99("pay"),
    );
    chart(
        &mut svg,
        520.0,
        "p99 ms per second (as the fans saw it)",
        &[
            ("enter", &enter, "#7f7f7f"),
            ("poll", &poll, "#1f77b4"),
            ("seats", &seats, "#17becf"),
            ("hold", &hold, "#d62728"),
            ("pay", &pay, "#9467bd"),
        ],
    );
    svg.push_str("</svg>\n");
    svg
}

/// One line chart 200 px high at `top`, x in seconds.
fn chart(svg: &mut String, top: f64, title: &str, series: &[(&str, &Vec<f64>, &str)]) {
    let (left, width, height) = (60.0, 800.0, 180.0);
    let n = series
        .iter()
        .map(|(_, v, _)| v.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let max = series
        .iter()
        .flat_map(|(_, v, _)| v.iter().copied())
        .fold(1.0_f64, f64::max);
    let base = top + 20.0 + height;
    let _ = write!(
        svg,
        "<text x='{left}' y='{}' font-weight='bold'>{title}</text>\
         <line x1='{left}' y1='{base}' x2='{}' y2='{base}' stroke='#999'/>\
         <line x1='{left}' y1='{}' x2='{left}' y2='{base}' stroke='#999'/>\
         <text x='{}' y='{}' text-anchor='end'>{max:.0}</text>\
         <text x='{}' y='{base}' text-anchor='end'>0</text>\
         <text x='{}' y='{}' text-anchor='end'>{} s</text>",
        top + 14.0,
        left + width,
        top + 20.0,
        left - 4.0,
        top + 30.0,
        left - 4.0,
        left + width,
        base + 14.0,
        n - 1
    );
    for (k, (name, values, color)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x = left + width * i as f64 / (n - 1) as f64;
                let y = base - height * v / max;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = write!(
            svg,
            "<polyline fill='none' stroke='{color}' stroke-width='1.5' points='{}'/>\
             <text x='{}' y='{}' fill='{color}'>{name}</text>",
            points.join(" "),
            left + width - 90.0,
            top + 34.0 + 14.0 * k as f64
        );
    }
}
