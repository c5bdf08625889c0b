//! `wallet_transactions` (the ledger: one row per balance change) and `payments`.

use bigdecimal::BigDecimal;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::RunQueryDsl;

use super::cached::Cached;

use super::Conn;
use super::ids::{LedgerEntryId, PaymentId, UserId};
use super::models::{PaymentRow, WalletTransactionRow};
use super::schema::{payments, wallet_transactions};

pub async fn insert_entry(conn: &mut Conn, row: &WalletTransactionRow) -> Result<(), DieselError> {
    Cached(diesel::insert_into(wallet_transactions::table).values(row))
        .execute(conn)
        .await
        .map(drop)
}

/// The balance right after one entry.
pub async fn balance_after(conn: &mut Conn, id: &LedgerEntryId) -> Result<BigDecimal, DieselError> {
    wallet_transactions::table
        .find(id)
        .select(wallet_transactions::balance_after)
        .first(conn)
        .await
}

/// Up to `limit` of a user's entries, newest first, after the entry created at `after.0` with id
/// `after.1` (from the newest without one).
pub async fn page(
    conn: &mut Conn,
    user: &UserId,
    after: Option<(chrono::NaiveDateTime, &str)>,
    limit: i64,
) -> Result<Vec<WalletTransactionRow>, DieselError> {
    let mut query = wallet_transactions::table
        .filter(wallet_transactions::user_id.eq(user))
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            wallet_transactions::created_at
                .lt(at)
                .or(wallet_transactions::created_at
                    .eq(at)
                    .and(wallet_transactions::id.lt(id.to_owned()))),
        );
    }
    query
        .order((
            wallet_transactions::created_at.desc(),
            wallet_transactions::id.desc(),
        ))
        .limit(limit)
        .select(WalletTransactionRow::as_select())
        .load(conn)
        .await
}

pub async fn insert_payment(conn: &mut Conn, row: &PaymentRow) -> Result<(), DieselError> {
    Cached(diesel::insert_into(payments::table).values(row))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn find_payment(
    conn: &mut Conn,
    id: &PaymentId,
) -> Result<Option<PaymentRow>, DieselError> {
    payments::table
        .find(id)
        .select(PaymentRow::as_select())
        .first(conn)
        .await
        .optional()
}
