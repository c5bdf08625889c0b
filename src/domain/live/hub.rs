//! The hub of one instance's live feeds: a `watch` of the latest snapshot per watched room, a
//! `broadcast` of seat changes per watched date, the tickets watched for presence and the tickets
//! remembered for polls (see the module doc of `live`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use tokio::sync::{Notify, broadcast, watch};

use crate::db::ids::{ConcertId, QueueToken, SeatNumber, TicketId, UserId};
use crate::db::models::{QueueTicketRow, WaitlistEntryRow};
use crate::db::states::WaitlistStatus;
use crate::domain::catalog::{Seat, SeatStatus};
use crate::domain::queue::stats::QueueStats;
use crate::domain::queue::{RoomGauge, TicketStatus};

/// How far back each tick re-reads changes (see the module doc).
pub(super) const LOOKBACK: TimeDelta = TimeDelta::seconds(2);

/// Seat changes buffered per date for a slow subscriber; 50 seats make lag unlikely.
pub(super) const SEAT_FEED_CAPACITY: usize = 1024;

/// One instance's live feeds. Cheap to share; all methods are synchronous and short.
#[derive(Default)]
pub struct LiveHub {
    pub(super) state: Mutex<HubState>,
    /// Set when this instance runs the live tick: only then can polls be answered from memory
    /// (the tick is what keeps remembered tickets current).
    pub(super) serves_polls: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
pub(super) struct HubState {
    pub(super) rooms: HashMap<ConcertId, RoomFeed>,
    /// Operators' room statistics, read once per tick per room while someone watches.
    pub(super) stats: HashMap<ConcertId, watch::Sender<Option<Arc<QueueStats>>>>,
    pub(super) dates: HashMap<(ConcertId, NaiveDate), SeatFeed>,
    /// Tickets with an open `queueTicket` subscription on this instance.
    pub(super) watched: HashMap<TicketId, Watched>,
    pub(super) last_presence: Option<Instant>,
    /// Tickets `queueTicket` polls are answered for from memory (`polls`), and their tokens.
    pub(super) polled: HashMap<TicketId, Polled>,
    pub(super) polled_tokens: HashMap<QueueToken, TicketId>,
    /// Waitlisted fans watching their entries (`myWaitlist`), and where the tick reads from.
    pub(super) waitlists: HashMap<UserId, watch::Sender<Arc<WaitlistSnapshot>>>,
    pub(super) waitlist_cursor: Option<NaiveDateTime>,
}

/// A waitlisted fan's entries as last read, each with its date's served mark (positions).
pub(super) type WaitlistSnapshot = Vec<(WaitlistEntryRow, WaitlistStatus, i64)>;

impl HubState {
    pub(super) fn subscribers(&self) -> usize {
        let rooms: usize = self.rooms.values().map(|f| f.tx.receiver_count()).sum();
        let dates: usize = self.dates.values().map(|f| f.tx.receiver_count()).sum();
        let stats: usize = self.stats.values().map(|f| f.receiver_count()).sum();
        let waitlists: usize = self.waitlists.values().map(|f| f.receiver_count()).sum();
        rooms + dates + stats + waitlists
    }
}

/// A ticket's open subscriptions: how the tick wakes just them when the ticket's status changed
/// (see [`Stage`]). One `Notify` per subscription, so one busy when woken keeps the permit.
#[derive(Default)]
pub(super) struct Watched {
    pub(super) turns: Vec<Arc<Notify>>,
}

pub(super) struct RoomFeed {
    pub(super) tx: watch::Sender<Arc<RoomSnapshot>>,
    pub(super) cursor: NaiveDateTime,
}

pub(super) struct SeatFeed {
    pub(super) tx: broadcast::Sender<Seat>,
    pub(super) known: HashMap<SeatNumber, SeatStatus>,
    /// Each seat's price, tier and row, as read when the feed started (they do not change).
    pub(super) faces: HashMap<SeatNumber, (crate::domain::money::Money, String, i16)>,
    pub(super) cursor: NaiveDateTime,
    /// When a seat-map read was last answered from this feed (`seat_maps`).
    pub(super) read_at: Option<Instant>,
    /// Seats this instance changed itself, and when: a tick whose read began earlier does not
    /// undo them.
    pub(super) noted: HashMap<SeatNumber, Instant>,
}

impl SeatFeed {
    pub(super) fn new(now: NaiveDateTime, baseline: &[Seat]) -> Self {
        Self {
            tx: broadcast::Sender::new(SEAT_FEED_CAPACITY),
            known: baseline.iter().map(|s| (s.number, s.status)).collect(),
            faces: baseline
                .iter()
                .map(|s| (s.number, (s.price.clone(), s.tier.clone(), s.row)))
                .collect(),
            cursor: now - LOOKBACK,
            read_at: None,
            noted: HashMap::new(),
        }
    }
}

/// What every subscriber of a room needs, read once per tick.
#[derive(Debug, Default, Clone)]
pub struct RoomSnapshot {
    pub room: RoomGauge,
    pub now: NaiveDateTime,
    /// Tickets of the room whose status changed recently.
    pub changes: Arc<HashMap<TicketId, TicketChange>>,
    pub stage: Stage,
}

/// Who acts on a snapshot. Each tick publishes a room's read twice: first, without waking the
/// room, to the tickets whose status changed (a turn that began or ended; each woken by its own
/// [`Watched::turn`]), then to everyone (positions and waits), so the few pushes a fan must not
/// wait for are not queued behind thousands of position updates.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Only tickets whose status changed act on it.
    Turns,
    /// Every ticket of the room acts on it.
    #[default]
    Line,
}

#[derive(Debug, Clone)]
pub struct TicketChange {
    pub status: TicketStatus,
    pub expires_at: Option<NaiveDateTime>,
    /// The ticket's place (a pre-queued ticket gets one at the draw).
    pub seq: i64,
}

impl LiveHub {
    pub(super) fn lock(&self) -> MutexGuard<'_, HubState> {
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

    pub(super) fn serves_polls(&self) -> bool {
        self.serves_polls.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn room_receiver(
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

    /// Seats this instance has just changed (a hold, a release, a payment, a refund committed):
    /// its seat maps and seat feeds show them at once, so a fan reads their own writes; other
    /// instances learn them at their next tick.
    pub fn note_seats(
        &self,
        concert_id: &ConcertId,
        date: NaiveDate,
        numbers: &[SeatNumber],
        status: SeatStatus,
    ) {
        let mut state = self.lock();
        let Some(feed) = state.dates.get_mut(&(concert_id.clone(), date)) else {
            return;
        };
        let at = Instant::now();
        for number in numbers {
            feed.noted.insert(*number, at);
            if feed.known.get(number) != Some(&status) {
                feed.known.insert(*number, status);
                if let Some((price, tier, row)) = feed.faces.get(number) {
                    let _ = feed.tx.send(Seat {
                        number: *number,
                        status,
                        price: price.clone(),
                        tier: tier.clone(),
                        row: *row,
                    });
                }
            }
        }
    }

    pub(super) fn watch_ticket(self: &Arc<Self>, ticket_id: &TicketId) -> PresenceGuard {
        let turn = Arc::new(Notify::new());
        let mut state = self.lock();
        let watched = state.watched.entry(ticket_id.clone()).or_default();
        watched.turns.push(Arc::clone(&turn));
        PresenceGuard {
            hub: Arc::clone(self),
            ticket_id: ticket_id.clone(),
            turn,
        }
    }
}

/// Keeps a ticket on the presence list while its subscription is open.
pub(super) struct PresenceGuard {
    pub(super) hub: Arc<LiveHub>,
    pub(super) ticket_id: TicketId,
    /// Woken when a tick reads a new status of the ticket.
    pub(super) turn: Arc<Notify>,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        let mut state = self.hub.lock();
        if let Some(watched) = state.watched.get_mut(&self.ticket_id) {
            watched.turns.retain(|turn| !Arc::ptr_eq(turn, &self.turn));
            if watched.turns.is_empty() {
                state.watched.remove(&self.ticket_id);
            }
        }
    }
}

/// A ticket answered from memory.
pub(super) struct Polled {
    pub(super) row: QueueTicketRow,
    /// The room's gauge and the clock when the ticket was read, until a tick brings newer.
    pub(super) seen_room: RoomGauge,
    pub(super) seen_now: NaiveDateTime,
    /// Keeps the room's feed alive, and gives its latest snapshot.
    pub(super) room: watch::Receiver<Arc<RoomSnapshot>>,
    pub(super) last_poll: Instant,
}

impl Polled {
    /// The room's gauge and clock to judge the ticket by: the newer of what its read saw and
    /// what the last tick saw.
    pub(super) fn room_now(&self) -> (RoomGauge, NaiveDateTime) {
        let snapshot = Arc::clone(&self.room.borrow());
        if snapshot.now > self.seen_now {
            (snapshot.room.clone(), snapshot.now)
        } else {
            (self.seen_room.clone(), self.seen_now)
        }
    }
}
