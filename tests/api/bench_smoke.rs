//! The subscribers bench, run at a small count as a test: the bench's own code (included from
//! `benches/encore_bench/`) against the real `encore` binary, so a bench that stops measuring
//! (no push arriving, as when its concert had no seats) fails the suite instead of printing NaN.

#[allow(dead_code)]
#[path = "../../benches/encore_bench/subscribers.rs"]
mod subscribers;
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../../benches/encore_bench/support.rs"]
mod support;

use support::{on_fresh_database, percentile, seed_concert};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_subscribers_bench_measures_every_push_at_a_small_count() {
    let admin_url = std::env::var(crate::common::ADMIN_URL_VAR)
        .expect("scripts/test sets the admin URL of the private MariaDB");
    subscribers::subscribers(subscribers::SubscribersBench {
        admin_url,
        count: 40,
        admit_per_sec: 400,
        ramp: 40,
    })
    .await
    .expect("the bench measured every fan's push");
}
