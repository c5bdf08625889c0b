//! Seat maps answered from memory while this instance runs its live tick.
//!
//! The first read of a date's map goes to the database and starts (or refreshes) the date's seat
//! feed, which the tick then keeps current (seats written or lapsed since the last tick, the same
//! read that serves `seatUpdates`). Later reads build the map from the feed: no database round
//! trip, and a seat taken shows as taken from the next tick on, never later. A date nobody reads
//! or watches for a minute is forgotten.

use std::time::{Duration, Instant};

use chrono::NaiveDate;

use super::hub::SeatFeed;
use crate::db::ids::ConcertId;
use crate::db::{self, Conn};
use crate::domain::catalog::{self, Seat};
use crate::domain::error::Result;
use crate::domain::services::Services;

/// A date's feed that only reads keep alive is dropped after this long without one.
pub(super) const FORGET_AFTER: Duration = Duration::from_secs(60);

/// The seat map of one date, by seat number.
pub async fn seat_map(
    services: &Services,
    concert_id: &ConcertId,
    date: NaiveDate,
) -> Result<Vec<Seat>> {
    let hub = &services.live;
    let key = (concert_id.clone(), date);
    if hub.serves_polls() {
        let mut state = hub.lock();
        if let Some(feed) = state.dates.get_mut(&key)
            && !feed.faces.is_empty()
            && feed.known.len() == feed.faces.len()
        {
            feed.read_at = Some(Instant::now());
            let mut seats: Vec<Seat> = feed
                .known
                .iter()
                .filter_map(|(number, status)| {
                    feed.faces.get(number).map(|(price, tier, row)| Seat {
                        number: *number,
                        status: *status,
                        price: price.clone(),
                        tier: tier.clone(),
                        row: *row,
                    })
                })
                .collect();
            seats.sort_by_key(|s| s.number);
            metrics::counter!("seat_maps_from_memory_total").increment(1);
            return Ok(seats);
        }
    }
    let (now, seats) = with_conn!(services.db, async |conn: &mut Conn| {
        let now = db::now(conn).await?;
        Ok((now, catalog::seat_map(conn, concert_id, date).await?))
    })
    .await?;
    if hub.serves_polls() {
        let mut state = hub.lock();
        let feed = state
            .dates
            .entry(key)
            .or_insert_with(|| SeatFeed::new(now, &seats));
        feed.read_at = Some(Instant::now());
    }
    Ok(seats)
}
