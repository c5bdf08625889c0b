//! Background work and its owner. An instance runs these loops beside its HTTP server, calling
//! the same domain functions the API calls:
//!
//! - **the queue ticker**, every `QUEUE_TICK`: an admission round for every room with people
//!   waiting ([`queue::admission_round`]), then the read that feeds this instance's
//!   subscriptions ([`live::publish_changes`]). In that order, admissions this instance makes
//!   reach its subscribers in the same tick rather than one tick later;
//! - **the hold sweeper**, every `HOLD_SWEEP_INTERVAL`: writes lapsed holds back to AVAILABLE /
//!   EXPIRED (reads are right without it; it keeps the tables tidy), forgets spent queue
//!   challenges that have expired, and runs of failed sign-ins untouched for a day;
//! - **the rate-limit tidier**, every minute: drops rate-limit buckets that are full again, so
//!   their memory follows current callers (always on: it touches no database).
//!
//! [`Tasks`] starts them, each a named task, and on shutdown cancels and awaits every one. A step
//! cancelled half-way is safe: its connection is closed and its transaction rolls back whole
//! (`db::pool`).

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::domain::{accounts, live, queue};

use crate::domain::services::Services;

use crate::domain::orders::{offers, release};

/// Which loops an instance runs (tests switch them off to drive the steps by hand).
#[derive(Debug, Clone, Copy)]
pub struct Background {
    pub admission_ticker: bool,
    pub hold_sweeper: bool,
    /// Reads watched rooms and dates once per tick for this instance's subscribers.
    pub live_ticker: bool,
}

impl Background {
    pub const ALL: Self = Self {
        admission_ticker: true,
        hold_sweeper: true,
        live_ticker: true,
    };
    pub const NONE: Self = Self {
        admission_ticker: false,
        hold_sweeper: false,
        live_ticker: false,
    };
}

/// The running loops of one instance.
pub struct Tasks {
    shutdown: CancellationToken,
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Tasks {
    /// Starts the loops `which` asks for; they stop when `shutdown` is cancelled.
    pub fn start(services: &Services, which: Background, shutdown: CancellationToken) -> Self {
        let mut running = Vec::new();
        if which.live_ticker {
            services.live.start_serving_polls();
        }
        if which.admission_ticker || which.live_ticker {
            let task = queue_ticker(
                services.clone(),
                which.admission_ticker,
                which.live_ticker,
                shutdown.clone(),
            );
            running.push(("queue ticker", tokio::spawn(task)));
        }
        if which.hold_sweeper {
            let task = hold_sweeper(services.clone(), shutdown.clone());
            running.push(("hold sweeper", tokio::spawn(task)));
        }
        let task = throttle_tidier(services.clone(), shutdown.clone());
        running.push(("rate-limit tidier", tokio::spawn(task)));
        Self { shutdown, running }
    }

    /// Cancels every loop and waits for each, at most `limit` apiece.
    pub async fn stop(&mut self, limit: Duration) {
        self.shutdown.cancel();
        for (name, task) in std::mem::take(&mut self.running) {
            if tokio::time::timeout(limit, task).await.is_err() {
                tracing::warn!(task = name, "background task did not stop in time");
            }
        }
    }
}

async fn queue_ticker(
    services: Services,
    admission: bool,
    live: bool,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(services.rules.queue_tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while shutdown
        .run_until_cancelled(interval.tick())
        .await
        .is_some()
    {
        let round = async {
            // Each part timed: a slow admission round delays the live read behind it.
            let began = std::time::Instant::now();
            if admission && let Err(err) = queue::admission_round(&services).await {
                tracing::warn!(error = ?err, "admission round failed");
            }
            let admitted = std::time::Instant::now();
            metrics::histogram!("ticker_admission_seconds")
                .record((admitted - began).as_secs_f64());
            if live && let Err(err) = live::publish_changes(&services).await {
                tracing::warn!(error = ?err, "live read failed");
            }
            metrics::histogram!("ticker_live_seconds").record(admitted.elapsed().as_secs_f64());
        };
        if shutdown.run_until_cancelled(round).await.is_none() {
            break;
        }
    }
}

async fn hold_sweeper(services: Services, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(services.rules.hold_sweep_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while shutdown
        .run_until_cancelled(interval.tick())
        .await
        .is_some()
    {
        let sweep = async {
            release::sweep_expired_holds(&services, 1000).await?;
            offers::offer_rounds(&services).await?;
            queue::forget_spent_challenges(&services).await?;
            accounts::forget_idle_sign_in_failures(&services).await
        };
        match shutdown.run_until_cancelled(sweep).await {
            None => break,
            Some(Err(err)) => tracing::warn!(error = ?err, "hold sweep failed"),
            Some(Ok(_)) => {}
        }
    }
}

async fn throttle_tidier(services: Services, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(Duration::from_secs(60));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while shutdown
        .run_until_cancelled(interval.tick())
        .await
        .is_some()
    {
        services.throttle.tidy();
    }
}
