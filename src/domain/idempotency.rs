//! Idempotency keys for money operations. A key is scoped to the user; its first use stores what
//! was asked (operation + fingerprint of the arguments) and what came of it. A repeat with the same
//! request returns that first result; with a different request it is refused. Callers hold the
//! user's row lock, so two requests with one key cannot both pass the check.

use super::error::{Error, Result};
use super::inputs::IdempotencyKey;
use crate::db::ids::UserId;
use crate::db::models::IdempotencyKeyRow;
use crate::db::{self, Conn, idempotency_keys};

/// The id of the first result for `key`, if the same request was made with it before.
pub(crate) async fn replay(
    conn: &mut Conn,
    user_id: &UserId,
    key: &IdempotencyKey,
    operation: &str,
    fingerprint: &str,
) -> Result<Option<String>> {
    match idempotency_keys::find(conn, user_id, key.as_str()).await? {
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
    user_id: &UserId,
    key: &IdempotencyKey,
    operation: &str,
    fingerprint: &str,
    result_id: &str,
) -> Result<()> {
    let created_at = db::now(conn).await?;
    idempotency_keys::insert(
        conn,
        &IdempotencyKeyRow {
            user_id: user_id.clone(),
            idem_key: key.as_str().to_owned(),
            operation: operation.to_owned(),
            fingerprint: fingerprint.to_owned(),
            result_id: result_id.to_owned(),
            created_at,
        },
    )
    .await?;
    Ok(())
}
