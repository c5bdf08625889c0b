//! Proof-of-work for entering the waiting room: bot friction that costs a fan's browser a moment
//! and a bot farm a lot, in the spirit of Queue-it's and Cloudflare's challenges.
//!
//! `queueChallenge(concertId)` hands the signed-in fan a *nonce*: a token signed by this service
//! (HS256 under a key of its own, so it can never pass as an access token) that names the fan,
//! the concert, the difficulty `d`, an expiry and a random id. The fan finds any `solution` such
//! that `SHA-256(nonce + ":" + solution)` starts with `d` zero bits (about 2^d hashes), and sends
//! both with `enterQueue`. Checking costs the server one signature check and one hash: O(1).
//!
//! Refused with `CHALLENGE_FAILED`: a wrong solution, a nonce for another fan or concert, an
//! expired one, one whose difficulty is below what the room asks now (the difficulty can be
//! raised while a sale runs: `queue_rooms.pow_difficulty`), and one used before (its id is
//! recorded, in the entering transaction, until it would have expired). Without a solution where
//! one is needed: `CHALLENGE_REQUIRED`. Difficulty 0 (the default) asks for nothing.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::ids::{ConcertId, UserId};
use crate::domain::error::{Error, Result};

/// The most difficulty anyone may ask: 2^32 hashes is minutes of a phone's time already.
pub const MAX_DIFFICULTY: u8 = 32;

/// What a fan must solve.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub nonce: String,
    pub difficulty: u8,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// A fan's answer, as sent with `enterQueue`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub nonce: String,
    pub solution: String,
}

impl Answer {
    /// Bounded before anything is verified: a nonce is a few hundred characters, a solution a
    /// counter.
    pub fn parse(nonce: String, solution: String) -> Result<Self> {
        if nonce.len() > 1024 || solution.is_empty() || solution.len() > 64 {
            return Err(Error::ChallengeFailed(
                "this is not an answer to a queue challenge".into(),
            ));
        }
        Ok(Self { nonce, solution })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The fan.
    sub: String,
    concert: String,
    difficulty: u8,
    exp: u64,
    /// Spent once.
    jti: String,
}

/// Issues and checks challenges for one instance (any instance checks any instance's: the key
/// derives from the shared JWT secret).
pub struct Challenges {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    default_difficulty: u8,
}

impl Challenges {
    pub fn new(jwt_secret: &[u8], ttl: Duration, default_difficulty: u8) -> Self {
        // A key of its own: a challenge must never verify as an access token, nor one as it.
        let mut key = jwt_secret.to_vec();
        key.extend_from_slice(b"/queue-challenge");
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            ttl,
            default_difficulty: default_difficulty.min(MAX_DIFFICULTY),
        }
    }

    /// The difficulty a room asks now: the instance default or the room's own, the higher.
    pub(super) fn required(&self, room: Option<u8>) -> u8 {
        room.unwrap_or(0)
            .max(self.default_difficulty)
            .min(MAX_DIFFICULTY)
    }

    pub(super) fn issue_for(
        &self,
        user: &UserId,
        concert: &ConcertId,
        difficulty: u8,
    ) -> Result<Challenge> {
        let expires = unix_now() + self.ttl.as_secs().max(1);
        let claims = Claims {
            sub: user.to_string(),
            concert: concert.to_string(),
            difficulty,
            exp: expires,
            jti: format!("{:032x}", rand::random::<u128>()),
        };
        let nonce = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(anyhow::anyhow!("signing a challenge: {e}")))?;
        let expires_at = chrono::DateTime::from_timestamp(i64::try_from(expires).unwrap_or(0), 0)
            .unwrap_or_default();
        Ok(Challenge {
            nonce,
            difficulty,
            expires_at,
        })
    }

    /// Checks `answer` for `user` entering `concert` when the room asks `required`: the id to
    /// spend and until when it would be valid.
    pub(super) fn check(
        &self,
        answer: &Answer,
        user: &UserId,
        concert: &ConcertId,
        required: u8,
    ) -> Result<(String, chrono::NaiveDateTime)> {
        let failed = |why: &str| Error::ChallengeFailed(why.to_owned());
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(&answer.nonce, &self.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    failed("this queue challenge has expired; ask for a new one")
                }
                _ => failed("this is not a queue challenge of this service"),
            })?
            .claims;
        if claims.sub != user.as_str() || claims.concert != concert.as_str() {
            return Err(failed(
                "this queue challenge was issued for another fan or concert",
            ));
        }
        if claims.difficulty < required {
            return Err(failed(
                "the room asks for more work now; ask for a new queue challenge",
            ));
        }
        if !solves(&answer.nonce, &answer.solution, claims.difficulty) {
            return Err(failed("the solution does not solve the queue challenge"));
        }
        let expires_at =
            chrono::DateTime::from_timestamp(i64::try_from(claims.exp).unwrap_or(0), 0)
                .unwrap_or_default()
                .naive_utc();
        Ok((claims.jti, expires_at))
    }
}

/// The room asks `required` bits of work: checks the answer (one signature, one hash) and
/// returns the challenge to spend with the entry (id, expiry), or None when the room asks none.
pub(super) fn verify(
    challenges: &Challenges,
    answer: Option<&Answer>,
    user: &UserId,
    concert: &ConcertId,
    required: u8,
) -> Result<Option<(String, chrono::NaiveDateTime)>> {
    if required == 0 {
        return Ok(None);
    }
    let Some(answer) = answer else {
        return Err(Error::ChallengeRequired(format!(
            "this waiting room asks for a proof of work ({required} bits): call queueChallenge"
        )));
    };
    challenges.check(answer, user, concert, required).map(Some)
}

/// The answer to a challenge spent already.
pub(super) fn used_already() -> Error {
    Error::ChallengeFailed("this queue challenge was used already; ask for a new one".into())
}

/// True when SHA-256(`nonce` ":" `solution`) starts with `difficulty` zero bits.
pub fn solves(nonce: &str, solution: &str, difficulty: u8) -> bool {
    let mut hasher = Sha256::new();
    hasher.update(nonce.as_bytes());
    hasher.update(b":");
    hasher.update(solution.as_bytes());
    leading_zero_bits(&hasher.finalize()) >= u32::from(difficulty)
}

fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in hash {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Solves a challenge the way a client does: counts up until the hash has enough zero bits.
pub fn solve(nonce: &str, difficulty: u8) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|candidate| solves(nonce, candidate, difficulty))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenges() -> Challenges {
        Challenges::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(60),
            8,
        )
    }

    #[test]
    fn a_solution_is_checked_with_one_hash_and_binds_fan_concert_and_difficulty() {
        let c = challenges();
        let (fan, concert) = (UserId::new(), ConcertId::new());
        let challenge = c.issue_for(&fan, &concert, 8).expect("issue");
        let answer =
            Answer::parse(challenge.nonce.clone(), solve(&challenge.nonce, 8)).expect("answer");
        assert!(c.check(&answer, &fan, &concert, 8).is_ok());

        let wrong = Answer {
            solution: "x".into(),
            ..answer.clone()
        };
        let fails = |r: Result<(String, chrono::NaiveDateTime)>| {
            matches!(r, Err(Error::ChallengeFailed(_)))
        };
        assert!(fails(c.check(&wrong, &fan, &concert, 8)) || solves(&answer.nonce, "x", 8));
        assert!(
            fails(c.check(&answer, &UserId::new(), &concert, 8)),
            "another fan"
        );
        assert!(
            fails(c.check(&answer, &fan, &ConcertId::new(), 8)),
            "another concert"
        );
        assert!(
            fails(c.check(&answer, &fan, &concert, 12)),
            "the room asks more now"
        );

        let other_service = Challenges::new(
            b"another-secret-another-secret-xx",
            Duration::from_secs(60),
            8,
        );
        assert!(
            fails(other_service.check(&answer, &fan, &concert, 8)),
            "signed elsewhere"
        );
    }

    #[test]
    fn an_expired_challenge_is_refused_however_well_solved() {
        let c = challenges();
        let (fan, concert) = (UserId::new(), ConcertId::new());
        let claims = Claims {
            sub: fan.to_string(),
            concert: concert.to_string(),
            difficulty: 8,
            exp: unix_now() - 10,
            jti: "old".into(),
        };
        let nonce = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &c.encoding)
            .expect("sign");
        let answer = Answer::parse(nonce.clone(), solve(&nonce, 8)).expect("answer");
        assert!(matches!(
            c.check(&answer, &fan, &concert, 8),
            Err(Error::ChallengeFailed(m)) if m.contains("expired")
        ));
    }

    #[test]
    fn zero_bits_are_counted_across_bytes() {
        assert_eq!(leading_zero_bits(&[0, 0, 0b0001_0000, 0xff]), 19);
        assert_eq!(leading_zero_bits(&[0xff]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn a_challenge_is_not_an_access_token() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let c = Challenges::new(secret, Duration::from_secs(60), 1);
        let challenge = c
            .issue_for(&UserId::new(), &ConcertId::new(), 1)
            .expect("issue");
        let tokens =
            crate::domain::accounts::tokens::TokenSigner::new(secret, Duration::from_secs(60));
        assert!(tokens.verify(&challenge.nonce).is_err());
    }
}
