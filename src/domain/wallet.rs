//! The prepaid wallet: a ledger. Every balance change inserts a transaction row carrying the
//! signed amount and the balance after it, in the same database transaction that changes
//! `users.balance` with a guarded update, so balance = sum of the ledger at every commit.

use bigdecimal::BigDecimal;
use diesel::OptionalExtension;

use super::accounts::lock_user;
use super::error::{Error, Result};
use super::idempotency;
use super::inputs::IdempotencyKey;
use super::money::{MAX_BALANCE, Money};
use super::paging::{Page, PageCursor, PageRequest};
use super::services::Services;
use super::time::utc;
use crate::db::ids::{LedgerEntryId, OrderId, ReservationId, UserId};
use crate::db::models::WalletTransactionRow;
use crate::db::{Conn, ledger, users};

/// What a ledger row records: a top-up or a payment.
pub use crate::db::states::LedgerKind as TransactionKind;

/// What a ledger row is for: nothing (a top-up), the order a payment pays, the seat a refund
/// credits back.
#[derive(Debug, Clone, Copy)]
pub enum LedgerFor<'a> {
    Nothing,
    Order(&'a OrderId),
    Seat(&'a ReservationId),
}

#[derive(Debug, Clone)]
pub struct WalletTransaction {
    pub id: LedgerEntryId,
    pub kind: TransactionKind,
    pub amount: Money,
    pub balance_after: Money,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A wallet as of some moment: the live balance, or the balance right after a replayed charge.
#[derive(Debug, Clone)]
pub struct Wallet {
    pub user_id: UserId,
    pub balance: Money,
}

/// Adds `amount` to the caller's balance, once per `key`: a repeat of the key returns the
/// balance right after the first (and a key reused for another amount is refused).
pub async fn charge(
    services: &Services,
    user_id: &UserId,
    amount: Money,
    key: IdempotencyKey,
) -> Result<Wallet> {
    let amount = amount.positive_within(&services.rules.max_charge)?;
    let fingerprint = amount.to_string();
    let home = services.db.wallet_home(user_id);
    let balance = transaction!(home, async |conn: &mut Conn| {
        lock_user(conn, user_id).await?;
        if let Some(tx_id) =
            idempotency::replay(conn, user_id, &key, "charge", &fingerprint).await?
        {
            let tx_id = LedgerEntryId::parse(&tx_id)
                .ok_or_else(|| Error::corrupt(format!("idempotency result {tx_id:?}")))?;
            let after = ledger::balance_after(conn, &tx_id).await?;
            return Ok(Money::from_stored(after));
        }
        let tx = apply(
            conn,
            user_id,
            TransactionKind::Charge,
            &amount,
            LedgerFor::Nothing,
        )
        .await?;
        idempotency::record(conn, user_id, &key, "charge", &fingerprint, tx.id.as_str()).await?;
        Ok(tx.balance_after)
    })
    .await?;
    metrics::counter!("wallet_charges_total").increment(1);
    Ok(Wallet {
        user_id: user_id.clone(),
        balance,
    })
}

pub async fn wallet(services: &Services, user_id: &UserId) -> Result<Wallet> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let balance = users::balance(conn, user_id)
            .await
            .optional()?
            // A valid token whose account was deleted since.
            .ok_or_else(|| Error::Unauthenticated("unknown user".into()))?;
        Ok(Wallet {
            user_id: user_id.clone(),
            balance: Money::from_stored(balance),
        })
    })
    .await
}

/// A page of the ledger, newest first (see `paging`).
pub async fn transactions_page(
    services: &Services,
    user_id: &UserId,
    page: &PageRequest,
) -> Result<Page<WalletTransaction>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let after = page.after.as_ref().map(|c| (c.at, c.id.as_str()));
        let rows = ledger::page(conn, user_id, after, page.first + 1).await?;
        let rows = rows
            .into_iter()
            .map(|row| {
                let cursor = PageCursor {
                    at: row.created_at,
                    id: row.id.to_string(),
                };
                (cursor, to_transaction(row))
            })
            .collect();
        Ok(Page::from_rows(rows, page.first))
    })
    .await
}

/// The newest `first` ledger entries (1..=100): the first page.
pub async fn transactions(
    services: &Services,
    user_id: &UserId,
    first: i32,
) -> Result<Vec<WalletTransaction>> {
    let page = transactions_page(services, user_id, &PageRequest::parse(first, None)?).await?;
    Ok(page.items.into_iter().map(|(_, entry)| entry).collect())
}

/// Inside a transaction holding the user's row lock: changes the balance by `amount` (added for a
/// charge or a refund, taken for a payment) and writes the ledger row. A payment the balance
/// cannot cover, or a charge past the column's range, changes nothing.
pub(crate) async fn apply(
    conn: &mut Conn,
    user_id: &UserId,
    kind: TransactionKind,
    amount: &Money,
    subject: LedgerFor<'_>,
) -> Result<WalletTransaction> {
    let value = amount.as_decimal();
    let changed = match kind {
        TransactionKind::Charge | TransactionKind::Refund => {
            let ceiling: BigDecimal = MAX_BALANCE
                .parse()
                .map_err(|e| Error::Internal(anyhow::Error::new(e)))?;
            users::credit(conn, user_id, value, &ceiling).await?
        }
        TransactionKind::Payment => users::debit(conn, user_id, value).await?,
    };
    if !changed {
        let available = users::balance(conn, user_id).await?;
        return Err(match kind {
            TransactionKind::Charge | TransactionKind::Refund => {
                Error::bad_input(format!("a balance may not exceed {MAX_BALANCE}"))
            }
            TransactionKind::Payment => Error::InsufficientBalance {
                needed: amount.to_string(),
                available: Money::from_stored(available).to_string(),
            },
        });
    }
    let (balance_after, now) = users::balance_and_now(conn, user_id).await?;
    let signed = match kind {
        TransactionKind::Charge | TransactionKind::Refund => amount.clone(),
        TransactionKind::Payment => amount.negated(),
    };
    let row = WalletTransactionRow {
        id: LedgerEntryId::new(),
        user_id: user_id.clone(),
        kind,
        amount: signed.as_decimal().clone(),
        balance_after,
        reservation_id: match subject {
            LedgerFor::Seat(id) => Some(id.clone()),
            _ => None,
        },
        order_id: match subject {
            LedgerFor::Order(id) => Some(id.clone()),
            _ => None,
        },
        created_at: now,
    };
    ledger::insert_entry(conn, &row).await?;
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
