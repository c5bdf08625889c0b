//! The real `encore serve` binary as OS processes: an instance killed with SIGKILL in the middle
//! of a burst (the other instance on the same database carries on and nothing is lost or sold
//! twice), SIGTERM's graceful shutdown (in-flight requests finish, websockets get 1001, the
//! listener closes at once, exit 0), the grace period's upper bound, and the raised open-file
//! limit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use diesel_async::AsyncConnection;
use encore::db::Conn;
use futures::future::join_all;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{
    Auth, Client, Fan, JWT_SECRET, RowLocks, TestDb, assert_invariants, concert_in, unique_name,
};

/// How long a process may take from spawn to printing its GraphiQL URL.
const START_LIMIT: Duration = Duration::from_secs(30);

/// One `encore serve` process with its output (logs) collected.
struct ServerProcess {
    name: &'static str,
    child: Child,
    pid: u32,
    addr: SocketAddr,
    logs: Arc<Mutex<String>>,
    /// The tasks reading stdout and stderr into `logs`; they end at the process's exit.
    readers: Vec<JoinHandle<()>>,
}

impl ServerProcess {
    /// Starts `encore serve` on 127.0.0.1:0 against `database_url`, with `env` on top of the
    /// required variables, and waits until it prints where it listens. With `soft_nofile`, the
    /// process starts with that soft open-file limit (a shell lowers it, then execs the binary,
    /// so the pid is the server's).
    async fn start(
        name: &'static str,
        database_url: &str,
        env: &[(&str, &str)],
        soft_nofile: Option<u64>,
    ) -> Self {
        let bin = env!("CARGO_BIN_EXE_encore");
        let mut command = match soft_nofile {
            Some(limit) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c")
                    .arg(format!("ulimit -S -n {limit} && exec \"$0\" serve"))
                    .arg(bin);
                c
            }
            None => {
                let mut c = Command::new(bin);
                c.arg("serve");
                c
            }
        };
        let secret = std::str::from_utf8(JWT_SECRET).expect("ASCII secret");
        command
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env("JWT_SECRET", secret)
            .env("BIND", "127.0.0.1:0")
            .env("METRICS_BIND", "127.0.0.1:0")
            // Bursts from one address are the point of these tests, not rate limits.
            .env("RATE_LIMIT_REQUESTS_PER_SEC", "0")
            .env("RATE_LIMIT_SIGN_UPS_PER_HOUR", "0")
            .env("RATE_LIMIT_SIGN_INS_PER_MIN", "0")
            .env("RATE_LIMIT_QUEUE_ENTRIES_PER_MIN", "0")
            .env("RATE_LIMIT_QUEUE_ENTRIES_PER_ACCOUNT_PER_MIN", "0")
            .env("PASSWORD_HASH_QUEUE", "100000")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn encore serve");
        let pid = child.id().expect("pid of a running child");

        // Logs are collected from both streams: logs go to stderr, the GraphiQL line to stdout.
        let logs = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let stderr_reader = tokio::spawn(collect_lines(stderr, Arc::clone(&logs), None));
        let stdout = child.stdout.take().expect("stdout");
        let (url_tx, url_rx) = tokio::sync::oneshot::channel();
        let stdout_reader = tokio::spawn(collect_lines(stdout, Arc::clone(&logs), Some(url_tx)));
        let url = tokio::time::timeout(START_LIMIT, url_rx).await;
        let mut process = Self {
            name,
            child,
            pid,
            addr: "127.0.0.1:0".parse().expect("addr"),
            logs,
            readers: vec![stderr_reader, stdout_reader],
        };
        let url = match url {
            Ok(Ok(url)) => url,
            Ok(Err(_)) => {
                let status = process.wait(Duration::from_secs(5)).await;
                panic!(
                    "{name} exited ({status:?}) before listening; output:\n{}",
                    process.logs()
                );
            }
            Err(_) => panic!(
                "{name} printed no GraphiQL URL within {START_LIMIT:?}; output:\n{}",
                process.logs()
            ),
        };
        let host_port = url
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix("/graphql"))
            .unwrap_or_else(|| panic!("unexpected GraphiQL URL {url:?}"));
        process.addr = host_port.parse().expect("host:port");
        process
    }

    /// `http://127.0.0.1:PORT`
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn client(&self, http: &reqwest::Client) -> Client {
        Client {
            http: http.clone(),
            url: format!("{}/graphql", self.url()),
        }
    }

    fn logs(&self) -> String {
        self.logs.lock().expect("logs").clone()
    }

    /// Waits until the output contains `needle`; false after `limit`.
    async fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.logs().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(signal)
            .arg(self.pid.to_string())
            .status()
            .await
            .expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", self.pid);
    }

    async fn sigterm(&self) {
        self.signal("-TERM").await;
    }

    async fn sigkill(&self) {
        self.signal("-9").await;
    }

    /// The exit status, or None if the process is still running after `limit`. Once it exited,
    /// its output is read to the end.
    async fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .ok()?
            .expect("wait for child");
        for reader in std::mem::take(&mut self.readers) {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        Some(status)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = self.logs();
            let tail: Vec<&str> = logs.lines().rev().take(60).collect();
            eprintln!(
                "---- last output lines of {} (pid {}) ----",
                self.name, self.pid
            );
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Appends each line of `stream` to `logs`; the first `GraphiQL: <url>` line's URL goes to `url`.
async fn collect_lines(
    stream: impl tokio::io::AsyncRead + Unpin,
    logs: Arc<Mutex<String>>,
    mut url: Option<tokio::sync::oneshot::Sender<String>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = strip_ansi(&line);
        if let Some(found) = line.strip_prefix("GraphiQL: ")
            && let Some(url) = url.take()
        {
            let _ = url.send(found.trim().to_owned());
        }
        let mut logs = logs.lock().expect("logs");
        logs.push_str(&line);
        logs.push('\n');
    }
}

/// Removes ANSI colour sequences, should the log formatter emit them.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A GraphQL request that reports a failed HTTP exchange (refused, reset, no body) as `Err`
/// instead of panicking. `url` ends in `/graphql`.
async fn post(
    http: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
    auth: &Auth,
) -> Result<Value, reqwest::Error> {
    let client = Client {
        http: http.clone(),
        url: url.to_owned(),
    };
    Ok(client.send(query, variables, auth).await?.1)
}

/// The `extensions.code` of the first error, if any.
fn error_code(body: &Value) -> Option<String> {
    body.get("errors").map(|errors| {
        errors[0]["extensions"]["code"]
            .as_str()
            .unwrap_or("(no code)")
            .to_owned()
    })
}

/// "1234.56" as cents.
fn cents(money: &str) -> i64 {
    let (whole, fraction) = money.split_once('.').unwrap_or((money, "0"));
    let fraction = format!("{fraction:0<2}");
    whole.parse::<i64>().expect("whole part") * 100
        + fraction[..2].parse::<i64>().expect("cents part")
}

/// A concert with one date a week from now, 50 seats at `price`, straight in SQL.
async fn concert(database_url: &str, price: &str) -> (String, NaiveDate) {
    let (id, dates) = concert_in(database_url, price, 1).await;
    (id, dates[0])
}

#[derive(diesel::QueryableByName)]
struct CountRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct WalletRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    balance: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    charges: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    payments: i64,
}

/// Every user's balance with the number of charges and payments in their ledger.
async fn wallets(database_url: &str) -> Vec<WalletRow> {
    use diesel_async::RunQueryDsl;
    let mut conn = Conn::establish(database_url).await.expect("connect");
    diesel::sql_query(
        "SELECT u.id AS id, CAST(u.balance AS CHAR) AS balance, \
         CAST(COALESCE(SUM(t.kind = 'CHARGE'), 0) AS SIGNED) AS charges, \
         CAST(COALESCE(SUM(t.kind = 'PAYMENT'), 0) AS SIGNED) AS payments \
         FROM users u LEFT JOIN wallet_transactions t ON t.user_id = u.id GROUP BY u.id, u.balance",
    )
    .load(&mut conn)
    .await
    .expect("wallets")
}

async fn count(database_url: &str, sql: &str) -> i64 {
    use diesel_async::RunQueryDsl;
    let mut conn = Conn::establish(database_url).await.expect("connect");
    let row: CountRow = diesel::sql_query(sql)
        .get_result(&mut conn)
        .await
        .expect("count query");
    row.n
}

const CHARGE: &str =
    "mutation($a: Decimal!, $k: String!) { charge(amount: $a, idempotencyKey: $k) { balance } }";
const HOLD: &str = "mutation($c: ID!, $d: Date!, $s: Int!) { holdSeat(concertId: $c, date: $d, seatNumber: $s) { id } }";
const PAY: &str =
    "mutation($r: ID!, $k: String) { pay(reservationId: $r, idempotencyKey: $k) { id amount } }";
const ENTER: &str = "mutation($c: ID!) { enterQueue(concertId: $c) { token status } }";
const POLL: &str = "{ queueTicket { status } }";

// ---------------------------------------------------------------------------------------------
// 1. SIGKILL of one of two instances in the middle of a burst.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    A,
    B,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    fn other(self) -> Self {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

#[derive(Clone, Copy)]
enum Op {
    Hold = 0,
    Pay = 1,
    Charge = 2,
}

const OPS: [&str; 3] = ["holds", "pays", "charges"];

/// The two instances as the fans see them, with what happened where.
struct Pair {
    http: reqwest::Client,
    urls: [String; 2],
    a_killed: AtomicBool,
    /// Set when the burst is over.
    stop: AtomicBool,
    /// Successes by [before/after the kill][instance][op].
    ok: [[[AtomicUsize; 3]; 2]; 2],
    /// Failed HTTP exchanges by [before/after the kill][instance].
    http_failures: [[AtomicUsize; 2]; 2],
    /// Repeatable requests sent again to B after a failed exchange with A.
    retried_on_b: AtomicUsize,
    codes: Mutex<HashMap<String, usize>>,
}

impl Pair {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }

    fn ok_count(&self, phase: usize, side: Side, op: Op) -> usize {
        self.ok[phase][side.index()][op as usize].load(Ordering::SeqCst)
    }

    fn phase(&self) -> usize {
        usize::from(self.a_killed.load(Ordering::SeqCst))
    }

    fn note_code(&self, what: &str, code: &str) {
        *self
            .codes
            .lock()
            .expect("codes")
            .entry(format!("{what}:{code}"))
            .or_default() += 1;
    }

    fn note_ok(&self, side: Side, op: Op) {
        self.ok[self.phase()][side.index()][op as usize].fetch_add(1, Ordering::SeqCst);
    }

    async fn call(&self, side: Side, query: &str, variables: Value, auth: &Auth) -> Option<Value> {
        match post(&self.http, &self.urls[side.index()], query, variables, auth).await {
            Ok(body) => Some(body),
            Err(err) => {
                // Counted by when it failed: a request sent just before the kill fails after.
                let phase = self.phase();
                self.http_failures[phase][side.index()].fetch_add(1, Ordering::SeqCst);
                if side == Side::B || phase == 0 {
                    eprintln!("unexpected HTTP failure on {side:?} (phase {phase}): {err}");
                }
                None
            }
        }
    }

    /// A request safe to repeat (idempotency key, enterQueue, a poll): first on `side`; after a
    /// failed exchange or a transient error, again on B until a definitive answer.
    async fn retrying(
        &self,
        side: Side,
        op: Option<Op>,
        query: &str,
        variables: Value,
        auth: &Auth,
    ) -> Value {
        let mut side = side;
        for _ in 0..40 {
            let Some(body) = self.call(side, query, variables.clone(), auth).await else {
                if side == Side::A {
                    self.retried_on_b.fetch_add(1, Ordering::SeqCst);
                }
                side = Side::B;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            match error_code(&body).as_deref() {
                Some("SERVICE_UNAVAILABLE" | "TIMEOUT") => {
                    self.note_code("transient", &error_code(&body).unwrap_or_default());
                    side = Side::B;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                None => {
                    if let Some(op) = op {
                        self.note_ok(side, op);
                    }
                    return body;
                }
                Some(_) => return body,
            }
        }
        panic!("no definitive answer to {query} with {variables}");
    }

    /// Enters the queue (again) and polls until the turn is ACTIVE.
    async fn make_active(&self, side: Side, fan: &mut Fan, concert: &str) {
        let body = self
            .retrying(side, None, ENTER, json!({ "c": concert }), &fan.auth())
            .await;
        if let Some(code) = error_code(&body) {
            self.note_code("enterQueue", &code);
            return;
        }
        let ticket = &body["data"]["enterQueue"];
        fan.queue_token = ticket["token"].as_str().map(str::to_owned);
        let mut status = ticket["status"].as_str().unwrap_or_default().to_owned();
        while status != "ACTIVE" && self.running() {
            tokio::time::sleep(Duration::from_millis(25)).await;
            let body = self
                .retrying(side, None, POLL, json!({}), &fan.auth())
                .await;
            status = body["data"]["queueTicket"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        }
    }
}

/// What one fan's requests did, by definitive answers only.
#[derive(Default, Debug)]
struct Tally {
    charges: i64,
    charged_cents: i64,
    pays: i64,
    paid_cents: i64,
}

/// One fan's loop until the burst is over: hold a seat (next number when taken), pay it on the other
/// instance, charge a small amount; alternating instances request by request.
async fn fan_loop(
    pair: Arc<Pair>,
    i: usize,
    mut fan: Fan,
    concert: String,
    date: NaiveDate,
) -> (String, Tally) {
    let mut tally = Tally::default();
    // 17 is prime to 50: the fans start at different seats.
    let mut seat = (i * 17) % 50 + 1;
    let next = |seat: usize| seat % 50 + 1;
    let mut misses = 0;
    let mut k = 0usize;
    while pair.running() {
        k += 1;
        let side = if (i + k).is_multiple_of(2) {
            Side::A
        } else {
            Side::B
        };
        if misses < 50 {
            let vars = json!({ "c": concert, "d": date.to_string(), "s": seat });
            // A hold carries no idempotency key: after a failed exchange its outcome is
            // unknown (a committed one stays HELD until it lapses); move on.
            if let Some(body) = pair.call(side, HOLD, vars, &fan.auth()).await {
                match error_code(&body).as_deref() {
                    None => {
                        pair.note_ok(side, Op::Hold);
                        misses = 0;
                        seat = next(seat);
                        let reservation = body["data"]["holdSeat"]["id"]
                            .as_str()
                            .expect("reservation id")
                            .to_owned();
                        let paid = pair
                            .retrying(
                                side.other(),
                                Some(Op::Pay),
                                PAY,
                                json!({ "r": reservation, "k": format!("pay-{i}-{k}") }),
                                &fan.auth(),
                            )
                            .await;
                        match error_code(&paid) {
                            None => {
                                tally.pays += 1;
                                tally.paid_cents +=
                                    cents(paid["data"]["pay"]["amount"].as_str().expect("amount"));
                            }
                            Some(code) => pair.note_code("pay", &code),
                        }
                    }
                    Some("SEAT_UNAVAILABLE") => {
                        misses += 1;
                        seat = next(seat);
                    }
                    Some("NOT_ADMITTED") => {
                        // The last payment completed the turn: queue again.
                        pair.make_active(side, &mut fan, &concert).await;
                    }
                    Some(code) => pair.note_code("holdSeat", code),
                }
            } else {
                seat = next(seat);
            }
        }
        let amount = 100 + ((i * 37 + k * 11) % 900) as i64;
        let charged = pair
            .retrying(
                side,
                Some(Op::Charge),
                CHARGE,
                json!({ "a": format!("{}.{:02}", amount / 100, amount % 100), "k": format!("charge-{i}-{k}") }),
                &fan.auth(),
            )
            .await;
        match error_code(&charged) {
            None => {
                tally.charges += 1;
                tally.charged_cents += amount;
            }
            Some(code) => pair.note_code("charge", &code),
        }
    }
    (fan.user_id, tally)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_one_of_two_instances_mid_burst_loses_no_money_and_sells_no_seat_twice() {
    const FANS: usize = 30;
    const INITIAL_CENTS: i64 = 1_000_000;
    let db = TestDb::create().await;
    let (concert, date) = concert(&db.url, "10.00").await;
    let env = [
        ("QUEUE_ACTIVE_LIMIT", "10000"),
        ("QUEUE_ADMIT_PER_SEC", "10000"),
        ("QUEUE_TICK", "100ms"),
        ("MAX_HOLDS_PER_DATE", "50"),
    ];
    let (mut a, b) = tokio::join!(
        ServerProcess::start("A", &db.url, &env, None),
        ServerProcess::start("B", &db.url, &env, None),
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(200)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    let clients = [a.client(&http), b.client(&http)];

    // Setup, half of the fans through each instance: sign up, a first top-up, an ACTIVE turn.
    let setup_started = Instant::now();
    let fans: Vec<Fan> = join_all((0..FANS).map(|i| {
        let client = clients[i % 2].clone();
        let concert = concert.clone();
        async move {
            let mut fan = client.sign_up(&unique_name()).await;
            client
                .gql(
                    CHARGE,
                    json!({ "a": "10000.00", "k": "first" }),
                    &fan.auth(),
                )
                .await
                .ok();
            let mut ticket = client.enter_queue(&mut fan, &concert).await;
            let deadline = Instant::now() + Duration::from_secs(10);
            while ticket["status"] != "ACTIVE" {
                assert!(Instant::now() < deadline, "never admitted: {ticket}");
                tokio::time::sleep(Duration::from_millis(25)).await;
                ticket = client.poll(&fan).await;
            }
            fan
        }
    }))
    .await;
    eprintln!(
        "setup: {FANS} fans signed up, charged, ACTIVE in {:?}",
        setup_started.elapsed()
    );

    let pair = Arc::new(Pair {
        http: http.clone(),
        urls: [clients[0].url.clone(), clients[1].url.clone()],
        a_killed: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        ok: Default::default(),
        http_failures: Default::default(),
        retried_on_b: AtomicUsize::new(0),
        codes: Mutex::new(HashMap::new()),
    });
    let burst_started = Instant::now();
    let workers: Vec<_> = fans
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, fan)| tokio::spawn(fan_loop(Arc::clone(&pair), i, fan, concert.clone(), date)))
        .collect();

    // About a second into the burst, once both instances have taken some payments and charges
    // (so that the kill hits a running system), A dies.
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let busy = [Side::A, Side::B].iter().all(|&side| {
            pair.ok_count(0, side, Op::Pay) >= 3 && pair.ok_count(0, side, Op::Charge) >= 3
        });
        let elapsed = burst_started.elapsed();
        if (busy && elapsed >= Duration::from_secs(1)) || elapsed >= Duration::from_secs(8) {
            break;
        }
    }
    let sold_at_kill = count(
        &db.url,
        "SELECT COUNT(*) AS n FROM seats WHERE status = 'SOLD'",
    )
    .await;
    pair.a_killed.store(true, Ordering::SeqCst);
    a.sigkill().await;
    let status = a
        .wait(Duration::from_secs(5))
        .await
        .expect("A exits after SIGKILL");
    eprintln!(
        "killed A (pid {}) {:?} into the burst: {status}; {sold_at_kill} seats sold by then",
        a.pid,
        burst_started.elapsed()
    );
    assert!(!status.success());

    // B carries on alone (the fans still try A too) for another second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    pair.stop.store(true, Ordering::SeqCst);
    let mut tallies: HashMap<String, Tally> = HashMap::new();
    for worker in workers {
        let (user_id, tally) = worker.await.expect("fan task");
        tallies.insert(user_id, tally);
    }
    eprintln!("burst over after {:?}", burst_started.elapsed());

    for (phase, label) in [(0, "before the kill"), (1, "after the kill")] {
        for side in [Side::A, Side::B] {
            let counts: Vec<String> = OPS
                .iter()
                .enumerate()
                .map(|(op, name)| {
                    format!(
                        "{name} {}",
                        pair.ok[phase][side.index()][op].load(Ordering::SeqCst)
                    )
                })
                .collect();
            eprintln!(
                "{label}, {side:?}: {}; failed HTTP exchanges {}",
                counts.join(", "),
                pair.http_failures[phase][side.index()].load(Ordering::SeqCst)
            );
        }
    }
    eprintln!(
        "requests retried on B after a failed exchange with A: {}; error codes: {:?}",
        pair.retried_on_b.load(Ordering::SeqCst),
        pair.codes.lock().expect("codes")
    );
    for side in [Side::A, Side::B] {
        assert!(
            pair.ok_count(0, side, Op::Pay) > 0 && pair.ok_count(0, side, Op::Charge) > 0,
            "{side:?} had no successful pay or charge before the kill"
        );
    }
    assert!(
        pair.ok_count(1, Side::B, Op::Charge) > 0,
        "B served no charge after the kill"
    );
    for phase in 0..2 {
        assert_eq!(
            pair.http_failures[phase][Side::B.index()].load(Ordering::SeqCst),
            0,
            "B failed HTTP exchanges"
        );
    }
    assert_eq!(
        pair.http_failures[0][Side::A.index()].load(Ordering::SeqCst),
        0,
        "A failed HTTP exchanges before it was killed"
    );

    // B answers normally.
    let concerts = clients[1]
        .gql("{ concerts { id } }", json!({}), &Auth::none())
        .await
        .ok();
    assert_eq!(concerts["concerts"][0]["id"], concert.as_str());

    assert_invariants(&db.url).await;

    // Every definitive answer is in the books exactly once, and nothing else is.
    let wallets = wallets(&db.url).await;
    assert_eq!(wallets.len(), FANS);
    for wallet in &wallets {
        let tally = &tallies[&wallet.id];
        let expected = INITIAL_CENTS + tally.charged_cents - tally.paid_cents;
        assert_eq!(
            (cents(&wallet.balance), wallet.charges, wallet.payments),
            (expected, 1 + tally.charges, tally.pays),
            "fan {}: (balance in cents, charges, payments) in the database vs the answers: {tally:?}",
            wallet.id
        );
    }
    let sold = count(
        &db.url,
        "SELECT COUNT(*) AS n FROM seats WHERE status = 'SOLD'",
    )
    .await;
    let paid: i64 = tallies.values().map(|t| t.pays).sum();
    let charges: i64 = tallies.values().map(|t| t.charges).sum();
    eprintln!(
        "in the end: {sold} seats sold, {paid} payments and {charges} burst charges answered OK"
    );
    assert_eq!(sold, paid);
    for line in b
        .logs()
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
    {
        eprintln!("B logged: {line}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. SIGTERM: graceful shutdown.
// ---------------------------------------------------------------------------------------------

/// A websocket speaking graphql-transport-ws with `connection_init` acknowledged and a
/// `queueTicket` subscription that has sent its first ticket.
async fn subscribed_websocket(
    addr: SocketAddr,
    fan: &Fan,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, _) = connect_async(request).await.expect("websocket connect");
    let init = json!({ "type": "connection_init", "payload": {
        "authorization": format!("Bearer {}", fan.token),
        "queueToken": fan.queue_token,
    }});
    socket
        .send(Message::Text(init.to_string().into()))
        .await
        .expect("send init");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription { queueTicket { status } }" } });
    let mut acked = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("websocket answers in time")
            .expect("websocket open")
            .expect("websocket message");
        let Message::Text(text) = msg else { continue };
        let msg: Value = serde_json::from_str(&text).expect("json");
        match msg["type"].as_str() {
            Some("connection_ack") => {
                acked = true;
                socket
                    .send(Message::Text(subscribe.to_string().into()))
                    .await
                    .expect("send subscribe");
            }
            Some("next") if acked => {
                assert_eq!(
                    msg["payload"]["data"]["queueTicket"]["status"], "ACTIVE",
                    "{msg}"
                );
                return socket;
            }
            _ => panic!("unexpected websocket message {msg}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_in_flight_requests_finish_closes_websockets_with_1001_and_exits_zero() {
    let grace = Duration::from_secs(5);
    let db = TestDb::create().await;
    let (concert, _) = concert(&db.url, "10.00").await;
    let mut server =
        ServerProcess::start("server", &db.url, &[("SHUTDOWN_GRACE", "5s")], None).await;
    let http = reqwest::Client::new();
    let client = server.client(&http);
    let mut fan = client.sign_up(&unique_name()).await;
    let ticket = client.enter_queue(&mut fan, &concert).await;
    assert_eq!(ticket["status"], "ACTIVE", "{ticket}");

    let mut socket = subscribed_websocket(server.addr, &fan).await;
    let websocket = tokio::spawn(async move {
        while let Some(msg) = socket.next().await {
            match msg {
                Ok(Message::Close(frame)) => {
                    return Some((
                        frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                        Instant::now(),
                    ));
                }
                Ok(_) => continue,
                Err(err) => {
                    eprintln!("websocket error before a close frame: {err}");
                    return None;
                }
            }
        }
        None
    });

    // A charge that waits on the fan's row, locked by the test.
    let lock = RowLocks::hold(&db.url, &[&fan.user_id]).await;
    let charge = tokio::spawn({
        let http = http.clone();
        let url = client.url.clone();
        let auth = fan.auth();
        async move {
            let answer = post(
                &http,
                &url,
                CHARGE,
                json!({ "a": "25.00", "k": "in-flight" }),
                &auth,
            )
            .await;
            (answer, Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!charge.is_finished(), "the charge should wait on the lock");

    let terminated = Instant::now();
    server.sigterm().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let connect = tokio::net::TcpStream::connect(server.addr).await;
    assert!(
        matches!(&connect, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "a new connection 200 ms after SIGTERM should be refused, got {connect:?}"
    );
    assert!(
        server.child.try_wait().expect("try_wait").is_none(),
        "the process should wait for the charge in flight"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let released = Instant::now();
    lock.release().await;

    let (answer, answered) = tokio::time::timeout(Duration::from_secs(10), charge)
        .await
        .expect("the charge is answered")
        .expect("charge task");
    let body = answer.expect("the in-flight charge gets an HTTP answer");
    assert!(body.get("errors").is_none(), "charge failed: {body}");
    assert_eq!(body["data"]["charge"]["balance"], "25.00", "{body}");

    let (frame, closed) = tokio::time::timeout(Duration::from_secs(10), websocket)
        .await
        .expect("the websocket closes")
        .expect("websocket task")
        .expect("a close frame");
    let (code, reason) = frame.expect("a close frame with a code");
    assert_eq!(code, 1001, "close code (reason {reason:?})");

    let status = server
        .wait(grace + Duration::from_secs(1))
        .await
        .expect("the process exits within the grace period");
    let exited = terminated.elapsed();
    eprintln!(
        "SIGTERM → websocket closed {:?} ({code} {reason:?}), lock released {:?}, charge answered {:?}, exited {exited:?} with {status}",
        closed - terminated,
        released - terminated,
        answered - terminated,
    );
    assert!(status.success(), "exit status {status}");
    assert!(exited < grace, "exited {exited:?} after SIGTERM");
    assert!(
        closed < released,
        "the websocket should close at SIGTERM, not after the requests in flight"
    );
    let logs = server.logs();
    assert!(logs.contains("shutting down"), "output:\n{logs}");
    assert!(logs.contains("shut down cleanly"), "output:\n{logs}");
    assert_invariants(&db.url).await;
}

// ---------------------------------------------------------------------------------------------
// 3. The grace period bounds the shutdown.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_grace_period_the_process_exits_anyway() {
    let db = TestDb::create().await;
    let mut server =
        ServerProcess::start("server", &db.url, &[("SHUTDOWN_GRACE", "1s")], None).await;
    let http = reqwest::Client::new();
    let client = server.client(&http);
    let fan = client.sign_up(&unique_name()).await;

    let lock = RowLocks::hold(&db.url, &[&fan.user_id]).await;
    let charge = tokio::spawn({
        let http = http.clone();
        let url = client.url.clone();
        let auth = fan.auth();
        async move {
            post(
                &http,
                &url,
                CHARGE,
                json!({ "a": "25.00", "k": "stuck" }),
                &auth,
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!charge.is_finished(), "the charge should wait on the lock");

    let terminated = Instant::now();
    server.sigterm().await;
    let status = server.wait(Duration::from_secs(3)).await;
    let exited = terminated.elapsed();
    eprintln!(
        "SIGTERM with a request stuck on a lock, grace 1s: exited {exited:?} with {status:?}"
    );
    let status = status.expect("the process exits within 3 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(
        exited >= Duration::from_secs(1),
        "exited before the grace period was over: {exited:?}"
    );
    let answer = tokio::time::timeout(Duration::from_secs(5), charge)
        .await
        .expect("the charge's HTTP exchange ends with the process")
        .expect("charge task");
    eprintln!("the stuck charge got: {answer:?}");
    let logs = server.logs();
    assert!(logs.contains("grace period over"), "output:\n{logs}");

    lock.release().await;
    assert_invariants(&db.url).await;
    let ledger = count(
        &db.url,
        &format!(
            "SELECT COUNT(*) AS n FROM wallet_transactions WHERE user_id = '{}'",
            fan.user_id
        ),
    )
    .await;
    let balance = count(
        &db.url,
        &format!(
            "SELECT CAST(balance * 100 AS SIGNED) AS n FROM users WHERE id = '{}'",
            fan.user_id
        ),
    )
    .await;
    match answer {
        Ok(body) if body.get("errors").is_none() => {
            assert_eq!((ledger, balance), (1, 2500), "answered OK: {body}");
        }
        _ => assert_eq!((ledger, balance), (0, 0), "no answer, so nothing applied"),
    }
}

// ---------------------------------------------------------------------------------------------
// 4. The open-file limit.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_logs_its_raised_open_file_limit() {
    let db = TestDb::create().await;
    // Start with a soft limit below the hard one so that raising it shows, whatever the hard
    // limit of the machine running the suite.
    let (_, hard_limit) =
        rlimit::getrlimit(rlimit::Resource::NOFILE).expect("read the open-file limit");
    let low = (hard_limit / 2).min(1024);
    assert!(
        low >= 64,
        "hard open-file limit {hard_limit} is too low to run a server"
    );
    let mut server = ServerProcess::start("server", &db.url, &[], Some(low)).await;
    assert!(
        server
            .wait_for_log("open-file limit raised", Duration::from_secs(5))
            .await,
        "output:\n{}",
        server.logs()
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid))
        .expect("read /proc/<pid>/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let fields: Vec<&str> = line["Max open files".len()..].split_whitespace().collect();
    let (soft, hard) = (fields[0], fields[1]);
    let logged = server
        .logs()
        .lines()
        .find(|l| l.contains("open-file limit raised"))
        .unwrap_or_default()
        .to_owned();
    eprintln!("soft {soft}, hard {hard}; log: {logged}");
    assert_eq!(soft, hard, "{line}");
    assert!(logged.contains(&format!("(was {low}")), "{logged}");
    assert!(logged.contains(&format!("raised to {soft}")), "{logged}");

    // SIGTERM at once, right after the URL line: the handlers are installed before the server
    // listens, so even this early signal is a graceful exit (it used to kill the process).
    server.sigterm().await;
    let status = server.wait(Duration::from_secs(10)).await.expect("exits");
    assert!(status.success(), "exit status {status}");
}

/// The request that once aborted the whole process (a stack overflow in the parser is not a
/// panic a task can catch): a 2,000-deep list literal, over every transport, to a real
/// `encore serve`. Each gets a coded refusal and the process lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_thousand_deep_literal_over_every_transport_leaves_the_process_serving() {
    use crate::common::ws::{LEGACY, MODERN, WsClient};
    let db = TestDb::create().await;
    let mut server = ServerProcess::start("server", &db.url, &[], None).await;
    let query = crate::hostile::deep_list_literal(2_000);
    let http = reqwest::Client::new();
    let refused = |body: &Value, how: &str| {
        let code = error_code(body).unwrap_or_default();
        assert!(
            code == "GRAPHQL_VALIDATION_FAILED" || code == "GRAPHQL_PARSE_FAILED",
            "{how}: {body}"
        );
    };

    let (status, body) = server
        .client(&http)
        .send(&query, json!({}), &Auth::none())
        .await
        .expect("POST answered");
    assert!(status < 500, "POST: {status}");
    refused(&body, "POST");

    let get: Value = http
        .get(format!("{}/graphql", server.url()))
        .query(&[("query", query.as_str())])
        .header("Apollo-Require-Preflight", "true")
        .send()
        .await
        .expect("GET answered")
        .json()
        .await
        .expect("json");
    refused(&get, "GET");

    for protocol in [MODERN, LEGACY] {
        let mut ws = WsClient::connect(&server.url(), protocol, json!({}))
            .await
            .unwrap_or_else(|e| panic!("{protocol}: {e:?}"));
        ws.subscribe("deep", &query, json!({})).await;
        let answer = ws
            .next(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{protocol}: no answer"));
        let errors = match answer["type"].as_str() {
            Some("error") => json!({ "errors": answer["payload"] }),
            _ => answer["payload"].clone(),
        };
        refused(&errors, protocol);
    }

    let health = http
        .get(format!("{}/health", server.url()))
        .send()
        .await
        .expect("the process still answers");
    assert_eq!(health.status(), 200);
    assert!(
        server.wait(Duration::from_millis(100)).await.is_none(),
        "the process exited:\n{}",
        server.logs()
    );
    server.sigterm().await;
    let status = server.wait(Duration::from_secs(10)).await.expect("exits");
    assert!(status.success(), "exit status {status}");
}

/// Runs `sql` (statements separated by `;`) on the database.
async fn execute(database_url: &str, sql: &str) {
    use diesel_async::SimpleAsyncConnection;
    let mut conn = Conn::establish(database_url).await.expect("connect");
    conn.batch_execute(sql).await.expect("execute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_an_instance_during_a_waitlist_offer_loses_no_seat() {
    let db = TestDb::create().await;
    let env = [
        ("WAITLIST_OFFER_TTL", "2s"),
        ("HOLD_SWEEP_INTERVAL", "300ms"),
        ("QUEUE_TICK", "100ms"),
    ];
    let mut a = ServerProcess::start("A", &db.url, &env, None).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    let client = a.client(&http);

    // A date of two seats, on sale at once (no sale record), sold out to one buyer.
    let operator = client.sign_up(&unique_name()).await;
    execute(
        &db.url,
        &format!(
            "UPDATE users SET role = 'OPERATOR' WHERE id = '{}'",
            operator.user_id
        ),
    )
    .await;
    let date = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    let created = client
        .gql(
            "mutation($i: CreateConcertInput!) { createConcert(input: $i) { id } }",
            json!({ "i": { "title": "Two Seats", "venue": "Box", "dates": [date.to_string()],
                           "seatsPerDate": 2, "price": "10.00" } }),
            &operator.auth(),
        )
        .await
        .ok();
    let concert = created["createConcert"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    execute(
        &db.url,
        &format!("DELETE FROM sales WHERE concert_id = '{concert}'"),
    )
    .await;
    let mut buyer = client.sign_up(&unique_name()).await;
    client
        .gql(CHARGE, json!({ "a": "20.00", "k": "buyer" }), &buyer.auth())
        .await
        .ok();
    assert_eq!(
        client.enter_queue(&mut buyer, &concert).await["status"],
        "ACTIVE"
    );
    let held = client
        .gql(
            "mutation($c: ID!, $d: Date!) { holdSeats(concertId: $c, date: $d, seatNumbers: [1, 2]) { id seats { reservationId } } }",
            json!({ "c": concert, "d": date.to_string() }),
            &buyer.auth(),
        )
        .await
        .ok();
    client
        .gql(
            "mutation($o: ID!) { payOrder(orderId: $o, idempotencyKey: \"buy\") { status } }",
            json!({ "o": held["holdSeats"]["id"] }),
            &buyer.auth(),
        )
        .await
        .ok();
    let seat_one = held["holdSeats"]["seats"][0]["reservationId"]
        .as_str()
        .expect("reservation")
        .to_owned();
    let mut waiters = Vec::new();
    for _ in 0..3 {
        let fan = client.sign_up(&unique_name()).await;
        client
            .gql(
                "mutation($c: ID!, $d: Date!) { joinWaitlist(concertId: $c, date: $d, count: 1) { status } }",
                json!({ "c": concert, "d": date.to_string() }),
                &fan.auth(),
            )
            .await
            .ok();
        waiters.push(fan);
    }

    // The refund frees seat 1 and A dies at about the same moment: before, during or after the
    // offer it makes right after committing.
    let refund = {
        let client = client.clone();
        let operator = operator.clone();
        let seat_one = seat_one.clone();
        tokio::spawn(async move {
            client
                .gql(
                    "mutation($r: ID!) { refund(reservationId: $r) { status } }",
                    json!({ "r": seat_one }),
                    &operator.auth(),
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(15)).await;
    a.sigkill().await;
    assert!(a.wait(Duration::from_secs(5)).await.is_some(), "A exits");
    let _ = refund.await;

    let b = ServerProcess::start("B", &db.url, &env, None).await;
    let client = b.client(&http);
    let refunded = count(
        &db.url,
        &format!(
            "SELECT COUNT(*) AS n FROM reservations WHERE id = '{seat_one}' AND status = 'REFUNDED'"
        ),
    )
    .await;
    if refunded == 0 {
        // A died before the refund committed: it is asked again, as the operator would.
        client
            .gql(
                "mutation($r: ID!) { refund(reservationId: $r) { status } }",
                json!({ "r": seat_one }),
                &operator.auth(),
            )
            .await
            .ok();
    }

    // Nobody pays: the seat goes to each waiter in turn (2 s each), then back on sale.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let expired = count(
            &db.url,
            "SELECT COUNT(*) AS n FROM waitlist_entries WHERE status = 'EXPIRED' \
             OR (status = 'OFFERED' AND offer_expires_at <= UTC_TIMESTAMP(6))",
        )
        .await;
        let waiting = count(
            &db.url,
            "SELECT COUNT(*) AS n FROM concert_dates WHERE waitlist_waiting > 0",
        )
        .await;
        if expired == 3 && waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the offers did not pass on: {expired} lapsed, {waiting} dates waiting"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Each waiter was offered seat 1 once, in join order.
    let offers = count(
        &db.url,
        "SELECT COUNT(*) AS n FROM orders o JOIN reservations r ON r.order_id = o.id \
         WHERE o.source = 'WAITLIST' AND r.seat_number = 1",
    )
    .await;
    assert_eq!(offers, 3, "one offer per waiter");
    let in_order = count(
        &db.url,
        "SELECT COUNT(*) AS n FROM waitlist_entries a JOIN waitlist_entries b \
           ON b.concert_id = a.concert_id AND b.seq = a.seq + 1 \
         JOIN orders oa ON oa.id = a.order_id JOIN orders ob ON ob.id = b.order_id \
         WHERE oa.created_at < ob.created_at",
    )
    .await;
    assert_eq!(in_order, 2, "offered in join order");
    // And the seat is on sale again: a fan in a turn holds it through B.
    let mut late = client.sign_up(&unique_name()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.enter_queue(&mut late, &concert).await["status"] != "ACTIVE" {
        assert!(Instant::now() < deadline, "the room reopens");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client
        .gql(
            "mutation($c: ID!, $d: Date!) { holdSeats(concertId: $c, date: $d, seatNumbers: [1]) { id } }",
            json!({ "c": concert, "d": date.to_string() }),
            &late.auth(),
        )
        .await
        .ok();
    assert_invariants(&db.url).await;
    b.sigterm().await;
}
