//! The prepaid wallet: a ledger. Every balance change inserts a transaction row carrying the
//! signed amount and the balance after it, in the same database transaction that changes
//! `users.balance` with a guarded update, so balance = sum of the ledger at every commit.

use bigdecimal::BigDecimal;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::accounts::lock_user;
use super::error::{Error, Result};
use super::idempotency;
use super::inputs::parse_idempotency_key;
use super::money::{MAX_BALANCE, Money};
use super::{Services, new_id, utc};
use crate::db::models::WalletTransactionRow;
use crate::db::schema::{users, wallet_transactions};
use crate::db::{self, Conn};

/// What a ledger row records: a top-up or a payment.
pub use crate::db::states::LedgerKind as TransactionKind;

#[derive(Debug, Clone)]
pub struct WalletTransaction {
    pub id: String,
    pub kind: TransactionKind,
    pub amount: Money,
    pub balance_after: Money,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A wallet as of some moment: the live balance, or the balance right after a replayed charge.
#[derive(Debug, Clone)]
pub struct Wallet {
    pub user_id: String,
    pub balance: Money,
}

const MAX_PAGE: i32 = 100;

/// Adds `amount` to the caller's balance.
pub async fn charge(
    services: &Services,
    user_id: &str,
    amount: &str,
    key: Option<String>,
) -> Result<Wallet> {
    let amount = Money::parse_positive(amount, &services.rules.max_charge)?;
    let key = parse_idempotency_key(key)?;
    let fingerprint = amount.to_string();
    let balance = transaction!(services.db, async |conn: &mut Conn| {
        lock_user(conn, user_id).await?;
        if let Some(key) = &key
            && let Some(tx_id) =
                idempotency::replay(conn, user_id, key, "charge", &fingerprint).await?
        {
            let after: BigDecimal = wallet_transactions::table
                .find(&tx_id)
                .select(wallet_transactions::balance_after)
                .first(conn)
                .await?;
            return Ok(Money::from_stored(after));
        }
        let tx = apply(conn, user_id, TransactionKind::Charge, &amount, None).await?;
        if let Some(key) = &key {
            idempotency::record(conn, user_id, key, "charge", &fingerprint, &tx.id).await?;
        }
        Ok(tx.balance_after)
    })
    .await?;
    metrics::counter!("wallet_charges_total").increment(1);
    Ok(Wallet {
        user_id: user_id.to_owned(),
        balance,
    })
}

pub async fn wallet(services: &Services, user_id: &str) -> Result<Wallet> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let balance: BigDecimal = users::table
            .find(user_id)
            .select(users::balance)
            .first(conn)
            .await?;
        Ok(Wallet {
            user_id: user_id.to_owned(),
            balance: Money::from_stored(balance),
        })
    })
    .await
}

/// The newest `first` ledger entries (1..=100).
pub async fn transactions(
    services: &Services,
    user_id: &str,
    first: i32,
) -> Result<Vec<WalletTransaction>> {
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(Error::bad_input(format!(
            "first must be between 1 and {MAX_PAGE}"
        )));
    }
    with_conn!(services.db, async |conn: &mut Conn| {
        let rows: Vec<WalletTransactionRow> = wallet_transactions::table
            .filter(wallet_transactions::user_id.eq(user_id))
            .order((
                wallet_transactions::created_at.desc(),
                wallet_transactions::id.desc(),
            ))
            .limit(first.into())
            .select(WalletTransactionRow::as_select())
            .load(conn)
            .await?;
        Ok(rows.into_iter().map(to_transaction).collect())
    })
    .await
}

/// Inside a transaction holding the user's row lock: changes the balance by `amount` (added for a
/// charge, taken for a payment) and writes the ledger row. A payment the balance cannot cover,
/// or a charge past the column's range, changes nothing.
pub(crate) async fn apply(
    conn: &mut Conn,
    user_id: &str,
    kind: TransactionKind,
    amount: &Money,
    reservation_id: Option<&str>,
) -> Result<WalletTransaction> {
    let value = amount.as_decimal().clone();
    let changed = match kind {
        TransactionKind::Charge => {
            let headroom: BigDecimal = MAX_BALANCE
                .parse()
                .map_err(|e| Error::Internal(anyhow::Error::new(e)))?;
            diesel::update(users::table.find(user_id))
                .filter(users::balance.le(headroom - &value))
                .set(users::balance.eq(users::balance + &value))
                .execute(conn)
                .await?
        }
        TransactionKind::Payment => {
            diesel::update(users::table.find(user_id))
                .filter(users::balance.ge(&value))
                .set(users::balance.eq(users::balance - &value))
                .execute(conn)
                .await?
        }
    };
    if changed != 1 {
        let available: BigDecimal = users::table
            .find(user_id)
            .select(users::balance)
            .first(conn)
            .await?;
        return Err(match kind {
            TransactionKind::Charge => {
                Error::bad_input(format!("a balance may not exceed {MAX_BALANCE}"))
            }
            TransactionKind::Payment => Error::InsufficientBalance {
                needed: amount.to_string(),
                available: Money::from_stored(available).to_string(),
            },
        });
    }
    let (balance_after, now): (BigDecimal, NaiveDateTime) = users::table
        .find(user_id)
        .select((users::balance, db::utc_now()))
        .first(conn)
        .await?;
    let signed = match kind {
        TransactionKind::Charge => amount.clone(),
        TransactionKind::Payment => amount.negated(),
    };
    let row = WalletTransactionRow {
        id: new_id(),
        user_id: user_id.to_owned(),
        kind,
        amount: signed.as_decimal().clone(),
        balance_after,
        reservation_id: reservation_id.map(str::to_owned),
        created_at: now,
    };
    diesel::insert_into(wallet_transactions::table)
        .values(&row)
        .execute(conn)
        .await?;
    Ok(to_transaction(row))
}

fn to_transaction(row: WalletTransactionRow) -> WalletTransaction {
    WalletTransaction {
        id: row.id,
        kind: row.kind,
        amount: Money::from_stored(row.amount),
        balance_after: Money::from_stored(row.balance_after),
        created_at: utc(row.created_at),
    }
}
