//! `encore-bench draw`: how long a sale's opening draw takes for a pre-queue of a given size, and
//! how long an entry arriving meanwhile waits for it (the draw holds the room lock). Each size
//! runs on a fresh database: a concert, a due sale, N pre-queued tickets written in bulk SQL, then
//! the ticker's own `draw_due`. The result is checked: places 1..N, the order the seed gives.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use clap::Args;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

use encore::db::ids::{ConcertId, TicketId, UserId};
use encore::db::{self, Conn};
use encore::domain::queue::entry::{Entry, write_batch};
use encore::domain::queue::sale;
use encore::domain::rules::Rules;
use encore::domain::services::Services;

#[derive(Debug, Clone, Args)]
pub struct DrawBench {
    /// Admin URL of a MySQL/MariaDB server (no database); the bench creates and drops its own.
    #[arg(long, env = "ENCORE_BENCH_DATABASE_URL")]
    pub admin_url: String,
    /// Pre-queue sizes to draw, one run each.
    #[arg(long, value_delimiter = ',', default_value = "10000,50000,100000")]
    pub prequeued: Vec<usize>,
}

pub async fn draw(args: DrawBench) -> anyhow::Result<()> {
    println!(
        "{:>10} {:>10} {:>14}",
        "prequeued", "draw ms", "entry wait ms"
    );
    for &n in &args.prequeued {
        super::on_fresh_database(&args.admin_url, "encore_draw", |url| async move {
            let (drawn, entry) = run(&url, n).await?;
            println!(
                "{n:>10} {:>10.0} {:>14.0}",
                drawn.as_secs_f64() * 1000.0,
                entry.as_secs_f64() * 1000.0
            );
            Ok(())
        })
        .await?;
    }
    Ok(())
}

async fn run(url: &str, n: usize) -> anyhow::Result<(Duration, Duration)> {
    db::migrate(url).await?;
    let mut conn = Conn::establish(url).await?;
    let concert = ConcertId::new();
    super::seed_concert(&mut conn, concert.as_str(), "Draw Night", 1, 0, 0).await?;
    let seed = "00".repeat(31) + "2a";
    let late = UserId::new();
    // N pre-queued tickets (users need not exist for the draw), one real user who enters while
    // the draw runs, and a sale that is due.
    conn.batch_execute(&format!(
        "INSERT INTO sales (concert_id, opens_at, seed, seed_commitment, prequeued, scheduled_by, scheduled_at)
           VALUES ('{concert}', UTC_TIMESTAMP(6) - INTERVAL 1 SECOND, '{seed}', '', {n}, '{late}', UTC_TIMESTAMP(6));
         INSERT INTO queue_tickets (id, token, user_id, concert_id, seq, status, last_seen_at, created_at, updated_at)
           SELECT UUID(), SUBSTR(SHA2(seq, 256), 1, 43), UUID(), '{concert}', -seq, 'PREQUEUED',
                  UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) FROM seq_1_to_{n};
         INSERT INTO users (id, username, email, password_hash, balance, created_at)
           VALUES ('{late}', 'late', 'late@bench.test', 'x', 0, UTC_TIMESTAMP(6));"
    ))
    .await
    .context("seeding the pre-queue")?;

    let database = db::Database::connect(url, &db::PoolConfig::with_size(4))?;
    let services = Services::new(database, Rules::default(), &[7u8; 32])?;
    let started = Instant::now();
    let drawing = {
        let services = services.clone();
        tokio::spawn(async move { sale::draw_due(&services).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let entry_started = Instant::now();
    let entered = write_batch(
        &services,
        &concert,
        &[Entry {
            user: late.clone(),
            answer: None,
        }],
    )
    .await?;
    let entry_wait = entry_started.elapsed();
    let drawn = drawing.await??;
    let took = started.elapsed();
    ensure!(drawn == 1, "the sale was not drawn");
    ensure!(entered.iter().all(|e| e.is_ok()), "the late entry failed");

    // Places 1..N in the order the seed gives; the late entry behind (or in the draw, had it
    // come first).
    let ids: Vec<(String, i64)> = {
        use diesel::{ExpressionMethods, QueryDsl};
        use encore::db::schema::queue_tickets as t;
        t::table
            .filter(t::concert_id.eq(&concert))
            .filter(t::user_id.ne(&late))
            .order(t::seq.asc())
            .select((t::id, t::seq))
            .load(&mut conn)
            .await?
    };
    ensure!(ids.len() == n, "{} tickets, {n} expected", ids.len());
    ensure!(
        ids.iter()
            .enumerate()
            .all(|(i, (_, seq))| *seq == i as i64 + 1),
        "places are not 1..N"
    );
    let drawn_order: Vec<TicketId> = ids
        .iter()
        .filter_map(|(id, _)| TicketId::parse(id))
        .collect();
    let seed_bytes: Vec<u8> = (0..32).map(|i| if i == 31 { 0x2a } else { 0 }).collect();
    ensure!(
        sale::shuffle(&seed_bytes, drawn_order.clone()) == drawn_order,
        "the order is not the seed's"
    );
    Ok((took, entry_wait))
}
