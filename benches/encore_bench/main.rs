//! `encore-bench`: the benchmarks, commands that print figures (never timed tests). A target of
//! its own, so the server ships without them and without their HTTP and websocket clients
//! (`reqwest`, `tokio-tungstenite` are dev-dependencies). Run through `cargo bench --bench
//! encore-bench -- <command>`, which `scripts/rush` and `scripts/bench` do:
//!
//! - [`subscribers`]: the cost of live updates with a crowd watching;
//! - [`draw`]: a sale's opening draw against the size of its pre-queue;
//! - [`rush`]: the on-sale rush, one operation at a time, with the invariants checked in SQL
//!   after every run.
//!
//! Each starts the `encore` binary's server as a child process on a fresh database of a private
//! MariaDB and drops the database at the end; everything stays on loopback.

#![allow(clippy::unwrap_used)]

mod draw;
mod flow;
mod rush;
mod subscribers;
mod support;

use support::{on_fresh_database, percentile, seed_concert};

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "encore-bench",
    about = "Encore's benchmarks: figures, on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// N websocket subscribers on one instance: RSS, push delay, statements per tick.
    Subscribers(subscribers::SubscribersBench),
    /// The on-sale rush, one operation at a time: requests/s, p50/p95/p99, errors by code, and
    /// the invariants checked in SQL after every run.
    Rush(rush::RushBench),
    /// A sale's opening draw: how long it takes for a pre-queue of N, and how long an entry
    /// arriving meanwhile waits.
    Draw(draw::DrawBench),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    encore::telemetry::init_tracing();
    // `cargo bench` passes `--bench` to every bench target; it means nothing here.
    let args = std::env::args().filter(|a| a != "--bench");
    match Cli::parse_from(args).command {
        Bench::Subscribers(args) => subscribers::subscribers(args).await,
        Bench::Rush(args) => rush::rush(args).await,
        Bench::Draw(args) => draw::draw(args).await,
    }
}
