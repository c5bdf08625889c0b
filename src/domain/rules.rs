//! The business knobs of the domain: holds, the wallet, the queue. They are the domain's, so they
//! live here; `config` only puts them on the command line (flags with environment fallbacks,
//! validated while parsing). Defaults are the product's; tests shorten the times.

use std::time::Duration;

use clap::Args;

use super::money::Money;

/// How hashing may use the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimits {
    /// Worker threads, so hashes at once.
    pub concurrency: usize,
    /// Requests that may wait for a worker.
    pub queue: usize,
}

/// The business knobs. Defaults are the product's; tests shorten the times.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct Rules {
    /// How long a held seat stays held without payment.
    #[arg(long, env = "HOLD_TTL", default_value = "5m", value_parser = positive_duration)]
    pub hold_ttl: Duration,

    /// A fan's fair share: most seats of one concert (every date) one account may hold and
    /// own at once, unless the concert sets its own (`maxTicketsPerFan`). Refunded, released
    /// and lapsed seats give the allowance back.
    #[arg(long, env = "MAX_TICKETS_PER_FAN", default_value_t = 6,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub max_tickets_per_fan: u16,

    /// An extra cap on seats one account may hold unpaid at once for one date; 0: none (the
    /// fair share is the bound). Folded into the fair share since orders; kept for operators
    /// who want both.
    #[arg(long, env = "MAX_HOLDS_PER_DATE", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub max_holds_per_date: u32,

    /// How long a waitlist offer holds its seats for the fan before passing them on.
    #[arg(long, env = "WAITLIST_OFFER_TTL", default_value = "10m", value_parser = positive_duration)]
    pub waitlist_offer_ttl: Duration,

    /// The largest amount a single charge may add to a wallet.
    #[arg(long, env = "MAX_CHARGE", default_value = "1000000.00", value_parser = positive_money)]
    pub max_charge: Money,

    /// Lifetime of an access token from signUp/signIn.
    #[arg(long, env = "JWT_TTL", default_value = "1h", value_parser = positive_duration)]
    pub jwt_ttl: Duration,

    /// Most ACTIVE queue tickets per concert at once, across all instances.
    #[arg(long, env = "QUEUE_ACTIVE_LIMIT", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub queue_active_limit: u32,

    /// Most admissions per second per concert, across all instances.
    #[arg(long, env = "QUEUE_ADMIT_PER_SEC", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub queue_admit_per_sec: u32,

    /// How long an ACTIVE ticket lasts before it expires.
    #[arg(long, env = "QUEUE_ACTIVE_TTL", default_value = "10m", value_parser = positive_duration)]
    pub queue_active_ttl: Duration,

    /// A WAITING ticket neither polled nor watched for this long is skipped by admission.
    #[arg(long, env = "QUEUE_ABANDON_AFTER", default_value = "2m", value_parser = positive_duration)]
    pub queue_abandon_after: Duration,

    /// How often each instance runs the admission ticker.
    #[arg(long, env = "QUEUE_TICK", default_value = "1s", value_parser = positive_duration)]
    pub queue_tick: Duration,

    /// How often each instance releases expired holds.
    #[arg(long, env = "HOLD_SWEEP_INTERVAL", default_value = "5s", value_parser = positive_duration)]
    pub hold_sweep_interval: Duration,

    /// Password hashes (argon2id, 19 MiB each) computed at once on this instance: the number of
    /// hashing threads. Default: half the cores, at least one, so a sign-in storm leaves the
    /// other half to everyone else.
    #[arg(long, env = "PASSWORD_HASH_CONCURRENCY", default_value_t = default_hash_threads(),
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub password_hash_concurrency: u32,

    /// Sign-ins and sign-ups that may wait for a hashing thread; past it they are refused with
    /// SERVICE_UNAVAILABLE at once.
    #[arg(long, env = "PASSWORD_HASH_QUEUE", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub password_hash_queue: u32,

    /// Proof-of-work bits every waiting room asks of entrants (0: none; a room may ask more, see
    /// `queue_rooms.pow_difficulty`). Each bit doubles a client's work: 16 is a fraction of a
    /// second in a browser, 20 about a second.
    #[arg(long, env = "QUEUE_POW_DIFFICULTY", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=32))]
    pub queue_pow_difficulty: u8,

    /// Most queue entries written in one transaction. Entries arriving while a room's batch is
    /// written make up its next one, so this bounds a batch's size, never an entry's wait.
    #[arg(long, env = "QUEUE_ENTRY_BATCH", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=5_000))]
    pub queue_entry_batch: u32,

    /// Entries that may wait for their room's next batch on one instance; past it they are
    /// refused with SERVICE_UNAVAILABLE at once.
    #[arg(long, env = "QUEUE_ENTRY_BACKLOG", default_value_t = 20_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queue_entry_backlog: u32,

    /// How long a queue challenge may be answered.
    #[arg(long, env = "QUEUE_CHALLENGE_TTL", default_value = "2m", value_parser = positive_duration)]
    pub queue_challenge_ttl: Duration,

    /// Most seats a concert may have per date (`createConcert`'s `seatsPerDate`).
    #[arg(long, env = "MAX_SEATS_PER_DATE", default_value_t = 2000,
          value_parser = clap::value_parser!(u16).range(1..=30_000))]
    pub max_seats_per_date: u16,

    /// A fan may refund their own ticket until this long before the show's date begins (UTC);
    /// operators may refund any ticket at any time.
    #[arg(long, env = "REFUND_CUTOFF", default_value = "48h", value_parser = positive_duration)]
    pub refund_cutoff: Duration,

    /// The ISO 4217 code of every amount (prices, balances): what the apps show next to them.
    #[arg(long, env = "CURRENCY", default_value = "EUR", value_parser = currency_code)]
    pub currency: String,

    #[command(flatten)]
    pub quotas: Quotas,
}

impl Default for Rules {
    /// The same values as the flags' defaults (a unit test keeps the two in step).
    fn default() -> Self {
        Self {
            hold_ttl: Duration::from_secs(5 * 60),
            max_tickets_per_fan: 6,
            max_holds_per_date: 0,
            waitlist_offer_ttl: Duration::from_secs(10 * 60),
            max_charge: Money::from_stored(1_000_000.into()),
            jwt_ttl: Duration::from_secs(60 * 60),
            queue_active_limit: 100,
            queue_admit_per_sec: 10,
            queue_active_ttl: Duration::from_secs(10 * 60),
            queue_abandon_after: Duration::from_secs(2 * 60),
            queue_tick: Duration::from_secs(1),
            hold_sweep_interval: Duration::from_secs(5),
            password_hash_concurrency: default_hash_threads(),
            password_hash_queue: 32,
            queue_pow_difficulty: 0,
            queue_challenge_ttl: Duration::from_secs(120),
            queue_entry_batch: 500,
            queue_entry_backlog: 20_000,
            max_seats_per_date: 2000,
            refund_cutoff: Duration::from_secs(48 * 60 * 60),
            currency: "EUR".to_owned(),
            quotas: Quotas::default(),
        }
    }
}

impl Rules {
    pub fn hashing(&self) -> HashingLimits {
        HashingLimits {
            concurrency: self.password_hash_concurrency as usize,
            queue: self.password_hash_queue as usize,
        }
    }
}

fn default_hash_threads() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    u32::try_from(cores / 2).unwrap_or(1).max(1)
}

fn positive_money(s: &str) -> Result<Money, String> {
    let cap: Money = "999999999999.99".parse().map_err(|e| format!("{e}"))?;
    Money::parse_positive(s, &cap).map_err(|e| e.to_string())
}

/// A currency as ISO 4217 writes it: three capital letters (EUR, USD, GBP).
fn currency_code(s: &str) -> Result<String, String> {
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(s.to_owned())
    } else {
        Err("must be an ISO 4217 code such as EUR or USD".into())
    }
}

/// A duration flag such as `90s` or `5m`, greater than zero.
pub(crate) fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (use e.g. 90s, 5m, 250ms)"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

/// The rate limits and the sign-in lockout (enforced by `throttle` and `accounts`), each a flag
/// with an environment variable. Zero switches a limit off.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct Quotas {
    /// Requests per second from one client address (HTTP requests and websocket upgrades).
    #[arg(long, env = "RATE_LIMIT_REQUESTS_PER_SEC", default_value_t = 50)]
    pub requests_per_sec: u32,
    /// signUp calls per hour from one client address.
    #[arg(long, env = "RATE_LIMIT_SIGN_UPS_PER_HOUR", default_value_t = 20)]
    pub sign_ups_per_hour: u32,
    /// signIn calls per minute from one client address.
    #[arg(long, env = "RATE_LIMIT_SIGN_INS_PER_MIN", default_value_t = 30)]
    pub sign_ins_per_min: u32,
    /// signIn calls per minute for one email, from anywhere.
    #[arg(
        long,
        env = "RATE_LIMIT_SIGN_INS_PER_ACCOUNT_PER_MIN",
        default_value_t = 10
    )]
    pub sign_ins_per_account_per_min: u32,
    /// enterQueue calls per minute from one client address.
    #[arg(long, env = "RATE_LIMIT_QUEUE_ENTRIES_PER_MIN", default_value_t = 120)]
    pub queue_entries_per_min: u32,
    /// enterQueue calls per minute by one account.
    #[arg(
        long,
        env = "RATE_LIMIT_QUEUE_ENTRIES_PER_ACCOUNT_PER_MIN",
        default_value_t = 10
    )]
    pub queue_entries_per_account_per_min: u32,
    /// Wrong passwords in a row for one e-mail from one address after which sign-in for that
    /// pair locks (1 s, doubling).
    #[arg(long, env = "SIGN_IN_LOCKOUT_AFTER", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub sign_in_lockout_after: u32,
    /// The longest a sign-in lockout lasts.
    #[arg(long, env = "SIGN_IN_LOCKOUT_MAX", default_value = "15m",
          value_parser = positive_duration)]
    pub sign_in_lockout_max: Duration,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            requests_per_sec: 50,
            sign_ups_per_hour: 20,
            sign_ins_per_min: 30,
            sign_ins_per_account_per_min: 10,
            queue_entries_per_min: 120,
            queue_entries_per_account_per_min: 10,
            sign_in_lockout_after: 5,
            sign_in_lockout_max: Duration::from_secs(15 * 60),
        }
    }
}

impl Quotas {
    /// No limits (tools and tests that drive crowds from one address).
    pub fn unlimited() -> Self {
        Self {
            requests_per_sec: 0,
            sign_ups_per_hour: 0,
            sign_ins_per_min: 0,
            sign_ins_per_account_per_min: 0,
            queue_entries_per_min: 0,
            queue_entries_per_account_per_min: 0,
            ..Self::default()
        }
    }
}
