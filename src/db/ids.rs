//! Typed ids: one newtype per entity, so a concert id cannot be passed where a user id is wanted
//! and a function taking three ids cannot have them swapped. They are made at the edge (a
//! client's `ID` argument, a verified token, a stored row, or [`new`](UserId::new) for a row about
//! to be written) and stored as `CHAR(36)`, the canonical hyphenated UUID.
//!
//! A client's id is parsed before it reaches a query: anything that is not a UUID cannot name a
//! row, and it is written back in canonical form (lower case), so `A1..` and `a1..` are one id.

use std::fmt;
use std::io::Write;

use diesel::deserialize::{self, FromSql};
use diesel::mysql::{Mysql, MysqlValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{SmallInt, Text};

/// Declares an id newtype over the canonical UUID text.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = Text)]
        pub struct $name(String);

        impl $name {
            /// A fresh id: UUIDv7, time-ordered, so inserts append to InnoDB's clustered index.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7().hyphenated().to_string())
            }

            /// The id a client sent, if it is a UUID; in canonical form.
            pub fn parse(input: &str) -> Option<Self> {
                uuid::Uuid::parse_str(input.trim())
                    .ok()
                    .map(|id| Self(id.hyphenated().to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl ToSql<Text, Mysql> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Mysql>) -> serialize::Result {
                out.write_all(self.0.as_bytes())?;
                Ok(IsNull::No)
            }
        }

        impl FromSql<Text, Mysql> for $name {
            fn from_sql(value: MysqlValue<'_>) -> deserialize::Result<Self> {
                <String as FromSql<Text, Mysql>>::from_sql(value).map(Self)
            }
        }
    };
}

id_type!(
    /// `users.id`.
    UserId
);
id_type!(
    /// `concerts.id`.
    ConcertId
);
id_type!(
    /// `orders.id`: the seats a fan holds on one date, paid, released or refunded together.
    OrderId
);
id_type!(
    /// `waitlist_entries.id`: one fan's place on a sold-out date's waitlist.
    WaitlistEntryId
);
id_type!(
    /// `reservations.id`: one seat of an order.
    ReservationId
);
id_type!(
    /// `payments.id`.
    PaymentId
);
id_type!(
    /// `wallet_transactions.id`: one ledger entry.
    LedgerEntryId
);
id_type!(
    /// `queue_tickets.id`: internal; a ticket's holder knows it by its token.
    TicketId
);

/// `queue_tickets.token`: what a fan shows to prove their turn (the `Queue-Token` header).
/// 256 random bits, URL-safe base64 (43 characters): unguessable, and safe in a header.
#[derive(
    Clone, PartialEq, Eq, Hash, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = Text)]
pub struct QueueToken(String);

impl QueueToken {
    pub fn new() -> Self {
        use base64::Engine;
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
    }

    /// A token as a client sent it, if it has a token's shape. Anything else cannot name a
    /// ticket and never reaches a query (a non-ASCII value would not even compare with the
    /// ASCII column).
    pub fn parse(input: &str) -> Option<Self> {
        let input = input.trim();
        let well_formed = input.len() == 43
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for QueueToken {
    fn default() -> Self {
        Self::new()
    }
}

/// Tokens are credentials: logs show only their first characters.
impl fmt::Debug for QueueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueueToken({}…)", self.0.get(..6).unwrap_or(""))
    }
}

impl From<QueueToken> for String {
    fn from(token: QueueToken) -> String {
        token.0
    }
}

impl ToSql<Text, Mysql> for QueueToken {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Mysql>) -> serialize::Result {
        out.write_all(self.0.as_bytes())?;
        Ok(IsNull::No)
    }
}

impl FromSql<Text, Mysql> for QueueToken {
    fn from_sql(value: MysqlValue<'_>) -> deserialize::Result<Self> {
        <String as FromSql<Text, Mysql>>::from_sql(value).map(Self)
    }
}

/// A seat's number within its date, 1 to 32,767 (`SMALLINT`): part of a seat's key. One type from
/// a client's argument (`inputs::seat_number` checks it) through the use cases to the stored row,
/// so a seat number cannot be mixed up with a count or an index.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = SmallInt)]
pub struct SeatNumber(i16);

impl SeatNumber {
    /// Seat 1, nearest the stage.
    pub const FIRST: Self = Self(1);

    /// `n` when it can number a seat (1 to 32,767).
    pub fn new(n: i32) -> Option<Self> {
        i16::try_from(n).ok().filter(|n| *n >= 1).map(Self)
    }

    pub fn get(self) -> i16 {
        self.0
    }

    /// As the API shows it (`Int`).
    pub fn as_i32(self) -> i32 {
        i32::from(self.0)
    }
}

impl fmt::Display for SeatNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl ToSql<SmallInt, Mysql> for SeatNumber {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Mysql>) -> serialize::Result {
        <i16 as ToSql<SmallInt, Mysql>>::to_sql(&self.0, out)
    }
}

impl FromSql<SmallInt, Mysql> for SeatNumber {
    fn from_sql(value: MysqlValue<'_>) -> deserialize::Result<Self> {
        <i16 as FromSql<SmallInt, Mysql>>::from_sql(value).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_must_be_a_uuid_and_is_kept_canonical() {
        let id = ConcertId::parse(" 0193A0B4-7D1E-7C3A-9F00-000000000001 ").map(String::from);
        assert_eq!(id.as_deref(), Some("0193a0b4-7d1e-7c3a-9f00-000000000001"));
        assert!(UserId::parse("1").is_none());
        assert!(UserId::parse("'; DROP TABLE users; --").is_none());
        assert_ne!(ReservationId::new(), ReservationId::new());
    }

    #[test]
    fn queue_tokens_are_43_url_safe_characters_and_differ() {
        let (a, b) = (QueueToken::new(), QueueToken::new());
        assert_eq!(a.as_str().len(), 43);
        assert_eq!(QueueToken::parse(a.as_str()).as_ref(), Some(&a));
        assert_ne!(a, b);
        assert!(QueueToken::parse("short").is_none());
        assert!(QueueToken::parse(&"é".repeat(43)).is_none());
        assert!(!format!("{a:?}").contains(a.as_str()));
    }
}
