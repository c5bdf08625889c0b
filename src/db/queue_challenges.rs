//! `queue_challenges_used`: the proof-of-work challenges already spent, until they would have
//! expired anyway.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::RunQueryDsl;

use super::schema::queue_challenges_used;
use super::{Conn, utc_now};

/// Marks challenge `id` used; false when it was used before.
pub async fn spend(
    conn: &mut Conn,
    id: &str,
    expires_at: NaiveDateTime,
) -> Result<bool, DieselError> {
    let inserted = diesel::insert_into(queue_challenges_used::table)
        .values((
            queue_challenges_used::id.eq(id),
            queue_challenges_used::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(e) => Err(e),
    }
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
