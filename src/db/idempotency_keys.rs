//! `idempotency_keys`: per user, what a key was first used for and what came of it.

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::RunQueryDsl;

use super::cached::Cached;

use super::Conn;
use super::ids::UserId;
use super::models::IdempotencyKeyRow;
use super::schema::idempotency_keys;

pub async fn find(
    conn: &mut Conn,
    user: &UserId,
    key: &str,
) -> Result<Option<IdempotencyKeyRow>, DieselError> {
    idempotency_keys::table
        .find((user, key))
        .select(IdempotencyKeyRow::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn insert(conn: &mut Conn, row: &IdempotencyKeyRow) -> Result<(), DieselError> {
    Cached(diesel::insert_into(idempotency_keys::table).values(row))
        .execute(conn)
        .await
        .map(drop)
}
