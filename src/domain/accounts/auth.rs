//! The `Viewer` a transport resolves once from the credentials it read (tokens are `tokens`,
//! password hashing is `passwords`).

use super::tokens::TokenSigner;
use crate::db::ids::{QueueToken, UserId};
use crate::domain::error::{Error, Result};
use crate::domain::services::Services;

/// Who is calling, resolved once per request or websocket connection by the transport: the
/// verified user (or why the credential presented was refused) and the queue token, if any,
/// checked for shape. Resolvers ask it; nothing verifies a token twice.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// None: no credential sent. Some(Err): one was sent and refused, with the reason.
    user: Option<std::result::Result<UserId, String>>,
    /// None: no queue token sent. Some(None): one was sent that cannot name a ticket.
    queue_token: Option<Option<QueueToken>>,
    /// The client's address as the transport resolved it (through a trusted proxy when
    /// configured); what per-address rate limits count by.
    address: Option<std::net::IpAddr>,
}

/// Whether the signed-in user's account still exists (a token outlives an account deleted
/// after it was signed), asked at most once per operation: the GraphQL layer gives every
/// operation a fresh one, over HTTP and websockets alike, so a long-lived socket learns of a
/// deletion at its next operation.
#[derive(Debug, Default)]
pub struct AccountCheck(tokio::sync::OnceCell<bool>);

impl AccountCheck {
    /// `UNAUTHENTICATED` when `user_id`'s account is gone.
    async fn require(&self, services: &Services, user_id: &UserId) -> Result<()> {
        let exists = self
            .0
            .get_or_try_init(|| crate::domain::accounts::exists(services, user_id))
            .await?;
        if *exists {
            Ok(())
        } else {
            Err(Error::Unauthenticated(
                "this account no longer exists; sign in again".into(),
            ))
        }
    }
}

impl Viewer {
    /// From an HTTP `Authorization` header value, which must be `Bearer <token>`.
    pub fn from_authorization_header(
        tokens: &TokenSigner,
        header: Option<&str>,
        queue_token: Option<&str>,
    ) -> Self {
        let user = header.map(|header| {
            let token = strip_bearer(header)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| "Authorization must be \"Bearer <token>\"".to_owned())?;
            tokens.verify(token).map_err(|e| e.to_string())
        });
        Self::new(user, queue_token)
    }

    /// From a websocket `connection_init` field: the token, with or without `Bearer `.
    pub fn from_token(
        tokens: &TokenSigner,
        token: Option<&str>,
        queue_token: Option<&str>,
    ) -> Self {
        let user = token.map(|token| {
            let token = strip_bearer(token).unwrap_or(token.trim());
            tokens.verify(token).map_err(|e| e.to_string())
        });
        Self::new(user, queue_token)
    }

    /// A caller with only a queue token (tests, tools).
    pub fn with_queue_token(queue_token: &str) -> Self {
        Self::new(None, Some(queue_token))
    }

    fn new(user: Option<std::result::Result<UserId, String>>, queue_token: Option<&str>) -> Self {
        Self {
            user,
            queue_token: queue_token
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(QueueToken::parse),
            address: None,
        }
    }

    /// The same caller, calling from `address`.
    pub fn from_address(self, address: Option<std::net::IpAddr>) -> Self {
        Self { address, ..self }
    }

    pub fn address(&self) -> Option<std::net::IpAddr> {
        self.address
    }

    /// The signed-in user, whose account still exists; `UNAUTHENTICATED` without a valid
    /// credential or when its account is gone. The database is asked once per `check`.
    pub async fn existing_user_id(
        &self,
        services: &Services,
        check: &AccountCheck,
    ) -> Result<&UserId> {
        let user_id = self.user_id()?;
        check.require(services, user_id).await?;
        Ok(user_id)
    }

    /// [`Viewer::existing_user_id`] when a credential was sent; None without one.
    pub async fn existing_optional_user_id(
        &self,
        services: &Services,
        check: &AccountCheck,
    ) -> Result<Option<&UserId>> {
        match self.optional_user_id()? {
            Some(user_id) => {
                check.require(services, user_id).await?;
                Ok(Some(user_id))
            }
            None => Ok(None),
        }
    }

    /// The user the credential names, not yet checked against the accounts: for use cases that
    /// lock or read the user's row in their own unit of work (and answer `UNAUTHENTICATED` when
    /// it is gone), so asking first would cost a round trip for nothing.
    pub fn user_id(&self) -> Result<&UserId> {
        self.optional_user_id()?.ok_or_else(|| {
            Error::Unauthenticated("sign in: send Authorization: Bearer <token>".into())
        })
    }

    /// The signed-in user when a credential was sent (it must then be valid).
    pub fn optional_user_id(&self) -> Result<Option<&UserId>> {
        match &self.user {
            None => Ok(None),
            Some(Ok(id)) => Ok(Some(id)),
            Some(Err(reason)) => Err(Error::Unauthenticated(reason.clone())),
        }
    }

    /// The queue token sent, if any; `NOT_ADMITTED` when it cannot name a ticket.
    pub fn queue_token(&self) -> Result<Option<&QueueToken>> {
        match &self.queue_token {
            None => Ok(None),
            Some(Some(token)) => Ok(Some(token)),
            Some(None) => Err(Error::unknown_queue_token()),
        }
    }
}

/// The token after a `Bearer ` scheme, trimmed; None without the scheme.
fn strip_bearer(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_viewer_is_resolved_once_from_what_the_transport_read() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let user = UserId::new();
        let token = signer.issue(&user).expect("sign");
        let header = format!("Bearer {token}");
        let queue_token = QueueToken::new();

        let signed_in = Viewer::from_authorization_header(
            &signer,
            Some(&header),
            Some(&format!(" {} ", queue_token.as_str())),
        );
        assert_eq!(signed_in.user_id().ok(), Some(&user));
        assert_eq!(signed_in.queue_token().ok(), Some(Some(&queue_token)));
        let misshapen = Viewer::from_authorization_header(&signer, None, Some("q"));
        assert!(matches!(
            misshapen.queue_token(),
            Err(Error::NotAdmitted(_))
        ));

        let bare = Viewer::from_authorization_header(&signer, Some(&token), None);
        assert!(
            bare.optional_user_id().is_err(),
            "HTTP needs the Bearer scheme"
        );
        let ws = Viewer::from_token(&signer, Some(&token), Some(""));
        assert_eq!(ws.user_id().ok(), Some(&user));
        assert_eq!(ws.queue_token().ok(), Some(None));

        let anonymous = Viewer::default();
        assert_eq!(anonymous.optional_user_id().ok(), Some(None));
        assert!(anonymous.user_id().is_err());
    }
}
