//! The wallet as the API shows it: a balance and its ledger.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::super::context::services;
use super::super::error::ApiResult;
use super::super::paging::connection;
use super::super::scalars::Decimal;
use crate::domain::paging::PageRequest;
use crate::domain::wallet;
use async_graphql::connection::Connection;

pub struct Wallet(pub wallet::Wallet);

#[Object]
impl Wallet {
    async fn balance(&self) -> Decimal {
        (&self.0.balance).into()
    }

    /// The ledger, newest first, a page at a time: `first` (1 to 100) entries `after` a cursor
    /// from a previous page's `pageInfo.endCursor`.
    async fn transactions_connection(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> ApiResult<Connection<String, WalletTransaction>> {
        let request = PageRequest::parse(first, after.as_deref())?;
        let page = wallet::transactions_page(services(ctx)?, &self.0.user_id, &request).await?;
        Ok(connection(page, after.is_some(), WalletTransaction::from))
    }

    /// Newest first; `first` from 1 to 100 (`transactionsConnection` pages further).
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> ApiResult<Vec<WalletTransaction>> {
        let list = wallet::transactions(services(ctx)?, &self.0.user_id, first).await?;
        Ok(list.into_iter().map(Into::into).collect())
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "wallet::TransactionKind")]
pub enum WalletTransactionKind {
    Charge,
    Payment,
    Refund,
}

#[derive(SimpleObject)]
pub struct WalletTransaction {
    pub id: ID,
    pub kind: WalletTransactionKind,
    /// Signed: positive for a charge or a refund, negative for a payment.
    pub amount: Decimal,
    pub balance_after: Decimal,
    pub created_at: DateTime<Utc>,
}

impl From<wallet::WalletTransaction> for WalletTransaction {
    fn from(t: wallet::WalletTransaction) -> Self {
        Self {
            id: ID(t.id.into()),
            kind: t.kind.into(),
            amount: t.amount.into(),
            balance_after: t.balance_after.into(),
            created_at: t.created_at,
        }
    }
}
