//! `encore-bench rush`: the on-sale rush, one operation at a time, over GraphQL/HTTP against an
//! `encore serve` of its own on a fresh database.
//!
//! Each mode runs `connections` concurrent clients for `seconds` and prints requests/s,
//! p50/p95/p99 latency and errors by `extensions.code`, then checks every money and seat
//! invariant in SQL (`db::invariants`) and runs once more right after, to show a second run is as
//! healthy as the first. Modes:
//! - `enter`: `enterQueue` by fresh fans (each request a new fan) into a room that admits them
//!   as they enter (nobody waits: an idle room, or the first seconds of a sale with a high rate);
//! - `enter-paced`: the same into a room where they wait (a line admitted one a second);
//! - `poll`: `queueTicket` by waiting fans;
//! - `seats`: the seat map of one date by admitted fans;
//! - `charge`: every client tops up one and the same wallet;
//! - `hold`: every request holds a seat nobody else asks for (a date per request, a seat per
//!   client): the uncontended path;
//! - `race`: every client holds seats of one date, 50 seats for all: after the first 50, every
//!   answer is `SEAT_UNAVAILABLE` or, once a fan holds their fair share (6),
//!   `TICKET_LIMIT_REACHED` (expected, not errors);
//! - `pay`: a fresh admitted fan holds a free seat and pays for it (a payment ends a turn): the
//!   rate counts these pairs, the latencies are the payment's alone;
//! - `order4`, `single4`: a fresh admitted fan buys four seats, as one order (`holdSeats`,
//!   `payOrder`) or the seed API's way (`holdSeat` and `pay` four times each): the rate counts
//!   purchases, the latencies are the whole purchase's; their ratio is printed.
//!
//! After `enter`, `hold` and `pay` the **raw baseline** runs: the same domain calls the resolvers
//! make, so the same SQL, through a diesel-async pool of the same size in this process, at the
//! same concurrency, with no HTTP or GraphQL; and for `enter` one ticket per transaction, which is
//! what the service did before it wrote entries in batches. The last lines print service/raw.
//!
//! Fans, tickets and tokens are written in bulk with SQL before the clock starts; the server runs
//! with per-address rate limits off (the whole crowd comes from loopback).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use serde_json::{Value, json};

use super::percentile;
use encore::db::ids::{ConcertId, QueueToken, ReservationId, UserId};
use encore::db::{self, Conn};
use encore::domain::accounts::tokens::TokenSigner;
use encore::domain::inputs::SeatNumber;
use encore::domain::orders::{hold, pay};
use encore::domain::queue;
use encore::domain::queue::entry::{Entry, write_batch};
use encore::domain::rules::Quotas;
use encore::domain::rules::Rules;
use encore::domain::services::Services;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Every fan the whole way: enter, wait, seat map, hold, pay (see `bench::flow`).
    Flow,
    Enter,
    EnterPaced,
    Poll,
    Seats,
    Charge,
    Hold,
    Race,
    Pay,
    /// A fresh admitted fan buys four seats as one order: `holdSeats` of four, `payOrder`.
    Order4,
    /// The same four seats the seed API's way: `holdSeat` four times, `pay` four times.
    Single4,
}

#[derive(Debug, Clone, Args)]
pub struct RushBench {
    /// Admin URL of a MySQL/MariaDB server (no database); the bench creates and drops its own.
    #[arg(long, env = "ENCORE_BENCH_DATABASE_URL")]
    pub admin_url: String,
    /// The operations to run, one after the other (each twice in a row).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "flow,enter,enter-paced,poll,seats,charge,hold,race,pay,order4,single4"
    )]
    pub modes: Vec<Mode>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Fans made before the runs (each `enter` request needs a fresh one).
    #[arg(long, default_value_t = 400_000)]
    pub fans: usize,
    /// `flow`: fans who go the whole way at once.
    #[arg(long, default_value_t = 3_000)]
    pub flow_fans: usize,
    /// `flow`: dates of 50 seats on sale.
    #[arg(long, default_value_t = 20)]
    pub flow_dates: usize,
    /// `flow`: share of fans waiting on a websocket subscription instead of polling.
    #[arg(long, default_value_t = 0.25)]
    pub flow_websockets: f64,
    /// `flow`: the server's QUEUE_ACTIVE_LIMIT.
    #[arg(long, default_value_t = 300)]
    pub flow_active_limit: u32,
    /// `flow`: the server's QUEUE_ADMIT_PER_SEC.
    #[arg(long, default_value_t = 200)]
    pub flow_admit_per_sec: u32,
    /// Admin URLs of the nodes of a cluster (comma-separated): one server instance runs on each
    /// node, and clients spread over the instances (see `scripts/cluster rush`).
    #[arg(long, value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// Where `flow` writes its SVG report.
    /// Kill this process (SIGKILL) a few seconds into the first measured run: a cluster node,
    /// to show the instances carry on with the others (`scripts/cluster test`).
    #[arg(long)]
    pub kill_pid: Option<u32>,
    /// Seconds into the first measured run at which `kill_pid` is killed.
    #[arg(long, default_value_t = 3)]
    pub kill_after: u64,
    #[arg(long, default_value = "target/rush-report.svg")]
    pub report: std::path::PathBuf,
}

const SECRET: &str = "bench-secret-bench-secret-bench-secret!!";

/// Dates of the bench concert (50 seats each). Each client holds its own seat number on a new
/// date per request, so the holding modes use as many dates as one client makes requests.
const DATES: usize = 5000;

/// The pool of the server and of the raw baseline.
const POOL_SIZE: usize = 32;

/// Codes that are a mode's expected outcome, not an error.
fn expected(mode: Mode, code: &str) -> bool {
    // Racing for one date's 50 seats: most find them taken, and a fan holds their share at most.
    use encore::graphql::error::ErrorCode;
    mode == Mode::Race
        && matches!(
            ErrorCode::parse(code),
            Some(
                ErrorCode::SeatUnavailable
                    | ErrorCode::HoldLimitReached
                    | ErrorCode::TicketLimitReached
            )
        )
}

pub async fn rush(args: RushBench) -> anyhow::Result<()> {
    let admin = args.admin_url.clone();
    super::on_fresh_database(&admin, "encore_rush", async |url| run(&args, &url).await).await
}

/// What the runs share: the server, the crowd, the tokens.
struct Stage {
    /// The instances, one per node; worker `w` talks to `bases[w % len]`.
    bases: Vec<String>,
    http: reqwest::Client,
    concert: String,
    /// A concert whose room admits one fan a second, so entries wait in line (`enter-paced`).
    paced_concert: String,
    date: String,
    signer: TokenSigner,
    /// Fans not used yet by `enter`.
    next_fresh: AtomicUsize,
    fans: usize,
    /// Fans with a WAITING ticket (poll) and with an ACTIVE one (seats, hold), by index.
    waiting: usize,
    active: usize,
    /// Admitted fans for `pay`, one per hold and payment (a payment ends its fan's turn), from
    /// `waiting + active` up to `payers_end`.
    next_payer: AtomicUsize,
    payers_end: usize,
    /// The concert's dates, for the modes that hold seats, and by client the next date it has
    /// not held on (a client holds its own seat number on each date, so no two clients meet).
    dates: Vec<String>,
    next_date: Vec<AtomicUsize>,
    /// Purchases of four seats so far (`order4`, `single4`): the n-th takes seats
    /// `(n % 12) * 4 + 1..=+4` of date `DATES / 2 + n / 12`, apart from the other modes' seats.
    next_four: AtomicUsize,
}

async fn run(args: &RushBench, url: &str) -> anyhow::Result<()> {
    db::migrate(url).await?;
    let mut conn = Conn::establish(url).await?;
    let mut healthy = true;
    if args.modes.contains(&Mode::Flow) {
        let flow_servers = Server::start_all(
            url,
            &args.nodes,
            &[
                ("QUEUE_ACTIVE_LIMIT", args.flow_active_limit.to_string()),
                ("QUEUE_ADMIT_PER_SEC", args.flow_admit_per_sec.to_string()),
                ("QUEUE_TICK", "200ms".to_owned()),
            ],
        )
        .await?;
        let plan = super::flow::FlowPlan {
            fans: args.flow_fans,
            dates: args.flow_dates,
            websocket_share: args.flow_websockets,
            report: args.report.clone(),
            active_limit: args.flow_active_limit,
            admit_per_sec: args.flow_admit_per_sec,
        };
        let bases: Vec<String> = flow_servers.iter().map(|s| s.base.clone()).collect();
        healthy &= super::flow::run(&plan, &bases, SECRET, &mut conn).await?;
        for server in flow_servers {
            server.stop().await;
        }
    }
    let servers = Server::start_all(
        url,
        &args.nodes,
        &[
            ("QUEUE_ACTIVE_LIMIT", "1000000".to_owned()),
            ("QUEUE_ADMIT_PER_SEC", "100000".to_owned()),
        ],
    )
    .await?;
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections * 2)
        .build()?;
    let waiting = 10_000.min(args.fans / 4);
    let active = args.connections.max(1);
    let payers = 40_000.min(args.fans / 4);
    let (concert, dates) = prepare(&mut conn, args.fans, waiting, active + payers, DATES).await?;
    let paced_concert = uuid::Uuid::now_v7().to_string();
    super::seed_concert(&mut conn, &paced_concert, "Paced Night", 1, 0, 0).await?;
    conn.batch_execute(&format!(
        "UPDATE queue_rooms SET admit_per_sec = 1, active_limit = 1 WHERE concert_id = '{paced_concert}'"
    ))
    .await?;
    let stage = Arc::new(Stage {
        bases,
        http,
        concert,
        paced_concert,
        date: dates[0].clone(),
        dates,
        next_date: (0..args.connections).map(|_| AtomicUsize::new(1)).collect(),
        signer: TokenSigner::new(SECRET.as_bytes(), Duration::from_secs(3600)),
        next_fresh: AtomicUsize::new(waiting + active + payers),
        fans: args.fans,
        waiting,
        active,
        next_payer: AtomicUsize::new(waiting + active),
        payers_end: waiting + active + payers,
        next_four: AtomicUsize::new(0),
    });

    println!(
        "--- bench rush: {} connections, {} s per run, release build, loopback, {}",
        args.connections,
        args.seconds,
        super::support::durability(&mut conn).await?
    );
    println!(
        "{:<16} {:>3} {:>10} {:>9} {:>9} {:>9}  errors",
        "mode", "run", "req/s", "p50 ms", "p95 ms", "p99 ms"
    );
    let raw = raw_services(url, &node_urls(url, &args.nodes))?;
    let mut ratios = Vec::new();
    let mut purchases: BTreeMap<String, f64> = BTreeMap::new();
    if let Some(pid) = args.kill_pid {
        let after = Duration::from_secs(args.kill_after);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let killed = tokio::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .await;
            println!("killed process {pid} (SIGKILL): {killed:?}");
        });
    }
    // Requests caught on a node killed on purpose may be answered SERVICE_UNAVAILABLE.
    let tolerated: &[&str] = if args.kill_pid.is_some() {
        &["SERVICE_UNAVAILABLE"]
    } else {
        &[]
    };
    for mode in args.modes.iter().filter(|m| **m != Mode::Flow) {
        let name = mode
            .to_possible_value()
            .map_or_else(|| format!("{mode:?}"), |v| v.get_name().to_owned());
        let mut served = Vec::new();
        for round in 1..=2 {
            let figures = run_mode(&stage, *mode, args).await?;
            let broken = db::invariants::broken(&mut conn).await?;
            healthy &= report(&name, round, &figures, &broken, tolerated);
            served.push(figures.per_sec);
        }
        purchases.insert(
            name.clone(),
            served.iter().sum::<f64>() / served.len() as f64,
        );
        if !matches!(
            mode,
            Mode::Enter | Mode::EnterPaced | Mode::Hold | Mode::Pay
        ) {
            continue;
        }
        let mut baseline = Vec::new();
        for round in 1..=2 {
            let figures = run_raw(&stage, &raw, *mode, args).await?;
            let broken = db::invariants::broken(&mut conn).await?;
            healthy &= report(&format!("raw {name}"), round, &figures, &broken, tolerated);
            baseline.push(figures.per_sec);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        ratios.push((name, mean(&served), mean(&baseline)));
    }
    for (name, served, baseline) in &ratios {
        println!(
            "{name:<8} service/raw: {:.2} ({served:.0} / {baseline:.0} per second, mean of two runs each)",
            served / baseline
        );
    }
    if let (Some(order), Some(single)) = (purchases.get("order4"), purchases.get("single4")) {
        anyhow::ensure!(
            *order > 0.0 && *single > 0.0,
            "a purchase mode measured nothing"
        );
        println!(
            "four seats bought: order4/single4 {:.2} ({order:.0} / {single:.0} purchases per second, mean of two runs each)",
            order / single
        );
    }
    println!(
        "invariants after every run: {}",
        if healthy { "hold" } else { "see above" }
    );
    raw.db.close();
    for server in servers {
        server.stop().await;
    }
    if !healthy {
        bail!("a run had errors or broke an invariant");
    }
    Ok(())
}

/// Prints one run's line; true when it had no error (but the `tolerated` codes) and broke no
/// invariant.
fn report(
    name: &str,
    round: usize,
    figures: &Figures,
    broken: &[(&str, Vec<String>)],
    tolerated: &[&str],
) -> bool {
    let errors = if figures.errors.is_empty() {
        "none".to_owned()
    } else {
        format!("{:?}", figures.errors)
    };
    let broken_note = if broken.is_empty() {
        String::new()
    } else {
        format!("  INVARIANTS BROKEN: {broken:?}")
    };
    println!(
        "{:<16} {:>3} {:>10.0} {:>9.2} {:>9.2} {:>9.2}  {errors}{broken_note}",
        name, round, figures.per_sec, figures.p50, figures.p95, figures.p99,
    );
    figures
        .errors
        .keys()
        .all(|code| tolerated.contains(&code.as_str()))
        && broken.is_empty()
}

/// An `encore serve`, a child process on a port of its own.
struct Server {
    child: tokio::process::Child,
    base: String,
}

impl Server {
    /// Starts `encore serve` on `url` with the bench's settings and `extra` ones, and waits until
    /// it is ready.
    async fn start(url: &str, extra: &[(&str, String)]) -> anyhow::Result<Self> {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.local_addr()?.port()
        };
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_encore"));
        command
            .arg("serve")
            .env("DATABASE_URL", url)
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("METRICS_BIND", "127.0.0.1:0")
            .env("JWT_SECRET", SECRET)
            .env("DATABASE_POOL_SIZE", POOL_SIZE.to_string())
            .env("MAX_CHARGE", "1000.00")
            .env("RATE_LIMIT_REQUESTS_PER_SEC", "0")
            .env("RATE_LIMIT_QUEUE_ENTRIES_PER_MIN", "0")
            .env("RATE_LIMIT_QUEUE_ENTRIES_PER_ACCOUNT_PER_MIN", "0")
            .env("WS_MAX_CONNECTIONS", "100000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true);
        for (name, value) in extra {
            command.env(name, value);
        }
        let child = command.spawn().context("starting the server")?;
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let http = reqwest::Client::new();
        while http
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .is_err()
        {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the server did not start");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { child, base })
    }

    /// One server on `url`, or with `nodes`, one on each node's copy of the same database.
    async fn start_all(
        url: &str,
        nodes: &[String],
        extra: &[(&str, String)],
    ) -> anyhow::Result<Vec<Self>> {
        if nodes.is_empty() {
            return Ok(vec![Self::start(url, extra).await?]);
        }
        let node_urls = node_urls(url, nodes);
        // Every instance knows every node: a room's or a wallet's writes go to its home node.
        let mut extra = extra.to_vec();
        extra.push(("DATABASE_NODES", node_urls.join(",")));
        let mut servers = Vec::new();
        for node_url in &node_urls {
            servers.push(Self::start(node_url, &extra).await?);
        }
        Ok(servers)
    }

    async fn stop(mut self) {
        self.child.kill().await.ok();
    }
}

struct Figures {
    per_sec: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    errors: BTreeMap<String, usize>,
}

async fn run_mode(stage: &Arc<Stage>, mode: Mode, args: &RushBench) -> anyhow::Result<Figures> {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let workers = (0..args.connections).map(|worker| {
        let stage = Arc::clone(stage);
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors: BTreeMap<String, usize> = BTreeMap::new();
            let mut n = 0usize;
            while Instant::now() < deadline {
                if matches!(mode, Mode::Order4 | Mode::Single4) {
                    let Some(outcome) = buy_four(&stage, mode, worker).await else {
                        *errors.entry("OUT_OF_FANS_OR_DATES".into()).or_default() += 1;
                        break;
                    };
                    match outcome {
                        Ok(ms) => latencies.push(ms),
                        Err(code) => *errors.entry(code).or_default() += 1,
                    }
                    continue;
                }
                let Some((query, variables, fan, queue_token)) = request(&stage, mode, worker, n)
                else {
                    *errors.entry("OUT_OF_FANS_OR_DATES".into()).or_default() += 1;
                    break;
                };
                n += 1;
                let token = stage.signer.issue(&fan).unwrap_or_default();
                let queue_token = queue_token.as_deref();
                let sent = Instant::now();
                let base = &stage.bases[worker % stage.bases.len()];
                let mut answer = send(&stage, base, &token, queue_token, query, variables).await;
                // `pay` holds, then pays what it holds: the figures are the pair.
                let held = answer
                    .as_ref()
                    .and_then(|b| b["data"]["holdSeat"]["id"].as_str())
                    .map(str::to_owned);
                let mut sent = sent;
                if mode == Mode::Pay
                    && let Some(id) = held
                {
                    let pay = "mutation($r: ID!) { pay(reservationId: $r) { id } }";
                    sent = Instant::now();
                    answer = send(&stage, base, &token, queue_token, pay, json!({ "r": id })).await;
                }
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                match answer {
                    None => *errors.entry("HTTP_FAILED".into()).or_default() += 1,
                    Some(body) => {
                        if let Some(code) = body["errors"][0]["extensions"]["code"].as_str()
                            && !expected(mode, code)
                        {
                            *errors.entry(code.to_owned()).or_default() += 1;
                        }
                    }
                }
            }
            (latencies, errors)
        })
    });
    figures(workers, started).await
}

/// One purchase of four seats by a fresh admitted fan, as `order4` or `single4`: the whole
/// exchange's milliseconds, or the first error code met. None when fans or dates are used up.
async fn buy_four(stage: &Stage, mode: Mode, worker: usize) -> Option<Result<f64, String>> {
    let n = stage.next_four.fetch_add(1, Ordering::Relaxed);
    let date = stage.dates.get(DATES / 2 + n / 12)?.clone();
    let first = (n % 12) * 4 + 1;
    let seats: Vec<usize> = (first..first + 4).collect();
    let i = holder(stage, Mode::Pay, worker)?;
    let fan = UserId::parse(&user_id(i))?;
    let token = stage.signer.issue(&fan).ok()?;
    let queue = queue_token(i);
    let base = &stage.bases[worker % stage.bases.len()];
    let ask = async |query: &str, variables: Value| -> Result<Value, String> {
        let body = send(stage, base, &token, Some(&queue), query, variables)
            .await
            .ok_or_else(|| "HTTP_FAILED".to_owned())?;
        match body["errors"][0]["extensions"]["code"].as_str() {
            Some(code) => Err(code.to_owned()),
            None => Ok(body["data"].clone()),
        }
    };
    let sent = Instant::now();
    let outcome = async {
        if mode == Mode::Order4 {
            let held = ask(
                "mutation($c: ID!, $d: Date!, $s: [Int!]!) { holdSeats(concertId: $c, date: $d, seatNumbers: $s) { id } }",
                json!({ "c": stage.concert, "d": date, "s": seats }),
            )
            .await?;
            ask(
                "mutation($o: ID!, $k: String!) { payOrder(orderId: $o, idempotencyKey: $k) { status } }",
                json!({ "o": held["holdSeats"]["id"], "k": format!("four-{n}") }),
            )
            .await?;
        } else {
            let mut ids = Vec::new();
            for seat in &seats {
                let held = ask(
                    "mutation($c: ID!, $d: Date!, $s: Int!) { holdSeat(concertId: $c, date: $d, seatNumber: $s) { id } }",
                    json!({ "c": stage.concert, "d": date, "s": seat }),
                )
                .await?;
                ids.push(held["holdSeat"]["id"].clone());
            }
            for id in ids {
                ask(
                    "mutation($r: ID!) { pay(reservationId: $r) { id } }",
                    json!({ "r": id }),
                )
                .await?;
            }
        }
        Ok(())
    }
    .await;
    Some(outcome.map(|()| sent.elapsed().as_secs_f64() * 1000.0))
}

/// What each worker measured: latencies in ms, errors by code.
type Measured = (Vec<f64>, BTreeMap<String, usize>);

/// The figures of a run from its workers.
async fn figures(
    workers: impl Iterator<Item = tokio::task::JoinHandle<Measured>>,
    started: Instant,
) -> anyhow::Result<Figures> {
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for worker in futures_util::future::join_all(workers).await {
        let (l, e) = worker?;
        latencies.extend(l);
        for (code, count) in e {
            *errors.entry(code).or_default() += count;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Ok(Figures {
        per_sec: latencies.len() as f64 / elapsed,
        p50: percentile(&latencies, 0.50),
        p95: percentile(&latencies, 0.95),
        p99: percentile(&latencies, 0.99),
        errors,
    })
}

/// The bench database's URL on each node of a cluster (none for one server).
fn node_urls(url: &str, nodes: &[String]) -> Vec<String> {
    let name = url.rsplit('/').next().unwrap_or_default();
    nodes
        .iter()
        .map(|node| format!("{}/{name}", node.trim_end_matches('/')))
        .collect()
}

/// The services of the raw baseline: the server's rules for the bench, a pool of the same size
/// (on a cluster, to every node, with the servers' routing of rooms and wallets).
fn raw_services(url: &str, nodes: &[String]) -> anyhow::Result<Services> {
    let rules = Rules {
        queue_active_limit: 1_000_000,
        queue_admit_per_sec: 100_000,
        quotas: Quotas::unlimited(),
        ..Rules::default()
    };
    let database = db::Database::connect_nodes(url, nodes, &db::PoolConfig::with_size(POOL_SIZE))?;
    Ok(Services::new(database, rules, SECRET.as_bytes())?)
}

/// A run of the raw baseline of `mode` (enter, hold or pay): the resolver's domain calls, at the
/// same concurrency, without HTTP or GraphQL.
async fn run_raw(
    stage: &Arc<Stage>,
    services: &Services,
    mode: Mode,
    args: &RushBench,
) -> anyhow::Result<Figures> {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let concert = match mode {
        Mode::EnterPaced => &stage.paced_concert,
        _ => &stage.concert,
    };
    let concert = ConcertId::parse(concert).context("bench concert id")?;
    let workers = (0..args.connections).map(|worker| {
        let stage = Arc::clone(stage);
        let services = services.clone();
        let concert = concert.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors: BTreeMap<String, usize> = BTreeMap::new();
            while Instant::now() < deadline {
                let Some((outcome, took)) =
                    raw_call(&stage, &services, &concert, mode, worker).await
                else {
                    *errors.entry("OUT_OF_FANS_OR_DATES".into()).or_default() += 1;
                    break;
                };
                latencies.push(took.as_secs_f64() * 1000.0);
                if let Err(err) = outcome {
                    let code = encore::graphql::error::code(&err);
                    *errors.entry(code.as_str().to_owned()).or_default() += 1;
                }
            }
            (latencies, errors)
        })
    });
    figures(workers, started).await
}

/// One raw call of `mode` by `worker`, with the fans, dates and seats the HTTP run would use,
/// and how long the measured part took (for `pay`, the payment after its hold); None when they
/// are used up.
async fn raw_call(
    stage: &Stage,
    services: &Services,
    concert: &ConcertId,
    mode: Mode,
    worker: usize,
) -> Option<(encore::domain::Result<()>, Duration)> {
    let sent = Instant::now();
    if matches!(mode, Mode::Enter | Mode::EnterPaced) {
        let i = stage.next_fresh.fetch_add(1, Ordering::Relaxed);
        (i < stage.fans).then_some(())?;
        let entry = Entry {
            user: UserId::parse(&user_id(i))?,
            answer: None,
        };
        // One ticket per transaction: the batch of one.
        let outcome = match write_batch(services, concert, &[entry]).await {
            Ok(mut tickets) => tickets.pop().map_or(Ok(()), |ticket| ticket.map(drop)),
            Err(err) => Err(err),
        };
        return Some((outcome, sent.elapsed()));
    }
    let d = stage.next_date.get(worker)?.fetch_add(1, Ordering::Relaxed);
    let date = chrono::NaiveDate::parse_from_str(stage.dates.get(d)?, "%Y-%m-%d").ok()?;
    let i = holder(stage, mode, worker)?;
    let user = UserId::parse(&user_id(i))?;
    let token = QueueToken::parse(&queue_token(i))?;
    let seat = SeatNumber::new(i32::try_from(worker % 50 + 1).ok()?)?;
    let mut measured_from = sent;
    let outcome = async {
        // As the resolvers: the early turn check, then the hold (and the payment).
        queue::require_active(services, Some(&token), concert, Some(&user)).await?;
        let held = hold::hold_seat(services, &user, concert, date, seat, &token).await?;
        if mode == Mode::Pay {
            measured_from = Instant::now();
            let id: &ReservationId = &held.id;
            pay::pay(services, &user, id, &token, None).await?;
        }
        Ok(())
    }
    .await;
    Some((outcome, measured_from.elapsed()))
}

/// One GraphQL request; its JSON answer, or None when the exchange failed.
async fn send(
    stage: &Stage,
    base: &str,
    token: &str,
    queue_token: Option<&str>,
    query: &str,
    variables: Value,
) -> Option<Value> {
    let mut builder = stage
        .http
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(queue_token) = queue_token {
        builder = builder.header("Queue-Token", queue_token);
    }
    builder.send().await.ok()?.json::<Value>().await.ok()
}

/// The next request of `worker` in `mode`: query, variables, the fan sending it, their queue
/// token. None when `enter` has used every fan.
fn request(
    stage: &Stage,
    mode: Mode,
    worker: usize,
    n: usize,
) -> Option<(&'static str, Value, UserId, Option<String>)> {
    let fan = |i: usize| UserId::parse(&user_id(i));
    match mode {
        // Run on their own (bench::flow, buy_four), never one request at a time.
        Mode::Flow | Mode::Order4 | Mode::Single4 => None,
        Mode::Enter | Mode::EnterPaced => {
            let i = stage.next_fresh.fetch_add(1, Ordering::Relaxed);
            (i < stage.fans).then_some(())?;
            let concert = match mode {
                Mode::EnterPaced => &stage.paced_concert,
                _ => &stage.concert,
            };
            Some((
                "mutation($c: ID!) { enterQueue(concertId: $c) { status position } }",
                json!({ "c": concert }),
                fan(i)?,
                None,
            ))
        }
        Mode::Poll => {
            let i = (worker * 7919 + n) % stage.waiting;
            Some((
                "{ queueTicket { status position estimatedWaitSeconds } }",
                json!({}),
                fan(i)?,
                Some(queue_token(i)),
            ))
        }
        Mode::Seats => {
            let i = stage.waiting + worker % stage.active;
            Some((
                "query($c: ID!, $d: Date!) { seats(concertId: $c, date: $d) { number status price } }",
                json!({ "c": stage.concert, "d": stage.date }),
                fan(i)?,
                Some(queue_token(i)),
            ))
        }
        Mode::Charge => Some((
            "mutation($k: String!) { charge(amount: \"1.00\", idempotencyKey: $k) { balance } }",
            json!({ "k": format!("rush-{worker}-{n}-{}", uuid::Uuid::new_v4()) }),
            fan(stage.waiting)?,
            None,
        )),
        Mode::Hold | Mode::Pay | Mode::Race => {
            // Uncontended: a date no one used yet, seat by client. Race: one date for all.
            let (date, seat) = if mode == Mode::Race {
                (stage.dates[0].clone(), (worker * 7 + n) % 50 + 1)
            } else {
                let d = stage.next_date.get(worker)?.fetch_add(1, Ordering::Relaxed);
                (stage.dates.get(d)?.clone(), worker % 50 + 1)
            };
            let i = holder(stage, mode, worker)?;
            Some((
                "mutation($c: ID!, $d: Date!, $s: Int!) { holdSeat(concertId: $c, date: $d, seatNumber: $s) { id } }",
                json!({ "c": stage.concert, "d": date, "s": seat }),
                fan(i)?,
                Some(queue_token(i)),
            ))
        }
    }
}

/// The fan who holds next: the worker's own admitted fan, or for `pay` a fresh one.
fn holder(stage: &Stage, mode: Mode, worker: usize) -> Option<usize> {
    if mode == Mode::Pay {
        let i = stage.next_payer.fetch_add(1, Ordering::Relaxed);
        (i < stage.payers_end).then_some(i)
    } else {
        Some(stage.waiting + worker % stage.active)
    }
}

fn user_id(i: usize) -> String {
    format!("00000000-0000-7000-8000-{i:012}")
}

fn queue_token(i: usize) -> String {
    format!("rush{i:0>39}")
}

/// A concert with `dates` dates of 50 seats, `fans` fans (the first `waiting` with a WAITING
/// ticket, the next `active` with an ACTIVE one and a funded wallet). Returns the concert id and
/// its dates.
async fn prepare(
    conn: &mut Conn,
    fans: usize,
    waiting: usize,
    active: usize,
    dates: usize,
) -> anyhow::Result<(String, Vec<String>)> {
    let concert = uuid::Uuid::now_v7().to_string();
    super::seed_concert(
        conn,
        &concert,
        "Rush Night",
        dates,
        waiting + active,
        active,
    )
    .await?;
    for start in (0..fans).step_by(5000) {
        let end = (start + 5000).min(fans);
        let users: Vec<String> = (start..end)
            .map(|i| {
                format!(
                    "('{}', 'rush{i}', 'rush{i}@bench.test', '-', 0, UTC_TIMESTAMP(6))",
                    user_id(i)
                )
            })
            .collect();
        conn.batch_execute(&format!(
            "INSERT INTO users (id, username, email, password_hash, balance, created_at) VALUES {}",
            users.join(",")
        ))
        .await?;
    }
    // Tickets: the ACTIVE ones first in line (seq 1..=active), the WAITING ones behind them.
    let tickets: Vec<String> = (0..waiting + active)
        .map(|i| {
            let (seq, status, until) = if i >= waiting {
                (i - waiting + 1, "ACTIVE", "UTC_TIMESTAMP(6) + INTERVAL 1 DAY")
            } else {
                (active + i + 1, "WAITING", "NULL")
            };
            format!(
                "(UUID(), '{}', '{}', '{concert}', {seq}, '{status}', UTC_TIMESTAMP(6), \
                 IF('{status}' = 'ACTIVE', UTC_TIMESTAMP(6), NULL), {until}, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
                queue_token(i),
                user_id(i)
            )
        })
        .collect();
    for chunk in tickets.chunks(5000) {
        conn.batch_execute(&format!(
            "INSERT INTO queue_tickets (id, token, user_id, concert_id, seq, status, last_seen_at, \
             activated_at, expires_at, created_at, updated_at) VALUES {}",
            chunk.join(",")
        ))
        .await?;
    }
    super::support::count_turns(conn, &concert).await?;
    // The admitted fans' wallets, through the ledger like any top-up.
    let funded = (waiting..waiting + active)
        .map(|i| {
            format!(
                "(UUID(), '{}', 'CHARGE', 1000000.00, 1000000.00, NULL, UTC_TIMESTAMP(6))",
                user_id(i)
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let first = user_id(waiting);
    let last = user_id(waiting + active - 1);
    conn.batch_execute(&format!(
        "INSERT INTO wallet_transactions (id, user_id, kind, amount, balance_after, reservation_id, \
         created_at) VALUES {funded};
         UPDATE users SET balance = 1000000.00 WHERE id BETWEEN '{first}' AND '{last}';"
    ))
    .await?;
    let today: chrono::NaiveDate = {
        use diesel_async::RunQueryDsl;
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Date>("UTC_DATE()"))
            .get_result(conn)
            .await?
    };
    let dates = (1..=dates as u64)
        .filter_map(|d| today.checked_add_days(chrono::Days::new(d)))
        .map(|d| d.to_string())
        .collect();
    Ok((concert, dates))
}
