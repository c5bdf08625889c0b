//! The once-per-tick read of one instance: for every watched room and date, what changed since
//! the last tick, published to the feeds; and the batched presence write for watched tickets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime};

use crate::db::ids::{ConcertId, TicketId};
use crate::db::{self, Conn, queue_rooms, queue_tickets, seats};
use crate::domain::catalog::Seat;
use crate::domain::error::Result;
use crate::domain::queue;
use crate::domain::services::Services;

use super::hub::{LOOKBACK, RoomSnapshot, Stage, TicketChange};

/// Watched tickets refreshed per presence statement.
const PRESENCE_CHUNK: usize = 5000;

/// What one live tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LiveTickReport {
    pub rooms: usize,
    pub dates: usize,
    pub subscribers: usize,
    pub presence_refreshed: usize,
    /// Statements the pool ran during the tick (exact when nothing else uses the pool meanwhile).
    pub statements: u64,
}

/// One live tick for this instance: read each watched room and date once, publish, refresh
/// presence when due.
pub async fn publish_changes(services: &Services) -> Result<LiveTickReport> {
    let hub = &services.live;
    let presence_every = presence_interval(services.rules.queue_abandon_after);
    let (rooms, dates, stats, presence, waitlists, subscribers) = {
        let mut state = hub.lock();
        // Tickets nobody polled for two presence intervals are forgotten (and their presence
        // stops, so admission may skip them as abandoned).
        let forget_before = Instant::now().checked_sub(presence_every * 2);
        if let Some(before) = forget_before {
            let stale: Vec<_> = state
                .polled
                .iter()
                .filter(|(_, p)| p.last_poll < before)
                .map(|(id, p)| (id.clone(), p.row.token.clone()))
                .collect();
            for (id, token) in stale {
                state.polled.remove(&id);
                state.polled_tokens.remove(&token);
            }
        }
        state.rooms.retain(|_, f| f.tx.receiver_count() > 0);
        state.stats.retain(|_, f| f.receiver_count() > 0);
        let stats: Vec<ConcertId> = state.stats.keys().cloned().collect();
        state.dates.retain(|_, f| {
            f.tx.receiver_count() > 0
                || f.read_at
                    .is_some_and(|at| at.elapsed() < super::seat_maps::FORGET_AFTER)
        });
        let rooms: Vec<(ConcertId, NaiveDateTime)> = state
            .rooms
            .iter()
            .map(|(k, f)| (k.clone(), f.cursor))
            .collect();
        let dates: Vec<((ConcertId, NaiveDate), NaiveDateTime)> = state
            .dates
            .iter()
            .map(|(k, f)| (k.clone(), f.cursor))
            .collect();
        let due = state
            .last_presence
            .is_none_or(|at| at.elapsed() >= presence_every);
        let presence: Vec<TicketId> = if due {
            let mut due: Vec<TicketId> = state.watched.keys().cloned().collect();
            due.extend(super::polls::polled_since(
                &state.polled,
                state.last_presence,
            ));
            state.last_presence = Some(Instant::now());
            due
        } else {
            Vec::new()
        };
        let waitlists = !state.waitlists.is_empty();
        (
            rooms,
            dates,
            stats,
            presence,
            waitlists,
            state.subscribers(),
        )
    };
    metrics::gauge!("live_subscribers").set(subscribers as f64);
    if rooms.is_empty() && dates.is_empty() && stats.is_empty() && !waitlists {
        return Ok(LiveTickReport::default());
    }

    let before = services.db.statements.get();
    // Each room's read, published first to the tickets it changes (see `Stage`).
    let mut read_rooms: Vec<(ConcertId, Arc<RoomSnapshot>)> = Vec::with_capacity(rooms.len());
    let report = with_conn!(services.db, async |conn: &mut Conn| {
        let now = db::now(conn).await?;
        for (concert_id, cursor) in &rooms {
            let snapshot = read_room(conn, concert_id, *cursor, now).await?;
            let mut state = hub.lock();
            // Remembered tickets follow their changes (polls read them from memory).
            for (id, change) in snapshot.changes.iter() {
                if let Some(polled) = state.polled.get_mut(id) {
                    polled.row.status = change.status;
                    polled.row.expires_at = change.expires_at;
                    polled.row.seq = change.seq;
                }
            }
            if let Some(feed) = state.rooms.get_mut(concert_id) {
                let snapshot = Arc::new(snapshot);
                // Stored without waking the room; only the changed tickets are woken.
                feed.tx.send_if_modified(|current| {
                    *current = Arc::clone(&snapshot);
                    false
                });
                feed.cursor = now - LOOKBACK;
                for id in snapshot.changes.keys() {
                    for turn in state.watched.get(id).into_iter().flat_map(|w| &w.turns) {
                        turn.notify_one();
                    }
                }
                read_rooms.push((concert_id.clone(), snapshot));
            }
        }
        for (key, cursor) in &dates {
            let read_began = Instant::now();
            let changed = seats::changed_since(conn, &key.0, key.1, *cursor, now).await?;
            if let Some(feed) = hub.lock().dates.get_mut(key) {
                // A change this instance made after the read began is newer than the read.
                feed.noted.retain(|_, at| *at > read_began);
                for seat in changed.into_iter().map(Seat::from) {
                    if feed.noted.contains_key(&seat.number) {
                        continue;
                    }
                    if feed.known.get(&seat.number) != Some(&seat.status) {
                        feed.known.insert(seat.number, seat.status);
                        // No receiver left is fine: the feed is pruned next tick.
                        let _ = feed.tx.send(seat);
                    }
                }
                feed.cursor = now - LOOKBACK;
            }
        }
        for concert_id in &stats {
            let read = queue::stats::read(conn, concert_id, &services.rules).await?;
            if let Some(feed) = hub.lock().stats.get(concert_id) {
                feed.send_replace(Some(Arc::new(read)));
            }
        }
        if waitlists {
            super::waitlists::publish(conn, hub, now).await?;
        }
        for chunk in presence.chunks(PRESENCE_CHUNK) {
            queue_tickets::touch(conn, chunk).await?;
        }
        let statements = services.db.statements.get() - before;
        metrics::counter!("live_ticks_total").increment(1);
        metrics::counter!("live_tick_statements_total").increment(statements);
        Ok(LiveTickReport {
            rooms: rooms.len(),
            dates: dates.len(),
            subscribers,
            presence_refreshed: presence.len(),
            statements,
        })
    })
    .await?;
    if !read_rooms.is_empty() {
        // The turns' news gets a head start (the connection is back in the pool meanwhile).
        tokio::time::sleep(TURNS_HEAD_START).await;
        let state = hub.lock();
        for (concert_id, read) in read_rooms {
            if let Some(feed) = state.rooms.get(&concert_id) {
                // Now the whole room: everyone's positions and waits.
                feed.tx.send_if_modified(|current| {
                    // A newer read (a later tick) is not replaced by this one.
                    let same = Arc::ptr_eq(current, &read);
                    if same {
                        *current = Arc::new(RoomSnapshot {
                            stage: Stage::Line,
                            ..(*read).clone()
                        });
                    }
                    same
                });
            }
        }
    }
    Ok(report)
}

/// How long the tickets whose status changed have their room's read to themselves before
/// everyone else's positions and waits are pushed.
const TURNS_HEAD_START: Duration = Duration::from_millis(100);

/// Presence is refreshed a few times per abandon window, and at least every 20 s.
fn presence_interval(abandon_after: Duration) -> Duration {
    (abandon_after / 3).min(Duration::from_secs(20))
}

async fn read_room(
    conn: &mut Conn,
    concert_id: &ConcertId,
    cursor: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<RoomSnapshot> {
    let room = queue_rooms::gauge(conn, concert_id)
        .await?
        .unwrap_or_default();
    let changes = queue_tickets::changed_since(conn, concert_id, cursor)
        .await?
        .into_iter()
        .map(|(id, status, expires_at, seq)| {
            (
                id,
                TicketChange {
                    status,
                    expires_at,
                    seq,
                },
            )
        })
        .collect();
    Ok(RoomSnapshot {
        room,
        now,
        changes: Arc::new(changes),
        stage: Stage::Turns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_is_refreshed_well_inside_the_abandon_window() {
        assert_eq!(
            presence_interval(Duration::from_secs(120)),
            Duration::from_secs(20)
        );
        assert_eq!(
            presence_interval(Duration::from_secs(3)),
            Duration::from_secs(1)
        );
    }
}
