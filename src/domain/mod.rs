//! The domain: the rules of the queue, the catalog, holds, the wallet and payment. It knows nothing
//! of HTTP or GraphQL; resolvers and background tasks call the same functions.
//!
//! Grouped by aggregate, so the tree answers "where is the rule for X": `accounts/` (sign-up,
//! sign-in and its lockout, tokens and the viewer, password hashing), `catalog/` (concerts,
//! dates, seats; `lineup`: operators make them), `queue/` (waiting rooms, entry, admission,
//! sales), `live/` (what subscribers see), `reservations/` (a seat held, paid, refunded),
//! `wallet` (the ledger). Beside them the values and knobs every aggregate uses: `error`,
//! `inputs`, `money`, `paging`, `rules`, `throttle`, `idempotency`, and the demo `seed`.

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
pub mod live;
pub mod money;
pub mod paging;
pub mod queue;
pub mod reservations;
pub mod rules;
pub mod seed;
pub mod throttle;
pub mod wallet;

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};

pub use error::{Error, Result};
// The use-case modules by their own names as well: callers say `booking::hold_seat`, the tree
// says which aggregate it belongs to.
pub use accounts::{auth, passwords};
pub use catalog::lineup;
pub use reservations::{booking, payment, refund};

use crate::db::Database;
use crate::domain::rules::Rules;
use auth::TokenSigner;

/// What every use case needs: the database, the rules in force and the token signer. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub db: Database,
    pub rules: Arc<Rules>,
    pub tokens: Arc<TokenSigner>,
    /// Password hashing, bounded in concurrency and queue.
    pub passwords: Arc<passwords::Passwords>,
    /// Proof-of-work challenges for entering a waiting room.
    pub challenges: Arc<queue::challenge::Challenges>,
    /// This instance's rate limits.
    pub throttle: Arc<throttle::Throttle>,
    /// This instance's fan-out of live updates to its subscribers.
    pub live: Arc<live::LiveHub>,
    /// This instance's front door of the waiting rooms, writing entries in batches.
    pub entries: Arc<queue::EntryDesk>,
}

impl Services {
    pub fn new(database: Database, rules: Rules, jwt_secret: &[u8]) -> Result<Self> {
        let tokens = TokenSigner::new(jwt_secret, rules.jwt_ttl);
        let passwords = passwords::Passwords::new(rules.hashing())?;
        let throttle = throttle::Throttle::new(rules.quotas.clone());
        let challenges = queue::challenge::Challenges::new(
            jwt_secret,
            rules.queue_challenge_ttl,
            rules.queue_pow_difficulty,
        );
        let entries = queue::EntryDesk::new(
            rules.queue_entry_batch as usize,
            rules.queue_entry_backlog as usize,
        );
        Ok(Self {
            db: database,
            rules: Arc::new(rules),
            tokens: Arc::new(tokens),
            passwords: Arc::new(passwords),
            throttle: Arc::new(throttle),
            challenges: Arc::new(challenges),
            live: Arc::new(live::LiveHub::default()),
            entries: Arc::new(entries),
        })
    }
}

/// Stored times are UTC without a zone; this attaches it.
pub fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

/// `std::time::Duration` as a chrono duration for adding to database times.
pub fn chrono_duration(d: std::time::Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}
