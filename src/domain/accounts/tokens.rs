//! Access tokens: short-lived HS256 JWTs naming the user.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::db::ids::UserId;
use crate::domain::error::{Error, Result};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    exp: u64,
}

/// Issues and checks access tokens. Token lifetimes use the instance clock: they are a security
/// bound with a generous leeway, not a business deadline like a hold.
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl TokenSigner {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
        }
    }

    pub fn issue(&self, user_id: &UserId) -> Result<String> {
        let now = unix_now();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + self.ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(anyhow::anyhow!("signing token: {e}")))
    }

    /// The user id in a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Result<UserId> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Error::Unauthenticated("access token expired; sign in again".into())
                }
                _ => Error::Unauthenticated("invalid access token".into()),
            })?;
        // Signed by us, so always a user id; anything else is refused like a forgery.
        UserId::parse(&claims.sub)
            .ok_or_else(|| Error::Unauthenticated("invalid access token".into()))
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_a_forged_one_is_refused() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let user = UserId::new();
        let token = signer.issue(&user).expect("sign");
        assert_eq!(signer.verify(&token).ok(), Some(user));

        let other = TokenSigner::new(b"another-secret-another-secret-xx", Duration::from_secs(60));
        assert!(matches!(
            other.verify(&token),
            Err(Error::Unauthenticated(_))
        ));
        assert!(matches!(
            signer.verify("not.a.jwt"),
            Err(Error::Unauthenticated(_))
        ));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(0));
        let claims = Claims {
            sub: "u".into(),
            iat: 0,
            exp: 1,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &signer.encoding)
            .expect("sign");
        assert!(
            matches!(signer.verify(&token), Err(Error::Unauthenticated(m)) if m.contains("expired"))
        );
    }
}
