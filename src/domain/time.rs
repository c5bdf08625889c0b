//! Time conversions shared by the aggregates. The database clock decides (see `db::now`); these
//! only change how its answers are carried.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Stored times are UTC without a zone; this attaches it.
pub fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

/// `std::time::Duration` as a chrono duration for adding to database times.
pub fn chrono_duration(d: std::time::Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}
