//! The one vocabulary of error codes. Every `extensions.code` a client can meet (a GraphQL
//! error from any stage, an HTTP refusal before GraphQL runs, a websocket `error` message or
//! the code that starts a close reason) is a value of [`ErrorCode`], and nowhere else in `src/`
//! is a code spelt. The enum is published in the schema (`enum ErrorCode`), so clients generate
//! their exhaustive handling from it: the web app's messages are a map keyed by it, which does
//! not build when a code has no sentence. The README's table of codes is checked against it by
//! a test.

use async_graphql::Enum;

/// What went wrong, as `extensions.code` of every error this API sends.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A missing, malformed, forged or expired access token; a wrong email or password; a token
    /// whose account no longer exists.
    Unauthenticated,
    /// Someone else's reservation or queue token; an operator operation by a fan.
    Forbidden,
    /// An argument the operation cannot take (money with three decimals or as a JSON number, a
    /// seat the concert does not have, a bad id, tiers with a gap, a reused idempotency key with
    /// other arguments, ...). `message` says which.
    BadUserInput,
    /// An unknown concert, date or reservation.
    NotFound,
    /// The queue token is missing, unknown, still waiting, expired, completed, or for another
    /// concert.
    NotAdmitted,
    /// A seat asked for is held or sold (`extensions.seats`: which, for `holdSeats`), no block
    /// of free seats fits a best-available request (`extensions.largestBlock`), or the date's
    /// freed seats go to its waitlist first (`extensions.waitlist`). Nothing was taken.
    SeatUnavailable,
    /// Paying or releasing a hold past its deadline.
    HoldExpired,
    /// The wallet does not cover the price (`extensions.needed`, `extensions.available`).
    InsufficientBalance,
    /// Already holding `MAX_HOLDS_PER_DATE` seats for that date (a cap of its own, off by
    /// default).
    HoldLimitReached,
    /// `joinWaitlist` for a date that is not sold out (seats free or held): queue for them.
    SeatsAvailable,
    /// The order would take the fan past the concert's fair share (`maxTicketsPerFan`, held
    /// and paid seats of every date): `extensions.limit`, `extensions.remaining`.
    TicketLimitReached,
    /// `enterQueue` before a scheduled sale's pre-queue opens (`extensions.opensAt`,
    /// `extensions.saleOpensAt`).
    SaleNotOpen,
    /// A fan's own refund later than `REFUND_CUTOFF` before the show (`extensions.closedAt`).
    RefundWindowClosed,
    /// The waiting room asks for a proof of work and none was sent.
    ChallengeRequired,
    /// The proof of work sent is wrong, expired, reused, someone else's or stale.
    ChallengeFailed,
    /// Over a rate limit, or sign-in for an email locked from this address after wrong
    /// passwords; `extensions.retryAfter` (seconds). HTTP 429 for the per-address request budget;
    /// over a websocket, an `error` message for the operation.
    RateLimited,
    /// The document does not parse.
    GraphqlParseFailed,
    /// The operation fails validation, is over a query limit (nesting and tokens before
    /// parsing; fields, aliases, depth, complexity, directives after), or is introspection in
    /// production.
    GraphqlValidationFailed,
    /// A persisted query sent by hash that this instance does not know yet: send hash and query
    /// once.
    PersistedQueryNotFound,
    /// Allowlist mode: not one of the trusted documents.
    PersistedQueryNotInList,
    /// Persisted queries are off on this server.
    PersistedQueryNotSupported,
    /// HTTP 413: a body over `MAX_BODY_BYTES`, refused before it is read.
    PayloadTooLarge,
    /// HTTP 400: a body that is not one GraphQL request (malformed JSON, a batch, wrong
    /// parameter types).
    BadRequest,
    /// HTTP 400: a request a browser could send cross-site without a CORS preflight.
    CsrfPrevented,
    /// A mutation over GET (HTTP 405, `Allow: POST`).
    MethodNotAllowed,
    /// HTTP 415: a POST that is not `application/json`.
    UnsupportedMediaType,
    /// HTTP 406: an `Accept` header without a JSON type.
    NotAcceptable,
    /// One subscription past `WS_MAX_SUBSCRIPTIONS` on a websocket (the others keep running).
    TooManySubscriptions,
    /// The last entry of an error list cut at `MAX_ERRORS`.
    TooManyErrors,
    /// The database is unreachable or restarting, the pool or a bounded queue is full, or a
    /// write conflict outlasted its retries: try again shortly (`retryAfter` where known). With
    /// `extensions.outcome: "UNKNOWN"`, the connection was lost while the change committed: send
    /// the same request with the same `idempotencyKey`.
    ServiceUnavailable,
    /// The request ran past `REQUEST_TIMEOUT` (HTTP 504); a POST's answer says
    /// `outcome: "UNKNOWN"`.
    Timeout,
    /// Anything else; the details are logged, never sent.
    InternalServerError,
}

impl ErrorCode {
    /// The code as sent: `UNAUTHENTICATED`, `BAD_USER_INPUT`, ... (the schema's spelling).
    pub fn as_str(self) -> &'static str {
        use async_graphql::resolver_utils::EnumType;
        Self::items()
            .iter()
            .find(|item| item.value == self)
            .map_or("INTERNAL_SERVER_ERROR", |item| item.name)
    }

    /// Every code, in the schema's order.
    pub fn all() -> impl Iterator<Item = ErrorCode> {
        use async_graphql::resolver_utils::EnumType;
        Self::items().iter().map(|item| item.value)
    }

    /// The code a sent string names, if any.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        Self::all().find(|c| c.as_str() == code)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_spelt_as_the_schema_spells_them_and_round_trip() {
        assert_eq!(ErrorCode::BadUserInput.as_str(), "BAD_USER_INPUT");
        assert_eq!(
            ErrorCode::GraphqlValidationFailed.as_str(),
            "GRAPHQL_VALIDATION_FAILED"
        );
        assert_eq!(ErrorCode::CsrfPrevented.as_str(), "CSRF_PREVENTED");
        assert_eq!(ErrorCode::all().count(), 32);
        for code in ErrorCode::all() {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
    }

    #[test]
    fn the_readme_table_lists_every_code_and_no_other() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("### Errors")
            .nth(1)
            .expect("an Errors section");
        let table = &section[section.find("| code |").expect("the table")..];
        let mut listed: Vec<String> = Vec::new();
        for row in table.lines().take_while(|l| l.starts_with('|')).skip(2) {
            let first = row.split('|').nth(1).unwrap_or_default();
            for name in first.split('`').skip(1).step_by(2) {
                listed.push(name.to_owned());
            }
        }
        let mut expected: Vec<String> = ErrorCode::all().map(|c| c.as_str().to_owned()).collect();
        listed.sort();
        expected.sort();
        assert_eq!(
            listed, expected,
            "README's table of error codes against ErrorCode"
        );
    }
}
