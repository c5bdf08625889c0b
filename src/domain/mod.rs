//! The domain: the rules of the queue, the catalog, holds, the wallet and payment. It knows nothing
//! of HTTP or GraphQL; resolvers and background tasks call the same functions.
//!
//! Grouped by aggregate, so the tree answers "where is the rule for X": `accounts/` (sign-up,
//! sign-in and its lockout, tokens and the viewer, password hashing), `catalog` (concerts,
//! dates, seats as fans read them), `lineup` (operators make concerts; it opens each one's room
//! in `queue`), `queue/` (waiting rooms, entry, admission, sales), `live/` (what subscribers
//! see), `orders/` (seats held, paid, released, refunded together), `wallet` (the ledger). Under them
//! `services`, what every use case is handed (each aggregate's component, such as the token
//! signer or the live hub, lives in a file of its own that needs no `Services`, so nothing
//! loops), and the values and knobs every aggregate uses: `error`, `inputs`, `money`, `paging`,
//! `rules`, `throttle`, `idempotency`, `time`, and the demo `seed`.

/// Runs `$body`, an async closure taking `&mut Conn`, as one unit of database work on a leased
/// connection, with the domain's error (see `db::transaction`).
macro_rules! with_conn {
    ($db:expr, $body:expr) => {
        $crate::db::transaction::unit_of_work!($crate::domain::Error; $db, $body)
    };
}

/// Runs `$body`, an async closure taking `&mut Conn`, in one database transaction, retried on
/// deadlock, lock-wait timeout or write conflict (see `db::transaction`). The body may run more
/// than once, so it must have no effects outside the transaction.
macro_rules! transaction {
    ($db:expr, $body:expr) => {
        $crate::db::transaction::retrying_transaction!($crate::domain::Error; $db, $body)
    };
}

pub mod accounts;
pub mod catalog;
pub mod error;
mod idempotency;
pub mod inputs;
#[cfg(test)]
mod inputs_properties;
pub mod lineup;
pub mod live;
pub mod money;
pub mod orders;
pub mod paging;
pub mod queue;
pub mod rules;
pub mod seed;
pub mod services;
pub mod throttle;
pub mod time;
pub mod wallet;

pub use error::{Error, Result};
