//! The one place domain errors become GraphQL errors. Each variant has a stable
//! `extensions.code`; internal causes are logged with their chain and replaced by a generic
//! message, so SQL and internals never reach a client.

use async_graphql::ErrorExtensions;

pub use super::error_code::ErrorCode;
use crate::domain::Error;
use crate::domain::error::Unavailable;

/// A domain error already mapped for the client. Resolvers return `ApiResult<T>` and use `?` on
/// domain results; the conversion below is the only mapping.
#[derive(Debug, Clone)]
pub struct ApiError(async_graphql::Error);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(to_graphql(&e))
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        e.0
    }
}

/// `extensions.outcome` of an error that may hide a commit: resend with the same key.
pub const OUTCOME_UNKNOWN: &str = "UNKNOWN";

/// `extensions.retryAfter` (and `Retry-After`): whole seconds, rounded up, at least one.
pub fn retry_after_seconds(retry_after: std::time::Duration) -> u64 {
    (retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)).max(1)
}

/// The code of a domain error.
pub fn code(error: &Error) -> ErrorCode {
    let error = error.unshared();
    match error {
        Error::Unauthenticated(_) => ErrorCode::Unauthenticated,
        Error::Forbidden(_) => ErrorCode::Forbidden,
        Error::BadInput(_) => ErrorCode::BadUserInput,
        Error::NotFound(_) => ErrorCode::NotFound,
        Error::NotAdmitted(_) => ErrorCode::NotAdmitted,
        Error::SeatUnavailable(_) => ErrorCode::SeatUnavailable,
        Error::TicketLimitReached { .. } => ErrorCode::TicketLimitReached,
        Error::SeatsAvailable => ErrorCode::SeatsAvailable,
        Error::HoldExpired => ErrorCode::HoldExpired,
        Error::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
        Error::HoldLimitReached(_) => ErrorCode::HoldLimitReached,
        Error::RefundWindowClosed { .. } => ErrorCode::RefundWindowClosed,
        Error::SaleNotOpen { .. } => ErrorCode::SaleNotOpen,
        Error::RateLimited { .. } => ErrorCode::RateLimited,
        Error::ChallengeRequired(_) => ErrorCode::ChallengeRequired,
        Error::ChallengeFailed(_) => ErrorCode::ChallengeFailed,
        Error::Overloaded { .. } => ErrorCode::ServiceUnavailable,
        _ if error.is_unavailable() || error.is_contended() => ErrorCode::ServiceUnavailable,
        Error::Database(_)
        | Error::Pool(_)
        | Error::Internal(_)
        | Error::StartOver
        | Error::Shared(_)
        | Error::OutcomeUnknown(_) => ErrorCode::InternalServerError,
    }
}

/// Sets `extensions.code`: the one way the extensions code an error async-graphql or the
/// transport raised.
pub(crate) fn set_code(error: &mut async_graphql::ServerError, code: ErrorCode) {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code.as_str());
}

/// `error` with its `extensions.code` set to `code`.
pub(crate) fn coded(
    mut error: async_graphql::ServerError,
    code: ErrorCode,
) -> async_graphql::ServerError {
    set_code(&mut error, code);
    error
}

/// The code of an error as sent (every error has one: see `stage_codes`).
pub fn error_code_of(error: &async_graphql::ServerError) -> Option<ErrorCode> {
    ErrorCode::parse(code_of(error))
}

/// The `extensions.code` of an error as sent, as text (every error has one: see `stage_codes`).
pub fn code_of(error: &async_graphql::ServerError) -> &str {
    error
        .extensions
        .as_ref()
        .and_then(|x| x.get("code"))
        .and_then(|v| match v {
            async_graphql::Value::String(s) => Some(s.as_str()),
            async_graphql::Value::Enum(e) => Some(e.as_str()),
            _ => None,
        })
        .unwrap_or("NONE")
}

pub fn to_graphql(error: &Error) -> async_graphql::Error {
    let error = error.unshared();
    let code = code(error);
    if let Error::Overloaded { retry_after, .. } | Error::RateLimited { retry_after, .. } = error {
        let seconds = retry_after_seconds(*retry_after);
        return async_graphql::Error::new(error.to_string()).extend_with(|_, e| {
            e.set("code", code.as_str());
            e.set("retryAfter", seconds);
        });
    }
    if error.is_contended() {
        tracing::warn!(cause = %cause_chain(error), "write conflicts outlasted the retries");
        metrics::counter!("transactions_contended_total").increment(1);
        return async_graphql::Error::new(
            "too many people are changing the same thing at once; try again in a moment",
        )
        .extend_with(|_, e| {
            e.set("code", code.as_str());
            e.set("retryAfter", 1);
        });
    }
    if error.outcome_unknown() {
        tracing::warn!(cause = %cause_chain(error), "connection lost during COMMIT");
        return async_graphql::Error::new(
            "the connection to the database was lost while this change was being committed: it \
             may or may not have been made; send the same request again with the same \
             idempotencyKey, which returns the first result if there was one",
        )
        .extend_with(|_, e| {
            e.set("code", code.as_str());
            e.set("outcome", OUTCOME_UNKNOWN);
            e.set("retryAfter", 1);
        });
    }
    if error.is_unavailable() {
        tracing::warn!(cause = %cause_chain(error), "database unavailable");
        let busy = matches!(
            error,
            Error::Pool(crate::db::PoolError::Timeout(
                deadpool::managed::TimeoutType::Wait
            ))
        );
        let message = if busy {
            "the service is too busy to take this request right now; try again in a few seconds"
        } else {
            "the service cannot reach its database right now; try again in a few seconds"
        };
        return async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code.as_str()));
    }
    if error.is_internal() {
        tracing::error!(error = ?error, cause = %cause_chain(error), "internal error");
        return async_graphql::Error::new("internal server error")
            .extend_with(|_, e| e.set("code", code.as_str()));
    }
    let mut gql = async_graphql::Error::new(error.to_string())
        .extend_with(|_, e| e.set("code", code.as_str()));
    match error {
        Error::InsufficientBalance { needed, available } => {
            gql = gql.extend_with(|_, e| {
                e.set("needed", needed.as_str());
                e.set("available", available.as_str());
            });
        }
        Error::RefundWindowClosed { closed_at } => {
            gql = gql.extend_with(|_, e| e.set("closedAt", closed_at.to_rfc3339()));
        }
        Error::SeatUnavailable(Unavailable::Seats(seats)) if !seats.is_empty() => {
            let numbers: Vec<i32> = seats.iter().map(|n| n.as_i32()).collect();
            gql = gql.extend_with(|_, e| e.set("seats", numbers));
        }
        Error::SeatUnavailable(Unavailable::ForWaitlist) => {
            gql = gql.extend_with(|_, e| e.set("waitlist", true));
        }
        Error::SeatUnavailable(Unavailable::NoBlock { largest_block, .. }) => {
            gql = gql.extend_with(|_, e| e.set("largestBlock", *largest_block as u64));
        }
        Error::TicketLimitReached { limit, remaining } => {
            gql = gql.extend_with(|_, e| {
                e.set("limit", *limit);
                e.set("remaining", *remaining);
            });
        }
        Error::SaleNotOpen {
            opens_at,
            sale_opens_at,
        } => {
            gql = gql.extend_with(|_, e| {
                if let Some(at) = opens_at {
                    e.set("opensAt", at.to_rfc3339());
                }
                if let Some(at) = sale_opens_at {
                    e.set("saleOpensAt", at.to_rfc3339());
                }
            });
        }
        _ => {}
    }
    gql
}

fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(e: Error) -> Option<ErrorCode> {
        let gql = to_graphql(&e);
        gql.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .and_then(|v| ErrorCode::parse(v.to_string().trim_matches('"')))
    }

    #[test]
    fn every_variant_has_its_stable_code() {
        let cases = [
            (
                Error::Unauthenticated("x".into()),
                ErrorCode::Unauthenticated,
            ),
            (Error::Forbidden("x".into()), ErrorCode::Forbidden),
            (Error::BadInput("x".into()), ErrorCode::BadUserInput),
            (Error::NotFound("concert"), ErrorCode::NotFound),
            (Error::NotAdmitted("x".into()), ErrorCode::NotAdmitted),
            (
                Error::SeatUnavailable(Unavailable::Seats(vec![])),
                ErrorCode::SeatUnavailable,
            ),
            (
                Error::TicketLimitReached {
                    limit: 6,
                    remaining: 2,
                },
                ErrorCode::TicketLimitReached,
            ),
            (Error::HoldExpired, ErrorCode::HoldExpired),
            (
                Error::InsufficientBalance {
                    needed: "1.00".into(),
                    available: "0.00".into(),
                },
                ErrorCode::InsufficientBalance,
            ),
            (Error::HoldLimitReached(4), ErrorCode::HoldLimitReached),
            (
                Error::RefundWindowClosed {
                    closed_at: chrono::Utc::now(),
                },
                ErrorCode::RefundWindowClosed,
            ),
            (
                Error::SaleNotOpen {
                    opens_at: Some(chrono::Utc::now()),
                    sale_opens_at: None,
                },
                ErrorCode::SaleNotOpen,
            ),
            (
                Error::Internal(anyhow::anyhow!("boom")),
                ErrorCode::InternalServerError,
            ),
            (
                Error::Database(diesel::result::Error::NotFound),
                ErrorCode::InternalServerError,
            ),
            (
                Error::Pool(crate::db::PoolError::Timeout(
                    deadpool::managed::TimeoutType::Wait,
                )),
                ErrorCode::ServiceUnavailable,
            ),
            (
                Error::Database(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::Unknown,
                    Box::new("Input/output error: broken pipe".to_owned()),
                )),
                ErrorCode::ServiceUnavailable,
            ),
            // A conflict that outlasted every retry (a hot row under Galera certification).
            (
                Error::Shared(std::sync::Arc::new(Error::Database(
                    diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::Unknown,
                        Box::new(
                            "Deadlock found when trying to get lock; try restarting transaction"
                                .to_owned(),
                        ),
                    ),
                ))),
                ErrorCode::ServiceUnavailable,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(code_of(error), Some(expected));
        }
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let gql = to_graphql(&Error::Internal(anyhow::anyhow!(
            "SELECT secret FROM users"
        )));
        assert_eq!(gql.message, "internal server error");
    }
}
