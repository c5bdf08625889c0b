//! Benchmarks: commands that print figures (never timed tests).
//!
//! - [`subscribers`]: the cost of live updates with a crowd watching;
//! - [`draw`]: a sale's opening draw against the size of its pre-queue;
//! - [`rush`]: the on-sale rush, one operation at a time, with the invariants checked in SQL
//!   after every run.
//!
//! Each starts this binary's own server as a child process on a fresh database of a private
//! MariaDB and drops the database at the end; everything stays on loopback.

mod draw;
mod flow;
mod rush;
mod subscribers;

pub use draw::{DrawBench, draw};
pub use rush::{RushBench, rush};
pub use subscribers::{SubscribersBench, subscribers};

/// Runs `work` with the URL of a fresh database on the server at `admin_url`, and drops the
/// database afterwards, whatever `work` returned.
async fn on_fresh_database<F, Fut>(admin_url: &str, prefix: &str, work: F) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    use anyhow::Context as _;
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let admin = admin_url.trim_end_matches('/').to_owned();
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let mut conn = crate::db::Conn::establish(&admin)
        .await
        .context("connecting to the bench database server")?;
    conn.batch_execute(&format!("CREATE DATABASE `{name}`"))
        .await?;
    let result = work(format!("{admin}/{name}")).await;
    conn.batch_execute(&format!("DROP DATABASE IF EXISTS `{name}`"))
        .await?;
    result
}

/// Writes concert `id` with `dates` dates (from tomorrow, database clock) of 50 AVAILABLE seats at
/// 10.00, and its waiting room with the counters given. Bulk SQL: a bench's setup, not a use case.
async fn seed_concert(
    conn: &mut crate::db::Conn,
    id: &str,
    title: &str,
    dates: usize,
    issued: usize,
    admitted: usize,
) -> anyhow::Result<()> {
    use diesel_async::SimpleAsyncConnection;
    conn.batch_execute(&format!(
        "INSERT INTO concerts (id, title, venue, price, created_at)
           VALUES ('{id}', '{title}', 'Loopback Arena', 10.00, UTC_TIMESTAMP(6));
         INSERT INTO price_tiers VALUES ('{id}', 1, 50, 'General', 10.00);
         INSERT INTO concert_dates SELECT '{id}', UTC_DATE() + INTERVAL seq DAY FROM seq_1_to_{dates};
         INSERT INTO seats (concert_id, date, number, price, status, updated_at)
           SELECT '{id}', UTC_DATE() + INTERVAL d.seq DAY, s.seq, 10.00, 'AVAILABLE', UTC_TIMESTAMP(6)
           FROM seq_1_to_{dates} d, seq_1_to_50 s;
         INSERT INTO queue_rooms (concert_id, issued, admitted_seq) VALUES ('{id}', {issued}, {admitted});"
    ))
    .await?;
    Ok(())
}

/// The p-th percentile (0..=1) of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN)
}
