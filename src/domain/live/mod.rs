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
//!
//! By job: this module holds the hub and its feeds; `streams` turns a feed into one
//! subscription's stream; `publish` is the once-per-tick read that fills the feeds and refreshes
//! presence (the queue ticker in `background` calls it).

mod polls;
mod publish;
mod seat_maps;
mod streams;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use tokio::sync::{broadcast, watch};

use crate::db::ids::{ConcertId, QueueToken, SeatNumber, TicketId};
use crate::domain::catalog::{Seat, SeatStatus};
use crate::domain::queue::stats::QueueStats;
use crate::domain::queue::{RoomGauge, TicketStatus};

pub use polls::{poll, require_turn};
pub use publish::{LiveTickReport, publish_changes};
pub use seat_maps::seat_map;
pub use streams::{watch_seats, watch_stats, watch_ticket};

/// How far back each tick re-reads changes (see the module doc).
const LOOKBACK: TimeDelta = TimeDelta::seconds(2);

/// Seat changes buffered per date for a slow subscriber; 50 seats make lag unlikely.
const SEAT_FEED_CAPACITY: usize = 1024;

/// One instance's live feeds. Cheap to share; all methods are synchronous and short.
#[derive(Default)]
pub struct LiveHub {
    state: Mutex<HubState>,
    /// Set when this instance runs the live tick: only then can polls be answered from memory
    /// (the tick is what keeps remembered tickets current).
    serves_polls: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct HubState {
    rooms: HashMap<ConcertId, RoomFeed>,
    /// Operators' room statistics, read once per tick per room while someone watches.
    stats: HashMap<ConcertId, watch::Sender<Option<Arc<QueueStats>>>>,
    dates: HashMap<(ConcertId, NaiveDate), SeatFeed>,
    /// Watched ticket id -> number of open subscriptions on it.
    watched: HashMap<TicketId, usize>,
    last_presence: Option<Instant>,
    /// Tickets `queueTicket` polls are answered for from memory (`polls`), and their tokens.
    polled: HashMap<TicketId, polls::Polled>,
    polled_tokens: HashMap<QueueToken, TicketId>,
}

impl HubState {
    fn subscribers(&self) -> usize {
        let rooms: usize = self.rooms.values().map(|f| f.tx.receiver_count()).sum();
        let dates: usize = self.dates.values().map(|f| f.tx.receiver_count()).sum();
        let stats: usize = self.stats.values().map(|f| f.receiver_count()).sum();
        rooms + dates + stats
    }
}

struct RoomFeed {
    tx: watch::Sender<Arc<RoomSnapshot>>,
    cursor: NaiveDateTime,
}

struct SeatFeed {
    tx: broadcast::Sender<Seat>,
    known: HashMap<SeatNumber, SeatStatus>,
    /// Each seat's price and tier, as read when the feed started (they do not change).
    faces: HashMap<SeatNumber, (crate::domain::money::Money, String)>,
    cursor: NaiveDateTime,
    /// When a seat-map read was last answered from this feed (`seat_maps`).
    read_at: Option<Instant>,
}

impl SeatFeed {
    fn new(now: NaiveDateTime, baseline: &[Seat]) -> Self {
        Self {
            tx: broadcast::Sender::new(SEAT_FEED_CAPACITY),
            known: baseline.iter().map(|s| (s.number, s.status)).collect(),
            faces: baseline
                .iter()
                .map(|s| (s.number, (s.price.clone(), s.tier.clone())))
                .collect(),
            cursor: now - LOOKBACK,
            read_at: None,
        }
    }
}

/// What every subscriber of a room needs, read once per tick.
#[derive(Debug, Default)]
pub struct RoomSnapshot {
    pub room: RoomGauge,
    pub now: NaiveDateTime,
    /// Tickets of the room whose status changed recently.
    pub changes: HashMap<TicketId, TicketChange>,
}

#[derive(Debug, Clone)]
pub struct TicketChange {
    pub status: TicketStatus,
    pub expires_at: Option<NaiveDateTime>,
    /// The ticket's place (a pre-queued ticket gets one at the draw).
    pub seq: i64,
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

    /// Called by the owner of the live tick when it starts it.
    pub fn start_serving_polls(&self) {
        self.serves_polls
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn serves_polls(&self) -> bool {
        self.serves_polls.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn room_receiver(
        &self,
        concert_id: &ConcertId,
        now: NaiveDateTime,
    ) -> watch::Receiver<Arc<RoomSnapshot>> {
        let mut state = self.lock();
        let feed = state
            .rooms
            .entry(concert_id.clone())
            .or_insert_with(|| RoomFeed {
                tx: watch::Sender::new(Arc::new(RoomSnapshot::default())),
                cursor: now - LOOKBACK,
            });
        let mut rx = feed.tx.subscribe();
        rx.mark_unchanged();
        rx
    }

    fn watch_ticket(self: &Arc<Self>, ticket_id: &TicketId) -> PresenceGuard {
        *self.lock().watched.entry(ticket_id.clone()).or_default() += 1;
        PresenceGuard {
            hub: Arc::clone(self),
            ticket_id: ticket_id.clone(),
        }
    }
}

/// Keeps a ticket on the presence list while its subscription is open.
struct PresenceGuard {
    hub: Arc<LiveHub>,
    ticket_id: TicketId,
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
