//! Accounts as the API shows them: a session, a user and their role.

use async_graphql::{Enum, ID, SimpleObject};

use super::super::scalars::Decimal;
use crate::domain::accounts;

#[derive(SimpleObject)]
pub struct AuthPayload {
    pub token: String,
    pub user: User,
}

impl From<accounts::Session> for AuthPayload {
    fn from(s: accounts::Session) -> Self {
        Self {
            token: s.token,
            user: s.user.into(),
        }
    }
}

#[derive(SimpleObject)]
pub struct User {
    pub id: ID,
    pub username: String,
    pub email: String,
    pub balance: Decimal,
    /// FAN for everyone; OPERATOR for accounts that run sales (`encore operator grant`).
    pub role: Role,
}

/// What a user may do.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "accounts::Role")]
pub enum Role {
    Fan,
    Operator,
}

impl From<accounts::User> for User {
    fn from(u: accounts::User) -> Self {
        Self {
            id: ID(u.id.into()),
            username: u.username,
            email: u.email,
            balance: u.balance.into(),
            role: u.role.into(),
        }
    }
}
