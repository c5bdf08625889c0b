//! Cursor paging over a user's newest-first lists (the wallet ledger, reservations), Relay style:
//! `first` items `after` a cursor. A cursor names the last item seen by its creation time and id,
//! so a page is one index range read however deep the list, and items written meanwhile never
//! shift a page already read. Cursors are opaque to clients (base64url).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime};

use super::error::{Error, Result};

/// The most items one page may ask for.
pub const MAX_PAGE: i32 = 100;

/// Where a page starts: after the item created at `at` with id `id` (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub at: NaiveDateTime,
    pub id: String,
}

impl PageCursor {
    pub fn encode(&self) -> String {
        let micros = self.at.and_utc().timestamp_micros();
        URL_SAFE_NO_PAD.encode(format!("v1:{micros}:{}", self.id))
    }

    pub fn parse(input: &str) -> Result<Self> {
        let refused = || Error::bad_input("after is not a cursor from this list");
        let bytes = URL_SAFE_NO_PAD
            .decode(input.trim())
            .map_err(|_| refused())?;
        let text = String::from_utf8(bytes).map_err(|_| refused())?;
        let mut parts = text.splitn(3, ':');
        let (Some("v1"), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(refused());
        };
        let micros: i64 = micros.parse().map_err(|_| refused())?;
        let at = DateTime::from_timestamp_micros(micros)
            .ok_or_else(refused)?
            .naive_utc();
        // Ids are UUIDs: anything else cannot be a cursor of ours.
        let id = uuid::Uuid::parse_str(id).map_err(|_| refused())?;
        Ok(Self {
            at,
            id: id.hyphenated().to_string(),
        })
    }
}

/// A page asked for: how many, after what.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub first: i64,
    pub after: Option<PageCursor>,
}

impl PageRequest {
    pub fn parse(first: i32, after: Option<&str>) -> Result<Self> {
        Ok(Self {
            first: page_size(first)?,
            after: after.map(PageCursor::parse).transpose()?,
        })
    }
}

/// A client's `first`: 1 to [`MAX_PAGE`] (`BAD_USER_INPUT` otherwise), for every list that is
/// read a bounded number at a time.
pub fn page_size(first: i32) -> Result<i64> {
    if (1..=MAX_PAGE).contains(&first) {
        Ok(first.into())
    } else {
        Err(Error::bad_input(format!(
            "first must be between 1 and {MAX_PAGE}"
        )))
    }
}

/// One page: its items with their cursors, and whether more follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<(PageCursor, T)>,
    pub has_next: bool,
}

impl<T> Page<T> {
    /// A page from up to `first + 1` rows read: the extra one only says more follow.
    pub fn from_rows(mut rows: Vec<(PageCursor, T)>, first: i64) -> Self {
        let has_next = rows.len() as i64 > first;
        rows.truncate(usize::try_from(first).unwrap_or(0));
        Self {
            items: rows,
            has_next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_junk_is_refused() {
        let cursor = PageCursor {
            at: DateTime::from_timestamp_micros(1_765_000_000_123_456)
                .expect("time")
                .naive_utc(),
            id: "0193a0b4-7d1e-7c3a-9f00-000000000001".into(),
        };
        assert_eq!(PageCursor::parse(&cursor.encode()).expect("valid"), cursor);
        for junk in ["", "x", "djE6MTox", "'; DROP TABLE users; --"] {
            assert!(PageCursor::parse(junk).is_err(), "{junk}");
        }
        assert!(PageRequest::parse(0, None).is_err());
        assert!(PageRequest::parse(101, None).is_err());
    }
}
