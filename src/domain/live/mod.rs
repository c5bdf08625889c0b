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
//! Fan-out order: a room's read reaches first the subscriptions of tickets whose status changed
//! (each woken alone), and the whole room only a moment later (`Stage`): with thousands
//! watching, the turn that began is pushed before thousands of new positions.
//!
//! "Changed since the last tick" is read with a short lookback: a writer stamps `updated_at`
//! with the time its transaction read, and commits a moment later, so a change can become
//! visible with a stamp slightly older than the previous cursor. Re-reading the last few seconds
//! costs a few rows; feeds keep the last state they published and emit only real differences.
//!
//! Presence: a watched WAITING ticket is never abandoned. The hub refreshes `last_seen_at` of all
//! watched tickets in batched UPDATEs every `QUEUE_ABANDON_AFTER` / 3 (at most 20 s), well
//! inside the abandon window.
//!
//! By job: `hub` holds the feeds; `streams` turns a feed into one
//! subscription's stream; `publish` is the once-per-tick read that fills the feeds and refreshes
//! presence (the queue ticker in `background` calls it).

mod hub;
mod polls;
mod publish;
mod seat_maps;
mod streams;
mod waitlists;

pub use hub::{LiveHub, RoomSnapshot, Stage, TicketChange};
pub use polls::{poll, require_turn};
pub use publish::{LiveTickReport, publish_changes};
pub use seat_maps::seat_map;
pub use streams::{watch_seats, watch_stats, watch_ticket};
pub use waitlists::watch_waitlist;
