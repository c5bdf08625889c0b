//! What the benches share (and the test that runs the subscribers bench at a small count, which
//! includes this file): a fresh database per run, a concert seeded in bulk, percentiles.

#[path = "../../tests/support/fresh_database.rs"]
mod fresh_database;

use fresh_database::FreshDatabase;

/// Runs `work` with the URL of a fresh, migrated database on the server at `admin_url` (named
/// `{prefix}_{pid}_…`), dropped afterwards whatever `work` returned: the same helper the
/// integration tests use (`tests/support/fresh_database.rs`).
pub async fn on_fresh_database<F, Fut>(admin_url: &str, prefix: &str, work: F) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let database = FreshDatabase::create_on(admin_url, &format!("{prefix}_")).await?;
    work(database.url.clone()).await
}

/// Writes concert `id` with `dates` dates (from tomorrow, database clock) of 50 AVAILABLE seats at
/// 10.00, and its waiting room with the counters given. Bulk SQL: a bench's setup, not a use case.
/// A bench fan holds a seat of date after date for the whole run, so the concert's fair share is
/// set far above any run's count.
pub async fn seed_concert(
    conn: &mut encore::db::Conn,
    id: &str,
    title: &str,
    dates: usize,
    issued: usize,
    admitted: usize,
) -> anyhow::Result<()> {
    use diesel_async::SimpleAsyncConnection;
    conn.batch_execute(&format!(
        "INSERT INTO concerts (id, title, venue, price, created_at, max_tickets_per_fan)
           VALUES ('{id}', '{title}', 'Loopback Arena', 10.00, UTC_TIMESTAMP(6), 30000);
         INSERT INTO price_tiers VALUES ('{id}', 1, 50, 'General', 10.00);
         INSERT INTO concert_dates (concert_id, date) SELECT '{id}', UTC_DATE() + INTERVAL seq DAY FROM seq_1_to_{dates};
         INSERT INTO seats (concert_id, date, number, price, status, updated_at)
           SELECT '{id}', UTC_DATE() + INTERVAL d.seq DAY, s.seq, 10.00, 'AVAILABLE', UTC_TIMESTAMP(6)
           FROM seq_1_to_{dates} d, seq_1_to_50 s;
         INSERT INTO queue_rooms (concert_id, issued, admitted_seq) VALUES ('{id}', {issued}, {admitted});"
    ))
    .await?;
    Ok(())
}

/// Counts the ACTIVE tickets a bench wrote by SQL into their room's running turns, as the
/// migration that introduced the count did: admission keeps it from there (only a step makes a
/// ticket ACTIVE), and an entry's step trusts it until it could keep someone out.
pub async fn count_turns(conn: &mut encore::db::Conn, concert: &str) -> anyhow::Result<()> {
    use diesel_async::SimpleAsyncConnection;
    conn.batch_execute(&format!(
        "UPDATE queue_rooms r SET
           active_count = (SELECT COUNT(*) FROM queue_tickets t
                           WHERE t.concert_id = r.concert_id AND t.status = 'ACTIVE'),
           first_deadline = (SELECT MIN(t.expires_at) FROM queue_tickets t
                             WHERE t.concert_id = r.concert_id AND t.status = 'ACTIVE'),
           last_deadline = (SELECT MAX(t.expires_at) FROM queue_tickets t
                            WHERE t.concert_id = r.concert_id AND t.status = 'ACTIVE')
         WHERE r.concert_id = '{concert}'"
    ))
    .await?;
    Ok(())
}

/// The p-th percentile (0..=1) of sorted `values`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN)
}

/// The server's durability setting as a bench prints it: figures mean little without it.
pub async fn durability(conn: &mut encore::db::Conn) -> anyhow::Result<String> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        v: i64,
    }
    let setting: Setting =
        diesel::sql_query("SELECT CAST(@@GLOBAL.innodb_flush_log_at_trx_commit AS SIGNED) AS v")
            .get_result(conn)
            .await?;
    let words = if setting.v == 1 {
        "durable"
    } else {
        "relaxed, the last second of commits can be lost"
    };
    Ok(format!(
        "innodb_flush_log_at_trx_commit={} ({words})",
        setting.v
    ))
}
