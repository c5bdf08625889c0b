//! `sign_in_failures`: wrong passwords in a row per sign-in subject (an e-mail and a client
//! address, hashed together by the domain), and until when that subject's sign-in is refused.
//! Every deadline is the database clock's.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::RunQueryDsl;

use super::schema::sign_in_failures;
use super::{Conn, utc_now};

/// Until when the subject's sign-in is refused (if it ever was), and the database clock, read by
/// one statement. An unknown subject reads as never locked.
pub async fn lock_and_now(
    conn: &mut Conn,
    subject: &str,
) -> Result<(Option<NaiveDateTime>, NaiveDateTime), DieselError> {
    let found: Option<(Option<NaiveDateTime>, NaiveDateTime)> = sign_in_failures::table
        .find(subject)
        .select((sign_in_failures::locked_until, utc_now()))
        .first(conn)
        .await
        .optional()?;
    match found {
        Some(found) => Ok(found),
        None => Ok((None, super::now(conn).await?)),
    }
}

/// Counts a wrong password for the subject. From the `after`-th in a row, sign-in is refused for
/// `base` seconds, doubling with each further failure, at most `max` seconds. One statement, so
/// concurrent failures on every instance count exactly.
pub async fn record(
    conn: &mut Conn,
    subject: &str,
    after: u32,
    base: u64,
    max: u64,
) -> Result<(), DieselError> {
    use diesel::sql_types::{BigInt, Char};
    let base = i64::try_from(base).unwrap_or(i64::MAX);
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let after = i64::from(after);
    // In the update, `locked_until` is assigned first, so it reads the count before the
    // increment (assignments run in order).
    diesel::sql_query(
        "INSERT INTO sign_in_failures (subject, failures, locked_until, updated_at) \
         VALUES (?, 1, CASE WHEN 1 >= ? \
             THEN UTC_TIMESTAMP(6) + INTERVAL LEAST(? * POW(2, LEAST(1 - ?, 30)), ?) SECOND END, \
           UTC_TIMESTAMP(6)) \
         ON DUPLICATE KEY UPDATE \
           locked_until = CASE WHEN failures + 1 >= ? \
             THEN UTC_TIMESTAMP(6) + INTERVAL LEAST(? * POW(2, LEAST(CAST(failures AS SIGNED) + 1 - ?, 30)), ?) SECOND \
             ELSE locked_until END, \
           failures = failures + 1, \
           updated_at = UTC_TIMESTAMP(6)",
    )
    .bind::<Char, _>(subject)
    .bind::<BigInt, _>(after)
    .bind::<BigInt, _>(base)
    .bind::<BigInt, _>(after)
    .bind::<BigInt, _>(max)
    .bind::<BigInt, _>(after)
    .bind::<BigInt, _>(base)
    .bind::<BigInt, _>(after)
    .bind::<BigInt, _>(max)
    .execute(conn)
    .await
    .map(drop)
}

/// A right password ends the subject's run of failures.
pub async fn clear(conn: &mut Conn, subject: &str) -> Result<(), DieselError> {
    diesel::delete(sign_in_failures::table.find(subject))
        .execute(conn)
        .await
        .map(drop)
}

/// Forgets subjects untouched for `idle_secs` whose lock (if any) has lapsed, at most `limit`
/// of them; how many went.
pub async fn forget_idle(
    conn: &mut Conn,
    idle_secs: i64,
    limit: i64,
) -> Result<usize, DieselError> {
    use diesel::sql_types::BigInt;
    diesel::sql_query(
        "DELETE FROM sign_in_failures \
         WHERE updated_at < UTC_TIMESTAMP(6) - INTERVAL ? SECOND \
           AND (locked_until IS NULL OR locked_until < UTC_TIMESTAMP(6)) \
         LIMIT ?",
    )
    .bind::<BigInt, _>(idle_secs)
    .bind::<BigInt, _>(limit)
    .execute(conn)
    .await
}
