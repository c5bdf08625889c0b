//! Storage: diesel-async on MariaDB/MySQL.
//!
//! Query functions take `&mut Conn` so the same function runs inside or outside a transaction;
//! the domain decides where transactions begin and end (through [`transaction`]). Connections run
//! at READ COMMITTED: every decision in this service is a conditional UPDATE or a `FOR UPDATE`
//! read, so we want InnoDB's row locks without its gap locks.

pub mod models;
pub mod schema;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::ConnectionError;
use diesel::connection::InstrumentationEvent;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool::{Object, Pool as DeadPool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

#[doc(hidden)]
pub use diesel_async::AsyncConnection as _AsyncConnection;
pub use diesel_async::pooled_connection::deadpool::PoolError;

pub type Conn = AsyncMysqlConnection;
pub type Pool = DeadPool<Conn>;
pub type PooledConn = Object<Conn>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How many times a transaction is retried after a deadlock, lock-wait timeout or write conflict.
pub const MAX_RETRIES: u32 = 8;

const SESSION_SETUP: &str = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// Counts the SQL statements a pool's connections start: the cost model of live updates is
/// "statements per tick", and this is how it is measured (tests, the bench, `/metrics`).
#[derive(Debug, Clone, Default)]
pub struct StatementCounter(Arc<AtomicU64>);

impl StatementCounter {
    pub fn get(&self) -> u64 {
        AtomicU64::load(&self.0, Ordering::Relaxed)
    }
}

/// A pool and the counter of the statements its connections run.
#[derive(Clone)]
pub struct Database {
    pub pool: Pool,
    pub statements: StatementCounter,
}

/// A pool of `size` connections to `url`. Connections are opened lazily.
pub fn connect(url: &str, size: usize) -> anyhow::Result<Database> {
    let statements = StatementCounter::default();
    let counter = statements.clone();
    let mut config = ManagerConfig::default();
    // A failed query discards a broken connection anyway; a ping per checkout is a statement
    // per request we do not need.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        let counter = counter.clone();
        Box::pin(async move {
            let mut conn = Conn::establish(&url).await?;
            conn.batch_execute(SESSION_SETUP)
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
                if let InstrumentationEvent::StartQuery { .. } = event {
                    counter.0.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("db_statements_total").increment(1);
                }
            });
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::<Conn>::new_with_config(url, config);
    let pool = Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()?;
    Ok(Database { pool, statements })
}

/// Applies pending embedded migrations to the database at `url`.
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    let conn = Conn::establish(url).await?;
    let url_for_log = redact(url);
    // The harness drives the sync migration API with `block_in_place`; it needs the multi-thread
    // runtime, which every entry point uses.
    let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
    let applied = harness
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("migrating {url_for_log}: {e}"))?;
    for version in applied {
        tracing::info!(%version, "applied migration");
    }
    Ok(())
}

/// The database clock. Every deadline is written and compared with this clock, never the
/// instance's, so instances that disagree about the time still agree about expiry.
pub async fn now(conn: &mut Conn) -> Result<NaiveDateTime, DieselError> {
    diesel::select(utc_now()).get_result(conn).await
}

/// `UTC_TIMESTAMP(6)` as an expression, for use inside the statement whose outcome depends on it.
/// (A literal: MariaDB does not accept the precision as a bind parameter.)
pub fn utc_now() -> diesel::expression::SqlLiteral<diesel::sql_types::Datetime> {
    diesel::dsl::sql::<diesel::sql_types::Datetime>("UTC_TIMESTAMP(6)")
}

/// True for errors a transaction should simply be retried after: deadlock (1213), lock-wait
/// timeout (1205), and the write conflicts distributed engines report at commit. MySQL drivers
/// surface these as `Unknown` with only the message text.
pub fn is_retryable(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(_, info) => {
            let message = info.message();
            message.contains("Deadlock found")
                || message.contains("Lock wait timeout")
                || message.contains("try restarting transaction")
                || message.contains("Write conflict")
        }
        _ => false,
    }
}

/// Waits before retry number `attempt` (1-based): exponential with jitter, so transactions that
/// deadlocked together do not collide again.
pub async fn backoff(attempt: u32) {
    metrics::counter!("db_transaction_retries_total").increment(1);
    tokio::time::sleep(backoff_delay(attempt)).await;
}

fn backoff_delay(attempt: u32) -> Duration {
    let base = 5u64 << attempt.min(6);
    Duration::from_millis(base + rand::random_range(0..base))
}

/// `url` with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("mysql://encore:secret@127.0.0.1:3407/encore"),
            "mysql://encore:***@127.0.0.1:3407/encore"
        );
        assert_eq!(redact("mysql://127.0.0.1/x"), "mysql://127.0.0.1/x");
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff_delay(1) < Duration::from_millis(21));
        assert!(backoff_delay(20) <= Duration::from_millis(640));
    }
}
