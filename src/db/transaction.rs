//! Units of work and transactions over a [`Lease`](super::Lease), with the retry policy.
//!
//! Both are macros rather than functions: a generic async-closure parameter cannot be required to
//! return a `Send` future on stable Rust; inlined, the closure is concrete. Each takes the error
//! type the body returns, which must convert from [`PoolError`](super::PoolError) (a checkout
//! that failed) and say whether it is worth a retry ([`Retryable`]). The domain wraps them as
//! `with_conn!` and `transaction!` with its own error.
//!
//! The cancellation rule holds by construction: the lease goes back to the pool only after the
//! body returned (`Lease::finish`); a unit of work dropped at any await closes its connection and
//! the server rolls back whatever was open.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// How many times a transaction is retried after a deadlock, lock-wait timeout or write conflict.
pub const MAX_RETRIES: u32 = 8;

/// An error that may say "run the transaction again".
pub trait Retryable {
    fn is_retryable(&self) -> bool;

    /// The connection itself failed (see `db::is_connection_error`). Met in a transaction's body,
    /// before `COMMIT` was sent, it is a rollback, and the transaction is run once more.
    fn is_connection_lost(&self) -> bool {
        false
    }

    /// The error met by `COMMIT` itself, after the body succeeded. A connection lost there
    /// leaves the outcome unknown: the server may have committed before the link went. The
    /// error type says so, so the client learns to retry with its idempotency key rather than
    /// guess. (Errors the server reports at commit, such as a cluster's certification conflict,
    /// are definite rollbacks.)
    fn at_commit(self) -> Self
    where
        Self: Sized,
    {
        self
    }
}

/// Runs `$body`, an async closure taking `&mut Conn`, as one unit of database work on a leased
/// connection. The body must not lease another connection.
macro_rules! unit_of_work {
    ($err:ty; $db:expr, $body:expr) => {
        async {
            let mut lease = $db.lease().await?;
            let result: ::std::result::Result<_, $err> = ($body)(&mut *lease).await;
            lease.finish();
            result
        }
    };
}

/// Runs `$body`, an async closure taking `&mut Conn`, in one database transaction on a leased
/// connection, retrying up to [`MAX_RETRIES`] times when the error [`Retryable::is_retryable`].
/// The body may run more than once, so it must have no effects outside the transaction. Each
/// attempt takes a fresh lease: a connection is never held while waiting out the backoff.
macro_rules! retrying_transaction {
    ($err:ty; $db:expr, $body:expr) => {
        async {
            let mut attempt = 0u32;
            loop {
                let mut lease = $db.lease().await?;
                // Set when the body returned Ok: an error after that came from COMMIT.
                let committing = ::std::sync::atomic::AtomicBool::new(false);
                let body = $body;
                let result: ::std::result::Result<_, $err> =
                    ::diesel_async::AsyncConnection::transaction(
                        &mut *lease,
                        async |conn: &mut $crate::db::Conn| {
                            let result: ::std::result::Result<_, $err> = body(conn).await;
                            if result.is_ok() {
                                committing.store(true, ::std::sync::atomic::Ordering::Relaxed);
                            }
                            result
                        },
                    )
                    .await;
                lease.finish();
                let result = match result {
                    Err(e) if committing.load(::std::sync::atomic::Ordering::Relaxed) => {
                        Err($crate::db::transaction::Retryable::at_commit(e))
                    }
                    other => other,
                };
                // A connection lost in the body (COMMIT never sent): the server rolled it back,
                // so it runs once more on a fresh lease, from another node on a cluster.
                let lost_before_commit = attempt == 0
                    && !committing.load(::std::sync::atomic::Ordering::Relaxed)
                    && result
                        .as_ref()
                        .is_err_and($crate::db::transaction::Retryable::is_connection_lost);
                match result {
                    Err(e)
                        if ($crate::db::transaction::Retryable::is_retryable(&e)
                            || lost_before_commit)
                            && attempt < $crate::db::transaction::MAX_RETRIES =>
                    {
                        attempt += 1;
                        $crate::db::transaction::backoff(attempt).await;
                    }
                    other => break other,
                }
            }
        }
    };
}

pub(crate) use {retrying_transaction, unit_of_work};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff_delay(1) < Duration::from_millis(21));
        assert!(backoff_delay(20) <= Duration::from_millis(640));
    }
}
