//! Idempotency keys for money operations. A key is scoped to the user; its first use stores what
//! was asked (operation + fingerprint of the arguments) and what came of it. A repeat with the same
//! request returns that first result; with a different request it is refused. Callers hold the
//! user's row lock, so two requests with one key cannot both pass the check.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::error::{Error, Result};
use crate::db::models::IdempotencyKeyRow;
use crate::db::schema::idempotency_keys;
use crate::db::{self, Conn};

/// The id of the first result for `key`, if the same request was made with it before.
pub(crate) async fn replay(
    conn: &mut Conn,
    user_id: &str,
    key: &str,
    operation: &str,
    fingerprint: &str,
) -> Result<Option<String>> {
    let row: Option<IdempotencyKeyRow> = idempotency_keys::table
        .find((user_id, key))
        .select(IdempotencyKeyRow::as_select())
        .first(conn)
        .await
        .optional()?;
    match row {
        None => Ok(None),
        Some(row) if row.operation == operation && row.fingerprint == fingerprint => {
            Ok(Some(row.result_id))
        }
        Some(_) => Err(Error::bad_input(
            "this idempotencyKey was already used for a different request",
        )),
    }
}

pub(crate) async fn record(
    conn: &mut Conn,
    user_id: &str,
    key: &str,
    operation: &str,
    fingerprint: &str,
    result_id: &str,
) -> Result<()> {
    let created_at = db::now(conn).await?;
    diesel::insert_into(idempotency_keys::table)
        .values(&IdempotencyKeyRow {
            user_id: user_id.to_owned(),
            idem_key: key.to_owned(),
            operation: operation.to_owned(),
            fingerprint: fingerprint.to_owned(),
            result_id: result_id.to_owned(),
            created_at,
        })
        .execute(conn)
        .await?;
    Ok(())
}
