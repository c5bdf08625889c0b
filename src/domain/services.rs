//! The domain's composition root: what every use case is handed. Each aggregate owns its part
//! (the token signer and password hashing in `accounts`, challenges and the entry desk in `queue`,
//! the live hub in `live`, the rate limits in `throttle`); this file only puts them together.

use std::sync::Arc;

use crate::db::Database;
use crate::domain::accounts::passwords;
use crate::domain::accounts::tokens::TokenSigner;
use crate::domain::error::Result;
use crate::domain::rules::Rules;
use crate::domain::{live, queue, throttle};

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
