//! `users`: accounts and the balance column the wallet guards.

use bigdecimal::BigDecimal;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::ids::UserId;
use super::models::UserRow;
use super::schema::users;

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
    let changed = diesel::update(users::table.find(id))
        .filter(users::balance.le(ceiling - amount))
        .set(users::balance.eq(users::balance + amount))
        .execute(conn)
        .await?;
    Ok(changed == 1)
}

/// Takes `amount` if the balance covers it; true when it was taken.
pub async fn debit(conn: &mut Conn, id: &UserId, amount: &BigDecimal) -> Result<bool, DieselError> {
    let changed = diesel::update(users::table.find(id))
        .filter(users::balance.ge(amount))
        .set(users::balance.eq(users::balance - amount))
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
