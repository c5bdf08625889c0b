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

/// A page of (id, stored e-mail), by id, after `after`, of the rows whose e-mail may not be in
/// its normalised form: with a non-ASCII character, an upper-case letter or a control character
/// (a printable lower-case ASCII address is its own normal form).
pub async fn emails_after(
    conn: &mut Conn,
    after: Option<&UserId>,
    limit: i64,
) -> Result<Vec<(UserId, String)>, DieselError> {
    let mut query = users::table
        .select((users::id, users::email))
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "(LENGTH(email) <> CHAR_LENGTH(email) OR email <> LOWER(email) \
              OR email REGEXP '[[:cntrl:]]')",
        ))
        .order(users::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(users::id.gt(after));
    }
    query.load(conn).await
}

/// Changes the stored e-mail of a user (a unique violation when another account has it).
pub async fn set_email(conn: &mut Conn, id: &UserId, email: &str) -> Result<(), DieselError> {
    diesel::update(users::table.find(id))
        .set(users::email.eq(email))
        .execute(conn)
        .await
        .map(drop)
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
