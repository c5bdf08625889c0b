//! `queueTicket` polls, answered from memory when this instance runs the live tick.
//!
//! The first poll for a ticket reads it from the database (as every poll used to) and remembers
//! it with a receiver on its room's feed, which keeps the room read once per tick. Later polls
//! compute the holder's view from the remembered ticket and the room's latest snapshot: no
//! database round trip. The tick (`publish`) applies the room's ticket changes to remembered
//! tickets, writes presence for those polled since its last presence write, and forgets tickets
//! not polled for two presence intervals. A poll's answer is at most one tick old; nothing is
//! granted from it (holds and payments check the turn under lock).

use std::time::Instant;

use chrono::NaiveDateTime;

use super::hub::{LiveHub, Polled};
use crate::db::Conn;
use crate::db::ids::{QueueToken, TicketId, UserId};
use crate::db::models::QueueTicketRow;
use crate::domain::error::Result;
use crate::domain::queue::{self, QueueTicket, RoomGauge};
use crate::domain::rules::Rules;
use crate::domain::services::Services;

/// Tickets remembered at most; past it a poll is answered from the database and not kept.
const MAX_POLLED: usize = 500_000;

/// The ticket behind a queue token, as its holder polls it. Polling counts as presence.
pub async fn poll(
    services: &Services,
    token: &QueueToken,
    user_id: Option<&UserId>,
) -> Result<QueueTicket> {
    let hub = &services.live;
    if hub.serves_polls()
        && let Some(ticket) = hub.answer_poll(token, user_id, &services.rules)
    {
        metrics::counter!("queue_polls_from_memory_total").increment(1);
        return ticket;
    }
    let (row, room, now) = with_conn!(services.db, async |conn: &mut Conn| {
        queue::read_for_holder(conn, token, user_id).await
    })
    .await?;
    let ticket = queue::view(&row, &room, now, &services.rules);
    if hub.serves_polls() {
        hub.remember_poll(row, room, now);
    }
    Ok(ticket)
}

/// The turn gate of the seat map and its feed, from memory when this instance remembers the
/// ticket (as a poll would answer it, at most one tick old: this gate only guards reads; holds
/// and payments check the turn under lock). Otherwise the database, and the ticket is remembered.
pub async fn require_turn(
    services: &Services,
    token: Option<&QueueToken>,
    concert_id: &crate::db::ids::ConcertId,
    user_id: Option<&UserId>,
) -> Result<()> {
    let hub = &services.live;
    let Some(token) = token else {
        return queue::require_active(services, None, concert_id, user_id).await;
    };
    if hub.serves_polls()
        && let Some(checked) = hub.check_turn(token, concert_id, user_id, &services.rules)
    {
        return checked;
    }
    let (row, room, now) = with_conn!(services.db, async |conn: &mut Conn| {
        queue::find_by_token(conn, token).await
    })
    .await?;
    let checked = queue::check_admitted(&row, &room, now, concert_id, user_id, &services.rules);
    if hub.serves_polls() {
        hub.remember_poll(row, room, now);
    }
    checked
}

impl LiveHub {
    /// [`require_turn`] from a remembered ticket, or None when it is not remembered.
    fn check_turn(
        &self,
        token: &QueueToken,
        concert_id: &crate::db::ids::ConcertId,
        user_id: Option<&UserId>,
        rules: &Rules,
    ) -> Option<Result<()>> {
        let state = self.lock();
        let id = state.polled_tokens.get(token)?;
        let polled = state.polled.get(id)?;
        let (room, now) = polled.room_now();
        Some(queue::check_admitted(
            &polled.row,
            &room,
            now,
            concert_id,
            user_id,
            rules,
        ))
    }

    /// The view of a remembered ticket, or None when this instance does not remember it.
    fn answer_poll(
        &self,
        token: &QueueToken,
        user_id: Option<&UserId>,
        rules: &Rules,
    ) -> Option<Result<QueueTicket>> {
        let mut state = self.lock();
        let id = state.polled_tokens.get(token)?.clone();
        let polled = state.polled.get_mut(&id)?;
        if let Err(e) = queue::check_owner(&polled.row, user_id) {
            return Some(Err(e));
        }
        polled.last_poll = Instant::now();
        let (room, now) = polled.room_now();
        Some(Ok(queue::view(&polled.row, &room, now, rules)))
    }

    fn remember_poll(&self, row: QueueTicketRow, seen_room: RoomGauge, now: NaiveDateTime) {
        let room = self.room_receiver(&row.concert_id, now);
        let mut state = self.lock();
        if state.polled.len() >= MAX_POLLED {
            return;
        }
        state
            .polled_tokens
            .insert(row.token.clone(), row.id.clone());
        state.polled.insert(
            row.id.clone(),
            Polled {
                row,
                seen_room,
                seen_now: now,
                room,
                last_poll: Instant::now(),
            },
        );
    }

    /// Forgets a ticket this instance just changed (a payment completed its turn), so the next
    /// poll reads it again instead of waiting for the tick.
    pub fn forget_poll(&self, token: &QueueToken) {
        let mut state = self.lock();
        if let Some(id) = state.polled_tokens.remove(token) {
            state.polled.remove(&id);
        }
    }
}

/// Tickets polled since `since` (their presence is due), for the tick's presence write.
pub(super) fn polled_since(
    polled: &std::collections::HashMap<TicketId, Polled>,
    since: Option<Instant>,
) -> Vec<TicketId> {
    polled
        .iter()
        .filter(|(_, p)| since.is_none_or(|at| p.last_poll >= at))
        .map(|(id, _)| id.clone())
        .collect()
}
