//! Benchmarks: commands that print figures (never timed tests).
//!
//! - [`subscribers`]: the cost of live updates with a crowd watching;
//! - [`rush`]: the on-sale rush, one operation at a time, with the invariants checked in SQL
//!   after every run.
//!
//! Each starts this binary's own server as a child process on a fresh database of a private
//! MariaDB and drops the database at the end; everything stays on loopback.

mod rush;
mod subscribers;

pub use rush::{RushBench, rush};
pub use subscribers::{SubscribersBench, subscribers};

/// The p-th percentile (0..=1) of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN)
}
