//! `users`: accounts and the balance column the wallet guards.

use bigdecimal::BigDecimal;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::RunQueryDsl;

use super::cached::Cached;

use super::ids::UserId;
use super::models::UserRow;
use super::schema::users;
use super::states::Role;
use super::{Conn, utc_now};

pub async fn insert(conn: &mut Conn, row: &UserRow) -> Result<(), DieselError> {
    diesel::insert_into(users::table)
        .values(row)
        .execute(conn)
        .await
        .map(drop)
}

pub async fn find(conn: &mut Conn, id: &UserId) -> Result<Option<UserRow>, DieselError> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find_by_email(conn: &mut Conn, email: &str) -> Result<Option<UserRow>, DieselError> {
    users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Whether the user exists.
pub async fn exists(conn: &mut Conn, id: &UserId) -> Result<bool, DieselError> {
    diesel::select(diesel::dsl::exists(users::table.find(id)))
        .get_result(conn)
        .await
}

/// The user's role, if the user exists.
pub async fn role(conn: &mut Conn, id: &UserId) -> Result<Option<Role>, DieselError> {
    users::table
        .find(id)
        .select(users::role)
        .first(conn)
        .await
        .optional()
}

/// Gives the account registered with `email` the role `role`.
pub async fn set_role(conn: &mut Conn, email: &str, role: Role) -> Result<(), DieselError> {
    diesel::update(users::table.filter(users::email.eq(email)))
        .set(users::role.eq(role))
        .execute(conn)
        .await
        .map(drop)
}

/// Locks the user's row for the rest of the transaction; false when there is no such user.
pub async fn lock(conn: &mut Conn, id: &UserId) -> Result<bool, DieselError> {
    let found: Option<UserId> = users::table
        .find(id)
        .select(users::id)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

/// [`lock`], returning the database clock read by the same statement (None: no such user). The
/// clock is the statement's start, before any wait for the lock.
pub async fn lock_at_now(
    conn: &mut Conn,
    id: &UserId,
) -> Result<Option<NaiveDateTime>, DieselError> {
    users::table
        .find(id)
        .select(utc_now())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn balance(conn: &mut Conn, id: &UserId) -> Result<BigDecimal, DieselError> {
    users::table
        .find(id)
        .select(users::balance)
        .first(conn)
        .await
}

/// Adds `amount` unless the balance would pass `ceiling`; true when it was added.
pub async fn credit(
    conn: &mut Conn,
    id: &UserId,
    amount: &BigDecimal,
    ceiling: &BigDecimal,
) -> Result<bool, DieselError> {
    let changed = Cached(
        diesel::update(users::table.find(id))
            .filter(users::balance.le(ceiling - amount))
            .set(users::balance.eq(users::balance + amount)),
    )
    .execute(conn)
    .await?;
    Ok(changed == 1)
}

/// Takes `amount` if the balance covers it; true when it was taken.
pub async fn debit(conn: &mut Conn, id: &UserId, amount: &BigDecimal) -> Result<bool, DieselError> {
    let changed = Cached(
        diesel::update(users::table.find(id))
            .filter(users::balance.ge(amount))
            .set(users::balance.eq(users::balance - amount)),
    )
    .execute(conn)
    .await?;
    Ok(changed == 1)
}

/// The balance and the database clock, in one round trip (for the ledger row written next).
pub async fn balance_and_now(
    conn: &mut Conn,
    id: &UserId,
) -> Result<(BigDecimal, chrono::NaiveDateTime), DieselError> {
    users::table
        .find(id)
        .select((users::balance, super::utc_now()))
        .first(conn)
        .await
}

/// Until when sign-in is refused for the user (if it is), and the database clock.
pub async fn sign_in_lock(
    conn: &mut Conn,
    id: &UserId,
) -> Result<(Option<chrono::NaiveDateTime>, chrono::NaiveDateTime), DieselError> {
    users::table
        .find(id)
        .select((users::sign_in_locked_until, super::utc_now()))
        .first(conn)
        .await
}

/// Counts a wrong password. From the `after`-th in a row, sign-in is refused for `base` seconds,
/// doubling with each further failure, at most `max` seconds.
pub async fn record_failed_sign_in(
    conn: &mut Conn,
    id: &UserId,
    after: u32,
    base: u64,
    max: u64,
) -> Result<(), DieselError> {
    use diesel::sql_types::{BigInt, Char, Integer, Unsigned};
    // The lock is computed from the count before it is incremented (assignments run in order).
    diesel::sql_query(
        "UPDATE users SET sign_in_locked_until = CASE WHEN failed_sign_ins + 1 >= ? \
           THEN UTC_TIMESTAMP(6) + INTERVAL LEAST(? * POW(2, LEAST(CAST(failed_sign_ins AS SIGNED) + 1 - ?, 30)), ?) SECOND \
           ELSE sign_in_locked_until END, \
         failed_sign_ins = failed_sign_ins + 1 WHERE id = ?",
    )
    .bind::<Unsigned<Integer>, _>(after)
    .bind::<BigInt, _>(i64::try_from(base).unwrap_or(i64::MAX))
    .bind::<Unsigned<Integer>, _>(after)
    .bind::<BigInt, _>(i64::try_from(max).unwrap_or(i64::MAX))
    .bind::<Char, _>(id)
    .execute(conn)
    .await
    .map(drop)
}

/// A right password ends the run of failures.
pub async fn reset_failed_sign_ins(conn: &mut Conn, id: &UserId) -> Result<(), DieselError> {
    Cached(
        diesel::update(users::table.find(id))
            .filter(users::failed_sign_ins.gt(0))
            .set((
                users::failed_sign_ins.eq(0),
                users::sign_in_locked_until.eq(None::<chrono::NaiveDateTime>),
            )),
    )
    .execute(conn)
    .await
    .map(drop)
}
