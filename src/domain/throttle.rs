//! Rate limits: how often one client address, or one account, may do what an abuser would do
//! most. GCRA buckets from `governor`, one keyed limiter per action:
//!
//! | action | key | default |
//! |---|---|---|
//! | any request | client address | 50 per second |
//! | `signUp` | client address | 20 per hour |
//! | `signIn` | client address | 30 per minute |
//! | `signIn` | email | 10 per minute |
//! | `enterQueue` | client address | 120 per minute |
//! | `enterQueue` | account | 10 per minute |
//!
//! Past a limit the answer is `RATE_LIMITED` with `retryAfter` (seconds). The e-mail is keyed in
//! its normalised form (`inputs::Email`), so look-alike spellings share one bucket. On top of
//! these, wrong passwords for one e-mail from one address lock that pair's sign-in for a
//! doubling time (`accounts::sign_in`), kept in the database so every instance agrees.
//!
//! Buckets are per instance: behind a load balancer spreading N instances, a client gets up to N
//! times a budget. That bounds abuse without a shared store on every request; the lockout, which
//! must hold exactly, is in the database. IPv6 addresses are keyed by their /64, the block one
//! subscriber usually gets. Buckets idle past their period are dropped by [`Throttle::tidy`],
//! which the background owner runs every minute.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::error::{Error, Result};
use super::inputs::Email;
use super::rules::Quotas;
use crate::db::ids::UserId;

/// What a caller does that is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Request,
    SignUp,
    SignIn,
    EnterQueue,
}

/// One keyed limiter, or none when its quota is zero.
struct Limit<K: std::hash::Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    what: &'static str,
}

impl<K: std::hash::Hash + Eq + Clone> Limit<K> {
    fn new(count: u32, per: Duration, what: &'static str) -> Self {
        let limiter = NonZeroU32::new(count).and_then(|n| {
            // `count` per `per`, all of it usable at once.
            Quota::with_period(per / n.get())
                .map(|q| DefaultKeyedRateLimiter::keyed(q.allow_burst(n)))
        });
        Self { limiter, what }
    }

    fn check(&self, key: &K) -> Result<()> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            metrics::counter!("rate_limited_total", "limit" => self.what).increment(1);
            Error::RateLimited {
                message: format!("too many {}; slow down", self.what),
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }
        })
    }

    fn tidy(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// Every limiter of one instance.
pub struct Throttle {
    quotas: Quotas,
    requests: Limit<IpAddr>,
    sign_ups: Limit<IpAddr>,
    sign_ins: Limit<IpAddr>,
    sign_ins_per_account: Limit<String>,
    entries: Limit<IpAddr>,
    entries_per_account: Limit<UserId>,
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

impl Throttle {
    pub fn new(quotas: Quotas) -> Self {
        Self {
            requests: Limit::new(
                quotas.requests_per_sec,
                SECOND,
                "requests from this address",
            ),
            sign_ups: Limit::new(quotas.sign_ups_per_hour, HOUR, "sign-ups from this address"),
            sign_ins: Limit::new(
                quotas.sign_ins_per_min,
                MINUTE,
                "sign-ins from this address",
            ),
            sign_ins_per_account: Limit::new(
                quotas.sign_ins_per_account_per_min,
                MINUTE,
                "sign-ins for this account",
            ),
            entries: Limit::new(
                quotas.queue_entries_per_min,
                MINUTE,
                "queue entries from this address",
            ),
            entries_per_account: Limit::new(
                quotas.queue_entries_per_account_per_min,
                MINUTE,
                "queue entries for this account",
            ),
            quotas,
        }
    }

    pub fn quotas(&self) -> &Quotas {
        &self.quotas
    }

    /// Takes one `action` from the budget of `address` (when known); `RATE_LIMITED` past it.
    pub fn check(&self, action: Action, address: Option<IpAddr>) -> Result<()> {
        let Some(address) = address.map(bucket) else {
            return Ok(());
        };
        match action {
            Action::Request => self.requests.check(&address),
            Action::SignUp => self.sign_ups.check(&address),
            Action::SignIn => self.sign_ins.check(&address),
            Action::EnterQueue => self.entries.check(&address),
        }
    }

    /// Takes one sign-in from the budget of `email`, in its normalised form: every spelling of
    /// one address draws from one bucket.
    pub fn check_sign_in_account(&self, email: &Email) -> Result<()> {
        self.sign_ins_per_account.check(&email.as_str().to_owned())
    }

    /// Takes one queue entry from the budget of `user`.
    pub fn check_entry_account(&self, user: &UserId) -> Result<()> {
        self.entries_per_account.check(user)
    }

    /// Drops buckets that are back to full, so memory follows current callers only.
    pub fn tidy(&self) {
        self.requests.tidy();
        self.sign_ups.tidy();
        self.sign_ins.tidy();
        self.sign_ins_per_account.tidy();
        self.entries.tidy();
        self.entries_per_account.tidy();
    }
}

/// The bucket an address counts in: itself for IPv4, its /64 for IPv6 (one subscriber's block).
pub(crate) fn bucket(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_runs_out_and_says_when_to_come_back() {
        let throttle = Throttle::new(Quotas {
            sign_ups_per_hour: 3,
            ..Quotas::default()
        });
        let me: IpAddr = "203.0.113.7".parse().expect("ip");
        let other: IpAddr = "203.0.113.8".parse().expect("ip");
        for _ in 0..3 {
            assert!(throttle.check(Action::SignUp, Some(me)).is_ok());
        }
        match throttle.check(Action::SignUp, Some(me)) {
            Err(Error::RateLimited { retry_after, .. }) => {
                assert!(retry_after > Duration::from_secs(1_000), "{retry_after:?}");
            }
            other => panic!("expected RATE_LIMITED, got {other:?}"),
        }
        assert!(throttle.check(Action::SignUp, Some(other)).is_ok());
        assert!(
            throttle.check(Action::SignUp, None).is_ok(),
            "no address, no bucket"
        );
    }

    #[test]
    fn ipv6_neighbours_share_a_bucket_and_zero_means_off() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        assert_eq!(bucket(a), bucket(b));
        let mapped: IpAddr = "::ffff:198.51.100.1".parse().expect("ip");
        assert_eq!(
            bucket(mapped),
            "198.51.100.1".parse::<IpAddr>().expect("ip")
        );
        let off = Throttle::new(Quotas::unlimited());
        for _ in 0..10_000 {
            assert!(off.check(Action::Request, Some(a)).is_ok());
        }
    }
}
