//! Test harness: every test gets its own database (created, migrated, dropped on `Drop`; those of
//! killed runs swept at the next start) on the private MariaDB the test command starts, and the
//! real server on 127.0.0.1:0. [`TestApp`] carries the server and its [`Client`], the one place
//! requests are written. Time passes on the database clock ([`TestApp::time_passes`]) rather than
//! by sleeping. Beside it: [`ws`], a GraphQL-over-websocket client, and [`throwaway_db`], a
//! MariaDB of a test's own for fault tests that stop and restart it.
//!
//! (A migrated template cloned per test was measured and set aside: MariaDB has no
//! `CREATE DATABASE .. TEMPLATE`, and `CREATE TABLE .. LIKE` per table cost 53 ms against 55 ms
//! for running the migrations.)

#[path = "../../support/fresh_database.rs"]
mod fresh_database;
pub mod throwaway_db;
pub mod ws;

use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use encore::background::Background;
use encore::config::{Rules, ServerLimits};
use encore::db::{Conn, Database, PoolConfig};
use encore::domain::lineup::create_single_price_concert;
use encore::domain::services::Services;
use encore::startup::{self, Running};
use serde_json::{Value, json};

pub const ADMIN_URL_VAR: &str = "ENCORE_TEST_DATABASE_URL";

/// A database of its own for one test (shared with the benchmarks: `tests/support`).
pub type TestDb = fresh_database::FreshDatabase;

/// The test databases' name prefix: the sweep of leftovers looks only at these.
const TEST_DB_PREFIX: &str = "encore_test_";

impl TestDb {
    /// A migrated database of its own on the private MariaDB the test command starts.
    pub async fn create() -> Self {
        let admin_url = std::env::var(ADMIN_URL_VAR).unwrap_or_else(|_| {
            panic!("{ADMIN_URL_VAR} is not set: run the suite with scripts/test, which starts a private MariaDB")
        });
        fresh_database::FreshDatabase::create_on(&admin_url, TEST_DB_PREFIX)
            .await
            .expect("create and migrate a test database")
    }
}

/// A pool for tests that are not about the pool: waits as long as the old default, so a CI
/// machine loaded by parallel tests does not turn a slow checkout into SERVICE_UNAVAILABLE.
pub fn test_pool(size: usize) -> PoolConfig {
    PoolConfig {
        size,
        wait_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
    }
}

/// A concert in the database at `url` with `dates` weekly dates from next week, 50 seats each at
/// `price`, written straight in SQL.
pub async fn concert_in(url: &str, price: &str, dates: u64) -> (String, Vec<NaiveDate>) {
    let today = Utc::now().date_naive();
    let dates: Vec<NaiveDate> = (1..=dates)
        .filter_map(|d| today.checked_add_days(Days::new(d * 7)))
        .collect();
    let mut conn = Conn::establish(url).await.expect("connect");
    let id = create_single_price_concert(
        &mut conn,
        "Test Concert",
        "Test Hall",
        &price.parse().expect("price"),
        &dates,
    )
    .await
    .expect("create concert");
    (id.into(), dates)
}

/// A connection of the test's own holding `FOR UPDATE` locks on users' rows in an open
/// transaction: the service's statements on those users wait (are mid-flight) until
/// [`RowLocks::release`].
pub struct RowLocks(Conn);

impl RowLocks {
    pub async fn hold(url: &str, user_ids: &[&str]) -> Self {
        use diesel_async::RunQueryDsl;
        let mut conn = Conn::establish(url).await.expect("connect");
        conn.batch_execute("BEGIN").await.expect("begin");
        for id in user_ids {
            let locked: Vec<IdRow> =
                diesel::sql_query("SELECT id FROM users WHERE id = ? FOR UPDATE")
                    .bind::<diesel::sql_types::Text, _>(*id)
                    .load(&mut conn)
                    .await
                    .expect("lock user row");
            assert_eq!(locked.len(), 1, "no user {id}");
        }
        Self(conn)
    }

    pub async fn release(mut self) {
        self.0.batch_execute("ROLLBACK").await.expect("rollback");
    }
}

/// Rules for tests: generous queue limits unless a test is about them.
pub fn test_rules() -> Rules {
    Rules {
        queue_active_limit: 10_000,
        queue_admit_per_sec: 10_000,
        // Tests sign up crowds at once from one address; hashing bounds and rate limits have
        // tests of their own.
        password_hash_queue: 100_000,
        quotas: encore::domain::rules::Quotas::unlimited(),
        ..Rules::default()
    }
}

/// `limits` with metrics on a port of the instance's own: many instances run at once here.
fn own_metrics_port(limits: ServerLimits) -> ServerLimits {
    ServerLimits {
        metrics_bind: encore::config::MetricsBind(Some(([127, 0, 0, 1], 0).into())),
        ..limits
    }
}

pub const JWT_SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

/// One server on a database of its own, and the client that talks to it: every request helper
/// is a [`Client`] method, reached through the app (`app.hold(..)`), or through another
/// instance's client in multi-instance tests.
pub struct TestApp {
    pub server: Running,
    pub db: TestDb,
    pub api: Client,
}

impl std::ops::Deref for TestApp {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.api
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(test_rules(), Background::NONE).await
    }

    pub async fn spawn_with(rules: Rules, background: Background) -> Self {
        Self::spawn_custom(rules, background, &test_pool(24), ServerLimits::default()).await
    }

    /// A test app whose pool and server limits are the test's to choose.
    pub async fn spawn_custom(
        rules: Rules,
        background: Background,
        pool: &PoolConfig,
        limits: ServerLimits,
    ) -> Self {
        init_test_logs();
        let db = TestDb::create().await;
        let server = Self::instance_with(&db, rules, background, pool, limits).await;
        let api = Client::for_server(&server);
        Self { server, db, api }
    }

    /// A server behind a trusted proxy on loopback that writes `X-Forwarded-For`, so a test can
    /// speak as many client addresses, with `quotas` as its limits.
    pub async fn behind_proxy(quotas: encore::domain::rules::Quotas) -> Self {
        let limits = ServerLimits {
            client_address_header: Some("x-forwarded-for".into()),
            trusted_proxies: vec!["127.0.0.1".parse().expect("ip")],
            ..ServerLimits::default()
        };
        let rules = Rules {
            quotas,
            ..test_rules()
        };
        Self::spawn_custom(rules, Background::NONE, &test_pool(4), limits).await
    }

    /// A server in allowlist mode whose trusted documents are `documents` (an Apollo manifest
    /// written to a temporary file, removed when the server is built).
    pub async fn with_trusted_documents(documents: &[&str]) -> Self {
        use sha2::Digest;
        let operations: Vec<Value> = documents
            .iter()
            .map(|body| {
                let id = format!("{:x}", sha2::Sha256::digest(body.as_bytes()));
                json!({ "id": id, "name": "Document", "type": "query", "body": body })
            })
            .collect();
        let manifest = json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": operations,
        });
        let path = std::env::temp_dir().join(format!("trusted-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, manifest.to_string()).expect("manifest");
        let limits = ServerLimits {
            persisted_queries: encore::config::PersistedQueryMode::Allowlist,
            trusted_documents: Some(path.clone()),
            ..ServerLimits::default()
        };
        let app = Self::spawn_custom(test_rules(), Background::NONE, &test_pool(4), limits).await;
        let _ = std::fs::remove_file(path);
        app
    }

    /// A server whose database is unreachable (nothing listens on loopback port 9).
    pub async fn with_dead_database() -> Running {
        let database = Database::connect(
            "mysql://nobody:nothing@127.0.0.1:9/none",
            &PoolConfig::with_size(1),
        )
        .expect("pool");
        let services = Services::new(database, Rules::default(), JWT_SECRET).expect("services");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        startup::spawn(
            listener,
            services,
            Background::NONE,
            own_metrics_port(ServerLimits::default()),
        )
        .expect("spawn server")
    }

    /// Another server process-equivalent on the same database: own pool, own port.
    pub async fn instance(db: &TestDb, rules: Rules, background: Background) -> Running {
        Self::instance_with(
            db,
            rules,
            background,
            &test_pool(24),
            ServerLimits::default(),
        )
        .await
    }

    /// An instance with a pool and limits of its own.
    pub async fn instance_with(
        db: &TestDb,
        rules: Rules,
        background: Background,
        pool: &PoolConfig,
        limits: ServerLimits,
    ) -> Running {
        let database = Database::connect(&db.url, pool).expect("pool");
        let services = Services::new(database, rules, JWT_SECRET).expect("services");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        startup::spawn(listener, services, background, own_metrics_port(limits))
            .expect("spawn server")
    }

    pub fn services(&self) -> &Services {
        &self.server.services
    }

    /// A connection of the test's own, outside the server's pool, for SQL checks.
    pub async fn conn(&self) -> Conn {
        Conn::establish(&self.db.url)
            .await
            .expect("connect to the test database")
    }

    /// `d` passes on the database clock, without waiting: every stored deadline and presence time
    /// (hold deadlines, when orders were taken, turn deadlines and admissions, last-seen times,
    /// the admission pace) moves back by `d`. Only the database clock decides expiry, so to the service this is the same
    /// as `d` going by. Write stamps (`updated_at`) stay, so live feeds still see changes.
    pub async fn time_passes(&self, d: Duration) {
        let us = d.as_micros();
        let back = |column: &str| format!("{column} = {column} - INTERVAL {us} MICROSECOND");
        let mut conn = self.conn().await;
        conn.batch_execute(&format!(
            "UPDATE seats SET {}; UPDATE reservations SET {}; UPDATE orders SET {}, {}; \
             UPDATE waitlist_entries SET {}; \
             UPDATE queue_tickets SET {}, {}, {}; UPDATE queue_rooms SET {}, {};",
            back("held_until"),
            back("held_until"),
            back("held_until"),
            back("created_at"),
            back("offer_expires_at"),
            back("last_seen_at"),
            back("activated_at"),
            back("expires_at"),
            back("admit_clock"),
            back("last_tick_at"),
        ))
        .await
        .expect("move stored times back");
    }

    /// Every sign-in lock lapses now (the database clock decides it).
    pub async fn time_passes_for_sign_in(&self) {
        use diesel_async::RunQueryDsl;
        let mut conn = self.conn().await;
        diesel::sql_query(
            "UPDATE sign_in_failures SET locked_until = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND \
             WHERE locked_until IS NOT NULL",
        )
        .execute(&mut conn)
        .await
        .expect("lapse the lock");
    }

    /// A concert with `dates` future dates, 50 seats each.
    pub async fn concert(&self, price: &str, dates: u64) -> (String, Vec<NaiveDate>) {
        concert_in(&self.db.url, price, dates).await
    }

    /// A signed-up account made an operator (as `encore operator grant` does).
    pub async fn operator(&self) -> Fan {
        let fan = self.fan().await;
        encore::domain::accounts::grant_operator(self.services(), &fan.email)
            .await
            .expect("grant operator");
        fan
    }

    /// A concert `operator` makes through the API (`createConcert` with `input`), put on sale now.
    pub async fn concert_on_sale(&self, operator: &Fan, input: Value) -> String {
        let created = self
            .gql(
                "mutation($i: CreateConcertInput!) { createConcert(input: $i) { id } }",
                json!({ "i": input }),
                &operator.auth(),
            )
            .await
            .ok();
        let concert = created["createConcert"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        self.open_sale_now(operator, &concert).await;
        concert
    }

    /// Puts a concert an operator made on sale now: a sale scheduled a moment ahead, then its
    /// (empty) pre-queue drawn as a ticker would.
    pub async fn open_sale_now(&self, operator: &Fan, concert: &str) {
        use diesel_async::RunQueryDsl;
        let mut conn = self.conn().await;
        let now: chrono::NaiveDateTime = diesel::select(diesel::dsl::sql::<
            diesel::sql_types::Datetime,
        >("UTC_TIMESTAMP(6)"))
        .get_result(&mut conn)
        .await
        .expect("clock");
        let opens = now + chrono::TimeDelta::milliseconds(300);
        self.gql(
            "mutation($c: ID!, $o: DateTime!) { scheduleSale(concertId: $c, opensAt: $o) { opensAt } }",
            json!({ "c": concert, "o": opens.and_utc().to_rfc3339() }),
            &operator.auth(),
        )
        .await
        .ok();
        tokio::time::sleep(Duration::from_millis(350)).await;
        eventually(Duration::from_secs(5), "the sale opens", || async {
            let _ = encore::domain::queue::sale::draw_due(self.services()).await;
            self.count(
                "sales",
                &format!("concert_id = '{concert}' AND drawn_at IS NOT NULL"),
            )
            .await
                == 1
        })
        .await;
    }

    /// An owned handle on the server's API, for tasks of their own.
    pub fn client(&self) -> Client {
        self.api.clone()
    }

    /// For every user: balance equals the sum of the ledger, and nothing is negative.
    pub async fn assert_ledgers_balance(&self) {
        use diesel_async::RunQueryDsl;
        let mut conn = self.conn().await;
        let mismatches: Vec<(String, String, String)> = diesel::sql_query(
            "SELECT u.id AS id, CAST(u.balance AS CHAR) AS balance, CAST(COALESCE(SUM(t.amount), 0) AS CHAR) AS ledger \
             FROM users u LEFT JOIN wallet_transactions t ON t.user_id = u.id \
             GROUP BY u.id, u.balance HAVING u.balance <> COALESCE(SUM(t.amount), 0) OR u.balance < 0",
        )
        .load::<LedgerRow>(&mut conn)
        .await
        .expect("ledger query")
        .into_iter()
        .map(|r| (r.id, r.balance, r.ledger))
        .collect();
        assert!(
            mismatches.is_empty(),
            "balance differs from ledger: {mismatches:?}"
        );
    }

    /// The most admissions any one-second window saw, by the database's `activated_at`.
    pub async fn busiest_admission_second(&self) -> i64 {
        use diesel_async::RunQueryDsl;
        let mut conn = self.conn().await;
        let row: CountRow = diesel::sql_query(
            "SELECT COALESCE(MAX((SELECT COUNT(*) FROM queue_tickets b WHERE b.status = 'ACTIVE' \
             AND b.activated_at >= a.activated_at AND b.activated_at < a.activated_at + INTERVAL 1 SECOND)), 0) AS n \
             FROM queue_tickets a WHERE a.status = 'ACTIVE'",
        )
        .get_result(&mut conn)
        .await
        .expect("admission windows");
        row.n
    }

    /// Counts rows matching a SQL condition in a table, straight from the database.
    pub async fn count(&self, table: &str, condition: &str) -> i64 {
        use diesel_async::RunQueryDsl;
        let mut conn = self.conn().await;
        let row: CountRow = diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {condition}"
        ))
        .get_result(&mut conn)
        .await
        .expect("count query");
        row.n
    }
}

#[derive(diesel::QueryableByName)]
struct LedgerRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    balance: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    ledger: String,
}

#[derive(diesel::QueryableByName)]
struct CountRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Credentials for one request.
#[derive(Clone, Default)]
pub struct Auth {
    pub bearer: Option<String>,
    pub queue_token: Option<String>,
}

impl Auth {
    pub fn none() -> Self {
        Self::default()
    }
}

#[derive(Clone, Debug)]
pub struct Fan {
    pub username: String,
    pub email: String,
    pub token: String,
    pub user_id: String,
    pub queue_token: Option<String>,
}

impl Fan {
    pub fn auth(&self) -> Auth {
        Auth {
            bearer: Some(self.token.clone()),
            queue_token: self.queue_token.clone(),
        }
    }
}

/// A GraphQL client for one server instance, with the requests tests make.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
}

impl Client {
    pub fn for_server(server: &Running) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(200)
            .build()
            .expect("http client");
        Self {
            http,
            url: format!("{}/graphql", server.url()),
        }
    }

    pub async fn gql(&self, query: &str, variables: Value, auth: &Auth) -> Gql {
        let (status, body) = self
            .send(query, variables, auth)
            .await
            .expect("request with a JSON answer");
        // A request refused before execution is 400 (application/graphql-response+json); 503
        // (database unreachable) and 504 (timeout) carry a GraphQL error body too.
        assert!(
            (200..300).contains(&status) || [400, 503, 504].contains(&status),
            "HTTP {status}"
        );
        assert!(
            status == 200 || body["errors"][0]["extensions"]["code"].is_string(),
            "HTTP {status} without a coded error: {body}"
        );
        Gql { body }
    }

    /// One GraphQL request: its HTTP status and JSON body, or the failed exchange (refused,
    /// reset, no JSON) for tests about servers that go away.
    pub async fn send(
        &self,
        query: &str,
        variables: Value,
        auth: &Auth,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut request = self
            .http
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(bearer) = &auth.bearer {
            request = request.header("Authorization", format!("Bearer {bearer}"));
        }
        if let Some(token) = &auth.queue_token {
            request = request.header("Queue-Token", token);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    /// Signs up a new fan with a unique name.
    pub async fn fan(&self) -> Fan {
        self.sign_up(&unique_name()).await
    }

    /// A signed-up fan who entered the queue and was admitted.
    pub async fn admitted_fan(&self, concert_id: &str) -> Fan {
        let mut fan = self.fan().await;
        let ticket = self.enter_queue(&mut fan, concert_id).await;
        assert_eq!(
            ticket["status"], "ACTIVE",
            "expected immediate admission: {ticket}"
        );
        fan
    }

    pub async fn charge(&self, fan: &Fan, amount: &str) -> Gql {
        self.gql(
            "mutation($a: Decimal!, $k: String!) { charge(amount: $a, idempotencyKey: $k) { balance } }",
            json!({ "a": amount, "k": uuid::Uuid::new_v4().to_string() }),
            &fan.auth(),
        )
        .await
    }

    pub async fn charge_with_key(&self, fan: &Fan, amount: &str, key: &str) -> Gql {
        self.gql(
            "mutation($a: Decimal!, $k: String!) { charge(amount: $a, idempotencyKey: $k) { balance } }",
            json!({ "a": amount, "k": key }),
            &fan.auth(),
        )
        .await
    }

    pub async fn pay(&self, fan: &Fan, reservation_id: &str) -> Gql {
        self.gql(
            "mutation($r: ID!) { pay(reservationId: $r) { id amount reservation { id status } } }",
            json!({ "r": reservation_id }),
            &fan.auth(),
        )
        .await
    }

    pub async fn balance(&self, fan: &Fan) -> String {
        let r = self
            .gql("{ wallet { balance } }", json!({}), &fan.auth())
            .await
            .ok();
        r["wallet"]["balance"].as_str().expect("balance").to_owned()
    }

    pub async fn seat_status(
        &self,
        fan: &Fan,
        concert_id: &str,
        date: NaiveDate,
        seat: i32,
    ) -> String {
        let r = self
            .gql(
                "query($c: ID!, $d: Date!) { seats(concertId: $c, date: $d) { number status } }",
                json!({ "c": concert_id, "d": date.to_string() }),
                &fan.auth(),
            )
            .await
            .ok();
        r["seats"][(seat - 1) as usize]["status"]
            .as_str()
            .expect("status")
            .to_owned()
    }

    /// All `fans` enter the concert's queue at once.
    pub async fn enter_all(&self, fans: &mut [Fan], concert_id: &str) {
        let client = self.clone();
        futures::future::join_all(fans.iter_mut().map(|f| {
            let client = client.clone();
            async move {
                client.enter_queue(f, concert_id).await;
            }
        }))
        .await;
    }

    pub async fn sign_up(&self, name: &str) -> Fan {
        self.sign_up_with_email(name, &format!("{name}@fans.test"))
            .await
    }

    /// A fan whose address is not the usual `<name>@fans.test`.
    pub async fn sign_up_with_email(&self, name: &str, email: &str) -> Fan {
        let email = email.to_owned();
        let r = self
            .gql(
                "mutation($u: String!, $e: String!, $p: String!) { signUp(username: $u, email: $e, password: $p) { token user { id } } }",
                json!({ "u": name, "e": email, "p": "password-123" }),
                &Auth::none(),
            )
            .await
            .ok();
        Fan {
            username: name.to_owned(),
            email,
            token: r["signUp"]["token"].as_str().expect("token").to_owned(),
            user_id: r["signUp"]["user"]["id"].as_str().expect("id").to_owned(),
            queue_token: None,
        }
    }

    pub async fn enter_queue(&self, fan: &mut Fan, concert_id: &str) -> Value {
        let r = self
            .gql(
                "mutation($c: ID!) { enterQueue(concertId: $c) { token concertId status position estimatedWaitSeconds expiresAt } }",
                json!({ "c": concert_id }),
                &fan.auth(),
            )
            .await
            .ok();
        let ticket = r["enterQueue"].clone();
        fan.queue_token = ticket["token"].as_str().map(str::to_owned);
        ticket
    }

    pub async fn poll(&self, fan: &Fan) -> Value {
        let r = self
            .gql(
                "{ queueTicket { token status position estimatedWaitSeconds expiresAt } }",
                json!({}),
                &fan.auth(),
            )
            .await
            .ok();
        r["queueTicket"].clone()
    }

    pub async fn hold(&self, fan: &Fan, concert_id: &str, date: NaiveDate, seat: i32) -> Gql {
        self.gql(
            "mutation($c: ID!, $d: Date!, $s: Int!) { holdSeat(concertId: $c, date: $d, seatNumber: $s) { id status seatNumber price heldUntil } }",
            json!({ "c": concert_id, "d": date.to_string(), "s": seat }),
            &fan.auth(),
        )
        .await
    }
}

/// A GraphQL response.
#[derive(Debug, Clone)]
pub struct Gql {
    pub body: Value,
}

impl Gql {
    /// The data, after asserting there were no errors.
    pub fn ok(self) -> Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body["errors"]
        );
        self.body["data"].clone()
    }

    /// The `extensions.code` of the first error, asserting there was one.
    pub fn code(&self) -> String {
        let code = &self.body["errors"][0]["extensions"]["code"];
        assert!(
            code.is_string(),
            "expected an error with a code, got {}",
            self.body
        );
        code.as_str().unwrap_or_default().to_owned()
    }

    pub fn message(&self) -> String {
        self.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn is_ok(&self) -> bool {
        self.body.get("errors").is_none()
    }
}

pub fn unique_name() -> String {
    format!("fan_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Waits until `check` holds, polling every 25 ms, and fails the test past `limit`: for work
/// another task does on its own schedule (a background loop), never a fixed sleep.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Server logs go to the test's captured output, shown only when the test fails.
fn init_test_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Every money and seat invariant, checked in SQL on `url` (`encore::db::invariants`); panics
/// with the rules broken and their offending rows.
pub async fn assert_invariants(url: &str) {
    let mut conn = Conn::establish(url).await.expect("connect for invariants");
    let broken = encore::db::invariants::broken(&mut conn)
        .await
        .expect("invariant queries");
    assert!(broken.is_empty(), "invariants broken: {broken:?}");
}

/// A locked row, counted only.
#[derive(diesel::QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    #[allow(dead_code)]
    id: String,
}
