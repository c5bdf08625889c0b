//! Live updates: the fan-out behind the `queueTicket` and `seatUpdates` subscriptions.
//!
//! Cost model: database work per tick must not grow with the number of subscribers. Each
//! instance keeps one feed per watched concert room (a `watch` channel holding the latest room
//! snapshot) and one per watched concert date (a `broadcast` of seat changes). Once per tick, the
//! instance reads the database clock, then for every watched room the admission counter and the
//! tickets changed since the last tick, and for every watched date the seats changed since the
//! last tick (plus holds that lapsed since, which change status without a write). Every
//! subscriber derives its own view from the shared snapshot in memory.
//!
//! "Changed since the last tick" is read with a short lookback: a writer stamps `updated_at`
//! with the time its transaction read, and commits a moment later, so a change can become
//! visible with a stamp slightly older than the previous cursor. Re-reading the last few seconds
//! costs a few rows; feeds keep the last state they published and emit only real differences.
//!
//! Presence: a watched WAITING ticket is never abandoned. The hub refreshes `last_seen_at` of all
//! watched tickets with one batched UPDATE every few seconds, well inside the abandon window.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bigdecimal::BigDecimal;
use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use futures_util::{Stream, StreamExt};
use tokio::sync::{broadcast, watch};
use tokio_stream::wrappers::BroadcastStream;

use super::Services;
use super::catalog::{self, EFFECTIVE_SEAT_STATUS, Seat, SeatStatus};
use super::error::Result;
use super::money::Money;
use super::queue::{self, QueueStatus, QueueTicket, TicketStatus};
use crate::db::models::QueueTicketRow;
use crate::db::schema::{queue_rooms, queue_tickets, seats};
use crate::db::{self, Conn};

/// How far back each tick re-reads changes (see the module doc).
const LOOKBACK: TimeDelta = TimeDelta::seconds(2);
/// Seat changes buffered per date for a slow subscriber; 50 seats make lag unlikely.
const SEAT_FEED_CAPACITY: usize = 1024;
/// Watched tickets refreshed per presence statement.
const PRESENCE_CHUNK: usize = 5000;

/// One instance's live feeds. Cheap to share; all methods are synchronous and short.
#[derive(Default)]
pub struct LiveHub {
    state: Mutex<HubState>,
}

#[derive(Default)]
struct HubState {
    rooms: HashMap<String, RoomFeed>,
    dates: HashMap<(String, NaiveDate), SeatFeed>,
    /// Watched ticket id -> number of open subscriptions on it.
    watched: HashMap<String, usize>,
    last_presence: Option<Instant>,
}

impl HubState {
    fn subscribers(&self) -> usize {
        let rooms: usize = self.rooms.values().map(|f| f.tx.receiver_count()).sum();
        let dates: usize = self.dates.values().map(|f| f.tx.receiver_count()).sum();
        rooms + dates
    }
}

struct RoomFeed {
    tx: watch::Sender<Arc<RoomSnapshot>>,
    cursor: NaiveDateTime,
}

struct SeatFeed {
    tx: broadcast::Sender<Seat>,
    known: HashMap<i32, SeatStatus>,
    cursor: NaiveDateTime,
}

/// What every subscriber of a room needs, read once per tick.
#[derive(Debug, Default)]
pub struct RoomSnapshot {
    pub admitted_seq: i64,
    pub now: NaiveDateTime,
    /// Tickets of the room whose status changed recently.
    pub changes: HashMap<String, TicketChange>,
}

#[derive(Debug, Clone)]
pub struct TicketChange {
    pub status: TicketStatus,
    pub expires_at: Option<NaiveDateTime>,
}

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

impl LiveHub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding this lock cannot leave the maps inconsistent (every update is a
        // single insert/remove), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Open subscriptions on this instance.
    pub fn subscribers(&self) -> usize {
        self.lock().subscribers()
    }

    fn room_receiver(
        &self,
        concert_id: &str,
        now: NaiveDateTime,
    ) -> watch::Receiver<Arc<RoomSnapshot>> {
        let mut state = self.lock();
        let feed = state
            .rooms
            .entry(concert_id.to_owned())
            .or_insert_with(|| RoomFeed {
                tx: watch::Sender::new(Arc::new(RoomSnapshot::default())),
                cursor: now - LOOKBACK,
            });
        let mut rx = feed.tx.subscribe();
        rx.mark_unchanged();
        rx
    }

    fn watch_ticket(self: &Arc<Self>, ticket_id: &str) -> PresenceGuard {
        *self.lock().watched.entry(ticket_id.to_owned()).or_default() += 1;
        PresenceGuard {
            hub: Arc::clone(self),
            ticket_id: ticket_id.to_owned(),
        }
    }
}

/// Keeps a ticket on the presence list while its subscription is open.
struct PresenceGuard {
    hub: Arc<LiveHub>,
    ticket_id: String,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        let mut state = self.hub.lock();
        if let Some(n) = state.watched.get_mut(&self.ticket_id) {
            *n -= 1;
            if *n == 0 {
                state.watched.remove(&self.ticket_id);
            }
        }
    }
}

/// The `queueTicket` subscription: the ticket now, then every change of status, position or
/// estimated wait; ends after EXPIRED or COMPLETED.
pub async fn watch_ticket(
    services: &Services,
    token: &str,
    user_id: Option<&str>,
) -> Result<impl Stream<Item = QueueTicket> + Send + 'static + use<>> {
    let (row, admitted_seq, now) = with_conn!(services.db, async |conn: &mut Conn| {
        let (row, admitted_seq, now) = queue::find_by_token(conn, token).await?;
        queue::check_owner(&row, user_id)?;
        queue::touch(conn, &row, now).await?;
        Ok((row, admitted_seq, now))
    })
    .await?;
    let rules = Arc::clone(&services.rules);
    let first = queue::view(&row, admitted_seq, now, &rules);
    let rx = services.live.room_receiver(&row.concert_id, now);
    let presence = services.live.watch_ticket(&row.id);
    metrics::counter!("live_ticket_subscriptions_total").increment(1);

    let done = is_final(first.status);
    let state = TicketWatch {
        row,
        rx,
        rules,
        last: first.clone(),
        done,
        _presence: presence,
    };
    let rest = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            s.rx.changed().await.ok()?;
            let snapshot = Arc::clone(&s.rx.borrow_and_update());
            if let Some(change) = snapshot.changes.get(&s.row.id) {
                s.row.status = change.status;
                s.row.expires_at = change.expires_at;
            }
            let next = queue::view(&s.row, snapshot.admitted_seq, snapshot.now, &s.rules);
            if differs(&next, &s.last) {
                s.done = is_final(next.status);
                s.last = next.clone();
                return Some((next, s));
            }
        }
    });
    Ok(futures_util::stream::once(async move { first }).chain(rest))
}

struct TicketWatch {
    row: QueueTicketRow,
    rx: watch::Receiver<Arc<RoomSnapshot>>,
    rules: Arc<crate::config::Rules>,
    last: QueueTicket,
    done: bool,
    _presence: PresenceGuard,
}

fn is_final(status: QueueStatus) -> bool {
    matches!(status, QueueStatus::Expired | QueueStatus::Completed)
}

fn differs(a: &QueueTicket, b: &QueueTicket) -> bool {
    a.status != b.status
        || a.position != b.position
        || a.estimated_wait_seconds != b.estimated_wait_seconds
}

/// The `seatUpdates` subscription: each seat of the date whose status changes.
pub async fn watch_seats(
    services: &Services,
    concert_id: &str,
    date: NaiveDate,
) -> Result<impl Stream<Item = Seat> + Send + 'static + use<>> {
    let key = (concert_id.to_owned(), date);
    let existing = services
        .live
        .lock()
        .dates
        .get(&key)
        .map(|f| f.tx.subscribe());
    let rx = match existing {
        Some(rx) => rx,
        None => {
            // First watcher of this date on this instance: the feed starts from the current map,
            // read once here, so no change between now and the next tick is missed.
            let (now, baseline) = with_conn!(services.db, async |conn: &mut Conn| {
                let now = db::now(conn).await?;
                Ok((now, catalog::seat_map(conn, concert_id, date).await?))
            })
            .await?;
            let mut state = services.live.lock();
            let feed = state.dates.entry(key).or_insert_with(|| SeatFeed {
                tx: broadcast::Sender::new(SEAT_FEED_CAPACITY),
                known: baseline.iter().map(|s| (s.number, s.status)).collect(),
                cursor: now - LOOKBACK,
            });
            feed.tx.subscribe()
        }
    };
    metrics::counter!("live_seat_subscriptions_total").increment(1);
    Ok(BroadcastStream::new(rx).filter_map(|seat| async move { seat.ok() }))
}

/// One live tick for this instance: read each watched room and date once, publish, refresh
/// presence when due.
pub async fn publish_changes(services: &Services) -> Result<LiveTickReport> {
    let hub = &services.live;
    let presence_every = presence_interval(services.rules.queue_abandon_after);
    let (rooms, dates, presence, subscribers) = {
        let mut state = hub.lock();
        state.rooms.retain(|_, f| f.tx.receiver_count() > 0);
        state.dates.retain(|_, f| f.tx.receiver_count() > 0);
        let rooms: Vec<(String, NaiveDateTime)> = state
            .rooms
            .iter()
            .map(|(k, f)| (k.clone(), f.cursor))
            .collect();
        let dates: Vec<((String, NaiveDate), NaiveDateTime)> = state
            .dates
            .iter()
            .map(|(k, f)| (k.clone(), f.cursor))
            .collect();
        let due = state
            .last_presence
            .is_none_or(|at| at.elapsed() >= presence_every);
        let presence: Vec<String> = if due && !state.watched.is_empty() {
            state.last_presence = Some(Instant::now());
            state.watched.keys().cloned().collect()
        } else {
            Vec::new()
        };
        (rooms, dates, presence, state.subscribers())
    };
    metrics::gauge!("live_subscribers").set(subscribers as f64);
    if rooms.is_empty() && dates.is_empty() {
        return Ok(LiveTickReport::default());
    }

    let before = services.db.statements.get();
    with_conn!(services.db, async |conn: &mut Conn| {
        let now = db::now(conn).await?;
        for (concert_id, cursor) in &rooms {
            let snapshot = read_room(conn, concert_id, *cursor, now).await?;
            if let Some(feed) = hub.lock().rooms.get_mut(concert_id) {
                feed.tx.send_replace(Arc::new(snapshot));
                feed.cursor = now - LOOKBACK;
            }
        }
        for (key, cursor) in &dates {
            let changed = read_seat_changes(conn, &key.0, key.1, *cursor, now).await?;
            if let Some(feed) = hub.lock().dates.get_mut(key) {
                for seat in changed {
                    if feed.known.get(&seat.number) != Some(&seat.status) {
                        feed.known.insert(seat.number, seat.status);
                        // No receiver left is fine: the feed is pruned next tick.
                        let _ = feed.tx.send(seat);
                    }
                }
                feed.cursor = now - LOOKBACK;
            }
        }
        for chunk in presence.chunks(PRESENCE_CHUNK) {
            diesel::update(queue_tickets::table.filter(queue_tickets::id.eq_any(chunk)))
                .filter(queue_tickets::status.eq(TicketStatus::Waiting))
                .set(queue_tickets::last_seen_at.eq(db::utc_now()))
                .execute(conn)
                .await?;
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
    .await
}

/// Presence is refreshed a few times per abandon window, and at least every 20 s.
fn presence_interval(abandon_after: Duration) -> Duration {
    (abandon_after / 3).min(Duration::from_secs(20))
}

async fn read_room(
    conn: &mut Conn,
    concert_id: &str,
    cursor: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<RoomSnapshot> {
    let admitted_seq: i64 = queue_rooms::table
        .find(concert_id)
        .select(queue_rooms::admitted_seq)
        .first(conn)
        .await
        .optional()?
        .unwrap_or_default();
    let rows: Vec<(String, TicketStatus, Option<NaiveDateTime>)> = queue_tickets::table
        .filter(queue_tickets::concert_id.eq(concert_id))
        .filter(queue_tickets::updated_at.gt(cursor))
        .select((
            queue_tickets::id,
            queue_tickets::status,
            queue_tickets::expires_at,
        ))
        .load(conn)
        .await?;
    let changes = rows
        .into_iter()
        .map(|(id, status, expires_at)| (id, TicketChange { status, expires_at }))
        .collect();
    Ok(RoomSnapshot {
        admitted_seq,
        now,
        changes,
    })
}

/// Seats of one date written since `cursor`, or whose hold lapsed since then (those change
/// status without a write).
async fn read_seat_changes(
    conn: &mut Conn,
    concert_id: &str,
    date: NaiveDate,
    cursor: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Vec<Seat>> {
    let rows: Vec<(i16, SeatStatus, BigDecimal)> = seats::table
        .filter(seats::concert_id.eq(concert_id))
        .filter(seats::date.eq(date))
        .filter(
            seats::updated_at.gt(cursor).or(seats::status
                .eq(SeatStatus::Held)
                .and(seats::held_until.assume_not_null().gt(cursor))
                .and(seats::held_until.assume_not_null().le(now))),
        )
        .select((
            seats::number,
            sql::<Text>(EFFECTIVE_SEAT_STATUS),
            seats::price,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(number, status, price)| Seat {
            number: number.into(),
            status,
            price: Money::from_stored(price),
        })
        .collect())
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

    #[test]
    fn only_status_position_or_wait_changes_are_sent() {
        let t = QueueTicket {
            token: "t".into(),
            concert_id: "c".into(),
            user_id: "u".into(),
            status: QueueStatus::Waiting,
            position: 3,
            estimated_wait_seconds: 1,
            expires_at: None,
        };
        assert!(!differs(&t, &t.clone()));
        assert!(differs(
            &QueueTicket {
                position: 2,
                ..t.clone()
            },
            &t
        ));
        assert!(differs(
            &QueueTicket {
                status: QueueStatus::Active,
                ..t.clone()
            },
            &t
        ));
        assert!(is_final(QueueStatus::Completed) && is_final(QueueStatus::Expired));
        assert!(!is_final(QueueStatus::Active));
    }
}
