//! Storage: diesel-async on MariaDB/MySQL.
//!
//! Query functions take `&mut Conn` so the same function runs inside or outside a transaction;
//! the domain decides where units of work and transactions begin and end (its `with_conn!` and
//! `transaction!` macros, over [`Database::lease`]). Connections run at READ COMMITTED: every
//! decision in this service is a conditional UPDATE or a `FOR UPDATE` read, so we want InnoDB's
//! row locks without its gap locks.
//!
//! **Cancellation rule** (see [`pool`] for the why): a pooled connection returns to the pool only
//! when the unit of work that leased it ran to its end. A unit of work dropped at any await closes
//! its connection at once, so no one is ever served from a connection that is out of step with the
//! server, and an open transaction rolls back whole. No code holds one lease while it waits for
//! another.

pub mod models;
pub mod pool;
pub mod schema;
pub mod states;

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

#[doc(hidden)]
pub use diesel_async::AsyncConnection as _AsyncConnection;
pub use pool::{Counter, Database, Lease, PoolConfig, PoolError, PoolStatus};

pub type Conn = AsyncMysqlConnection;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How many times a transaction is retried after a deadlock, lock-wait timeout or write conflict.
pub const MAX_RETRIES: u32 = 8;

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

/// True when the error says the connection itself failed (socket closed, server gone or shutting
/// down, connection killed) rather than the statement: the connection is discarded and the
/// request is answered `SERVICE_UNAVAILABLE`. diesel-async keeps only message text: mysql_async
/// prefixes its own errors ("Input/output error", "Driver error", ...), server errors carry the
/// server's message.
pub fn is_connection_error(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            [
                "Input/output error",
                "Driver error",
                "Other error",
                "Connection was killed",
                "Server shutdown in progress",
                "server has gone away",
                "Lost connection",
                "Query execution was interrupted",
            ]
            .iter()
            .any(|m| message.contains(m))
                // The same words for a statement over `max_statement_time`: the connection is fine.
                && !message.contains("max_statement_time")
        }
        _ => false,
    }
}

/// A short label of what went wrong, for the `db_errors_total` metric.
pub fn error_kind(err: &DieselError) -> &'static str {
    if is_connection_error(err) {
        return "connection";
    }
    if is_retryable(err) {
        return "conflict";
    }
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => "unique_violation",
        DieselError::DatabaseError(_, _) => "server",
        DieselError::NotFound => "not_found",
        _ => "other",
    }
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
