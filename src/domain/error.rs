//! The one error type of the domain. Every use case returns it; the GraphQL edge maps each variant
//! to a stable `extensions.code` exactly once (`graphql::error`). Storage and pool failures are
//! kept whole so they can be logged with their cause, and are never shown to clients.

use crate::db::{self, PoolError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadInput(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    NotAdmitted(String),
    /// Seats asked for are held or sold (or no block of free seats fits).
    #[error("{0}")]
    SeatUnavailable(Unavailable),
    #[error("the hold has expired; hold the seat again")]
    HoldExpired,
    #[error("insufficient balance: {needed} needed, {available} available")]
    InsufficientBalance { needed: String, available: String },
    #[error("you already hold {0} seats for this date, the most allowed")]
    HoldLimitReached(u32),
    /// A waitlist join for a date that is not sold out (seats free or held): the queue serves it.
    #[error("this date is not sold out: its seats are free or held; queue for them instead")]
    SeatsAvailable,
    /// The fan's fair share of the concert would be exceeded.
    #[error("at most {limit} tickets per fan for this concert; you may take {remaining} more")]
    TicketLimitReached { limit: u32, remaining: u32 },
    /// A fan's own refund asked for after the policy's window closed (operators may still).
    #[error("refunds of this ticket closed at {closed_at}; ask the organiser")]
    RefundWindowClosed {
        closed_at: chrono::DateTime<chrono::Utc>,
    },
    /// The concert's waiting room does not take entries yet: its sale is scheduled for later,
    /// or not scheduled at all.
    #[error("{}", match opens_at {
        Some(at) => format!("the sale has not opened yet; the waiting room opens at {at}"),
        None => "this concert is not on sale yet".to_owned(),
    })]
    SaleNotOpen {
        /// When entries are taken (the pre-queue, or the sale itself without one).
        opens_at: Option<chrono::DateTime<chrono::Utc>>,
        sale_opens_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// The waiting room asks for a proof of work and none was sent.
    #[error("{0}")]
    ChallengeRequired(String),
    /// The proof of work sent does not hold (wrong, expired, reused, for someone else).
    #[error("{0}")]
    ChallengeFailed(String),
    /// A bounded resource (password hashing) is full: try again shortly.
    #[error("{what}")]
    Overloaded {
        what: &'static str,
        retry_after: std::time::Duration,
    },
    /// The caller went over a rate limit.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: std::time::Duration,
    },
    #[error("database error")]
    Database(#[from] diesel::result::Error),
    #[error("database pool error")]
    Pool(#[from] PoolError),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
    /// A unit of work that must be rolled back and run again from a fresh read (a waitlist
    /// round that found a seat it read free sold meanwhile). Never reaches a client: the
    /// caller starts over; if it ever did, it would be an internal error.
    #[error("the state changed under the unit of work; start over")]
    StartOver,
    /// One failure met by several callers at once (a batch of queue entries): each gets it.
    #[error("{0}")]
    Shared(std::sync::Arc<Error>),
    /// The connection was lost while the transaction committed: the change may or may not have
    /// been made. Answered SERVICE_UNAVAILABLE with `extensions.outcome: "UNKNOWN"`.
    #[error("the outcome of the commit is unknown")]
    OutcomeUnknown(Box<Error>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why seats could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// These seats (by number) are held or sold.
    Seats(Vec<crate::db::ids::SeatNumber>),
    /// Free seats of this date go to its waitlist first.
    ForWaitlist,
    /// No block of the size asked is free; `largest_block` is the most adjacent free seats in
    /// one row. `contended`: some seats were being taken by others at that moment (the caller
    /// tries again before answering).
    NoBlock {
        largest_block: usize,
        contended: bool,
    },
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Seats(seats) if seats.len() <= 1 => write!(f, "this seat is not available"),
            Self::Seats(seats) => {
                let numbers: Vec<String> = seats.iter().map(ToString::to_string).collect();
                write!(f, "seats {} are not available", numbers.join(", "))
            }
            Self::ForWaitlist => write!(
                f,
                "seats of this date go to the fans on its waitlist first; join the waitlist"
            ),
            Self::NoBlock { largest_block, .. } => write!(
                f,
                "not enough free seats together; the most free side by side is {largest_block}"
            ),
        }
    }
}

impl Error {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput(message.into())
    }

    pub fn not_admitted(message: impl Into<String>) -> Self {
        Self::NotAdmitted(message.into())
    }

    /// A queue token that names no ticket (or could not: it is not shaped like one).
    pub fn unknown_queue_token() -> Self {
        Self::not_admitted("unknown queue token; call enterQueue")
    }

    /// A stored value the domain cannot interpret: a bug or a hand-edited row, never user input.
    pub fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("unexpected stored value: {what}"))
    }

    /// True when the change the error answers may have been committed all the same.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self.unshared(), Self::OutcomeUnknown(_))
    }

    /// True when the error hides a cause that must be logged rather than shown.
    pub fn is_internal(&self) -> bool {
        match self {
            Self::Shared(inner) => inner.is_internal(),
            Self::OutcomeUnknown(inner) => inner.is_internal(),
            _ => matches!(
                self,
                Self::Database(_) | Self::Pool(_) | Self::Internal(_) | Self::StartOver
            ),
        }
    }

    /// The error itself, seen through any sharing.
    pub fn unshared(&self) -> &Self {
        match self {
            Self::Shared(inner) => inner.unshared(),
            _ => self,
        }
    }
}

impl Error {
    /// The database could not be reached, or gave no connection in time; trying again shortly may
    /// work. (A write cut off this way committed whole or not at all, never in part.)
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Pool(_) | Self::Overloaded { .. } | Self::OutcomeUnknown(_) => true,
            Self::Database(err) => db::is_connection_error(err),
            Self::Shared(inner) => inner.is_unavailable(),
            _ => false,
        }
    }
}

impl Error {
    /// A write conflict (deadlock, lock-wait timeout, cluster certification failure) that went on
    /// through every retry: one row is too hot right now. Answered SERVICE_UNAVAILABLE with a
    /// retry hint, never as an internal error.
    pub fn is_contended(&self) -> bool {
        match self {
            Self::Database(err) => db::is_retryable(err),
            Self::Shared(inner) => inner.is_contended(),
            _ => false,
        }
    }
}

impl db::Retryable for Error {
    /// A deadlock, lock-wait timeout or write conflict: the transaction may simply run again.
    fn is_retryable(&self) -> bool {
        match self {
            Self::Database(err) => db::is_retryable(err),
            _ => false,
        }
    }

    fn is_connection_lost(&self) -> bool {
        matches!(self, Self::Database(err) if db::is_connection_error(err))
    }

    /// An error met by `COMMIT` (see `Retryable::at_commit`). A conflict the server reports
    /// (deadlock, a cluster's certification failure) is a definite rollback and is retried;
    /// anything else there (the connection lost or killed, possibly after the server committed,
    /// the rollback after it failing too) leaves the outcome unknown.
    fn at_commit(self) -> Self {
        if db::Retryable::is_retryable(&self) {
            return self;
        }
        metrics::counter!("commit_outcome_unknown_total").increment(1);
        Self::OutcomeUnknown(Box::new(self))
    }
}
