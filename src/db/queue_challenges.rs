//! `queue_challenges_used`: the proof-of-work challenges already spent, until they would have
//! expired anyway.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::RunQueryDsl;

use super::schema::queue_challenges_used;
use super::{Conn, utc_now};

/// Those of `ids` spent already.
pub async fn spent_among(conn: &mut Conn, ids: &[String]) -> Result<Vec<String>, DieselError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    queue_challenges_used::table
        .filter(queue_challenges_used::id.eq_any(ids))
        .select(queue_challenges_used::id)
        .load(conn)
        .await
}

/// Marks every one of `spent` (id, expiry) used, in one statement. The caller has checked that
/// none was, under its room's lock (a challenge names its room), so no one spends them meanwhile.
pub async fn spend_all(
    conn: &mut Conn,
    spent: &[(String, NaiveDateTime)],
) -> Result<(), DieselError> {
    if spent.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = spent
        .iter()
        .map(|(id, expires_at)| {
            (
                queue_challenges_used::id.eq(id),
                queue_challenges_used::expires_at.eq(expires_at),
            )
        })
        .collect();
    diesel::insert_into(queue_challenges_used::table)
        .values(rows)
        .execute(conn)
        .await
        .map(drop)
}

/// Forgets up to `batch` spent challenges that have expired (they are refused as expired now).
pub async fn sweep_expired(conn: &mut Conn, batch: i64) -> Result<usize, DieselError> {
    let ids: Vec<String> = queue_challenges_used::table
        .filter(queue_challenges_used::expires_at.lt(utc_now()))
        .select(queue_challenges_used::id)
        .limit(batch)
        .load(conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(queue_challenges_used::table.filter(queue_challenges_used::id.eq_any(&ids)))
        .execute(conn)
        .await
}
