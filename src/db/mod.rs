//! Storage: diesel-async on MariaDB/MySQL.
//!
//! One module per table ([`users`], [`seats`], [`reservations`], ...) holds that table's
//! statements, typed by [`ids`] and [`states`]; each takes `&mut Conn`, so the same function runs
//! inside or outside a transaction. The domain composes them and decides where units of work and
//! transactions begin and end ([`transaction`]'s macros over [`Database::lease`], which the domain
//! wraps as `with_conn!` and `transaction!`). Connections run at READ COMMITTED: every decision in
//! this service is a conditional UPDATE or a `FOR UPDATE` read, so we want InnoDB's row locks
//! without its gap locks.
//!
//! **Cancellation rule** (see [`pool`] for the why): a pooled connection returns to the pool only
//! when the unit of work that leased it ran to its end. A unit of work dropped at any await closes
//! its connection at once, so no one is ever served from a connection that is out of step with the
//! server, and an open transaction rolls back whole. No code holds one lease while it waits for
//! another.

pub mod cached;
pub mod ids;
pub mod invariants;
pub mod models;
mod nodes;
pub mod pool;
pub mod schema;
pub mod states;
pub mod transaction;

// Storage helpers, one module per table (or pair of tables read together). Use cases compose
// them; they decide nothing but what one statement does.
pub mod concerts;
pub mod idempotency_keys;
pub mod ledger;
pub mod orders;
pub mod price_tiers;
pub mod queue_challenges;
pub mod queue_control_changes;
pub mod queue_rooms;
pub mod queue_tickets;
pub mod reservations;
pub mod sales;
pub mod seats;
pub mod sign_in_failures;
pub mod users;
pub mod waitlist;

use chrono::NaiveDateTime;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use pool::{Counter, Database, Lease, PoolConfig, PoolError, PoolStatus};
pub use transaction::{Retryable, is_retryable};

pub type Conn = AsyncMysqlConnection;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Applies pending embedded migrations to the database at `url`.
pub async fn migrate(url: &str) -> anyhow::Result<Vec<String>> {
    let conn = Conn::establish(url).await?;
    let url_for_log = redact(url);
    // The harness drives the sync migration API with `block_in_place`; it needs the multi-thread
    // runtime, which every entry point uses.
    let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
    let applied = harness
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("migrating {url_for_log}: {e}"))?;
    let applied: Vec<String> = applied.into_iter().map(|v| v.to_string()).collect();
    for version in &applied {
        tracing::info!(%version, "applied migration");
    }
    Ok(applied)
}

/// The database clock. Every deadline is written and compared with this clock, never the
/// instance's, so instances that disagree about the time still agree about expiry.
pub async fn now(conn: &mut Conn) -> Result<NaiveDateTime, DieselError> {
    diesel::select(utc_now()).get_result(conn).await
}

/// `UTC_TIMESTAMP(6)` as an expression, for use inside the statement whose outcome depends on it.
pub fn utc_now() -> cached::UtcNow {
    cached::UtcNow
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
                // A Galera node that left the primary component (1047).
                "WSREP has not yet prepared node",
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
    #[test]
    fn the_erd_shows_every_table() {
        let schema = include_str!("schema.rs");
        let erd = include_str!("../../docs/erd.md");
        let tables: Vec<&str> = schema
            .lines()
            .filter_map(|l| l.strip_prefix("    ")?.split_once(" ("))
            .map(|(name, _)| name)
            .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect();
        assert!(tables.len() > 10, "{tables:?}");
        for table in tables {
            assert!(
                erd.contains(&format!("    {table} {{")),
                "docs/erd.md has no entity for the table {table}"
            );
        }
    }

    use super::*;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("mysql://encore:secret@127.0.0.1:3407/encore"),
            "mysql://encore:***@127.0.0.1:3407/encore"
        );
        assert_eq!(redact("mysql://127.0.0.1/x"), "mysql://127.0.0.1/x");
    }
}
