//! The waiting room's front door: entries are written in batches, one transaction per batch.
//!
//! Every new ticket moves its room's `issued` counter, so entries written one per transaction
//! queue on the room row and on one commit each. The [`EntryDesk`] gathers each room's entries on
//! this instance and writes them together ([`write_batch`]): lock the room, find who already
//! holds a live ticket, give everyone else consecutive sequence numbers in the order they reached
//! the desk (one multi-row insert, one counter update, one commit). It is group commit: a room's
//! first entry starts a batch at once (an entry alone waits for nothing), and entries that arrive
//! while a batch is being written make up the next one, up to `QUEUE_ENTRY_BATCH`. Order stays
//! exact (by arrival at the desk, and across instances by the commit order of their batches,
//! which the room lock serialises), and a position stays `seq - admitted_seq - 1`.
//!
//! A batch runs in a task the desk owns (awaited on shutdown), not in any fan's request: a fan
//! who hangs up mid-batch leaves the batch whole, and the ticket written for them is the one
//! their next `enterQueue` returns.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use tokio::sync::{Notify, oneshot};
use tokio_util::task::TaskTracker;

use super::admission::{Line, Stepped, step};
use super::challenge::{self, Answer};
use super::room::{Door, lock_room_with_sale};
use super::{QueueTicket, TicketStatus, Trigger, view};
use crate::db::ids::{ConcertId, QueueToken, TicketId, UserId};
use crate::db::models::{QueueRoomRow, QueueTicketRow};
use crate::db::{Conn, queue_challenges, queue_rooms, queue_tickets, sales};
use crate::domain::error::{Error, Result};
use crate::domain::services::Services;

/// A poll or a refresh writes `last_seen_at` at most this often.
pub(super) const PRESENCE_WRITE_EVERY: TimeDelta = TimeDelta::seconds(5);

/// One fan at the door.
#[derive(Debug, Clone)]
pub struct Entry {
    pub user: UserId,
    /// Their proof of work, when the room asks for one.
    pub answer: Option<Answer>,
}

struct Entrant {
    entry: Entry,
    reply: oneshot::Sender<Result<QueueTicket>>,
}

/// This instance's front door of every waiting room.
pub struct EntryDesk {
    /// Entries waiting for their room's next batch; a room is here while its batches run.
    rooms: Mutex<HashMap<ConcertId, Vec<Entrant>>>,
    /// Told of every entry that joins a line already being written.
    arrivals: Notify,
    batches: TaskTracker,
    batch: usize,
    backlog: usize,
}

impl EntryDesk {
    /// A desk writing at most `batch` entries per transaction and keeping at most `backlog`
    /// waiting per room (more are refused with SERVICE_UNAVAILABLE at once).
    pub fn new(batch: usize, backlog: usize) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            arrivals: Notify::new(),
            batches: TaskTracker::new(),
            batch: batch.max(1),
            backlog: backlog.max(1),
        }
    }

    /// Waits until the batches running finish (each ends once its room's line is empty), at most
    /// `limit`. Called on shutdown, after the requests that feed the desk have ended.
    pub async fn drain(&self, limit: Duration) {
        self.batches.close();
        if tokio::time::timeout(limit, self.batches.wait())
            .await
            .is_err()
        {
            tracing::warn!("entry batches still running at shutdown; they roll back whole");
        }
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<ConcertId, Vec<Entrant>>> {
        // The map stays consistent whatever panicked while holding it: every change is one call.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Puts `entry` in its room's next batch and waits for the ticket written for it.
pub(super) async fn enter(
    services: &Services,
    concert: &ConcertId,
    entry: Entry,
) -> Result<QueueTicket> {
    let desk = &services.entries;
    let (reply, answer) = oneshot::channel();
    let starts_batches = {
        let mut rooms = desk.rooms();
        match rooms.entry(concert.clone()) {
            Slot::Occupied(mut line) => {
                if line.get().len() >= desk.backlog {
                    metrics::counter!("queue_entries_refused_total").increment(1);
                    return Err(Error::Overloaded {
                        what: "the waiting room's door is crowded; try again in a moment",
                        retry_after: Duration::from_secs(1),
                    });
                }
                line.get_mut().push(Entrant { entry, reply });
                desk.arrivals.notify_waiters();
                false
            }
            Slot::Vacant(slot) => {
                slot.insert(vec![Entrant { entry, reply }]);
                true
            }
        }
    };
    if starts_batches {
        desk.batches
            .spawn(write_batches(services.clone(), concert.clone()));
    }
    answer
        .await
        .unwrap_or_else(|_| Err(Error::Internal(anyhow::anyhow!("entry batch was lost"))))
}

/// Writes the room's batches until its line is empty, then leaves the room to the next entrant.
async fn write_batches(services: Services, concert: ConcertId) {
    let mut turn = RoomTurn {
        desk: &services.entries,
        concert: &concert,
        done: false,
    };
    // The crowd the last batch served: its entries and those already waiting when it ended.
    let mut crowd = 0;
    loop {
        gather(turn.desk, &concert, crowd).await;
        let batch: Vec<Entrant> = {
            let mut rooms = turn.desk.rooms();
            let Some(line) = rooms.get_mut(&concert) else {
                break;
            };
            if line.is_empty() {
                rooms.remove(&concert);
                break;
            }
            let n = line.len().min(turn.desk.batch);
            // Fans who hung up before their batch began are not written.
            line.drain(..n).filter(|e| !e.reply.is_closed()).collect()
        };
        if batch.is_empty() {
            continue;
        }
        let written = batch.len();
        let entries: Vec<Entry> = batch.iter().map(|e| e.entry.clone()).collect();
        let written_batch = write_batch(&services, &concert, &entries).await;
        // Counted before anyone is answered, so none of them is counted twice.
        crowd = written + turn.desk.rooms().get(&concert).map_or(0, Vec::len);
        match written_batch {
            Ok(tickets) => {
                for (entrant, ticket) in batch.into_iter().zip(tickets) {
                    let _ = entrant.reply.send(ticket);
                }
            }
            Err(err) => {
                let err = std::sync::Arc::new(err);
                for entrant in batch {
                    let _ = entrant.reply.send(Err(Error::Shared(err.clone())));
                }
            }
        }
    }
    turn.done = true;
}

/// How long a busy room's next batch waits for the fans of the last one to come back.
const LINGER: Duration = Duration::from_millis(1);

/// Under load, fans answered by one batch send their next request while the next batch is being
/// written, so a room's crowd splits into two halves that take turns, each batch writing half
/// of it. After a batch of several, the next one waits up to [`LINGER`] until the whole `crowd`
/// of the last one (its entries and those already waiting when it ended) is in line again (a
/// batch of one waits for nothing): each commit, which holds the room, then carries all of them.
/// Group commit, with the batch as the group.
async fn gather(desk: &EntryDesk, concert: &ConcertId, crowd: usize) {
    if crowd < 2 {
        return;
    }
    let target = crowd.min(desk.batch);
    let deadline = tokio::time::Instant::now() + LINGER;
    loop {
        let arrival = desk.arrivals.notified();
        tokio::pin!(arrival);
        arrival.as_mut().enable();
        let waiting = desk.rooms().get(concert).map_or(0, Vec::len);
        if waiting >= target {
            return;
        }
        if tokio::time::timeout_at(deadline, arrival).await.is_err() {
            return;
        }
    }
}

/// Frees the room if its batches stop without emptying the line (a panic): the entrants left
/// get an error, and the next one starts batches again.
struct RoomTurn<'a> {
    desk: &'a EntryDesk,
    concert: &'a ConcertId,
    done: bool,
}

impl Drop for RoomTurn<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.desk.rooms().remove(self.concert);
        }
    }
}

/// What the batch decided for one entry before sequence numbers are given.
enum Verdict {
    Refused(Error),
    Live(QueueTicketRow),
    /// Same fan twice in one batch: their first entry's ticket.
    SameAs(usize),
    New(Option<(String, NaiveDateTime)>),
}

/// Writes `entries` for the room in one transaction and returns each one's ticket (or why it was
/// refused), in order. The bench calls it with one entry as the one-ticket-per-transaction
/// baseline.
pub async fn write_batch(
    services: &Services,
    concert: &ConcertId,
    entries: &[Entry],
) -> Result<Vec<Result<QueueTicket>>> {
    let rules = &services.rules;
    let home = services.db.room_home(concert);
    let (outcomes, gauge, now, stepped) = transaction!(home, async |conn: &mut Conn| {
        // The room lock comes first: every read after it sees every batch committed before.
        let (room, sale, now) = lock_room_with_sale(conn, concert).await?;
        let door = Door::of(sale.as_ref(), now);
        let mut verdicts = judge(conn, services, &room, concert, entries, now).await?;
        // A scheduled sale not open yet refuses new entries (a fan's live ticket is kept).
        if let Some(refusal) = door.refusal() {
            let refusal = std::sync::Arc::new(refusal);
            for verdict in &mut verdicts {
                if matches!(verdict, Verdict::New(_) | Verdict::SameAs(_)) {
                    *verdict = Verdict::Refused(Error::Shared(refusal.clone()));
                }
            }
        }

        let mut new_rows: Vec<QueueTicketRow> = Vec::new();
        let mut spent = Vec::new();
        let mut touched = Vec::new();
        let mut outcomes: Vec<Result<QueueTicketRow>> = Vec::with_capacity(entries.len());
        for (entry, verdict) in entries.iter().zip(verdicts) {
            outcomes.push(match verdict {
                Verdict::Refused(err) => Err(err),
                Verdict::Live(row) => {
                    if row.status == TicketStatus::Waiting
                        && now - row.last_seen_at >= PRESENCE_WRITE_EVERY
                    {
                        touched.push(row.id.clone());
                    }
                    Ok(row)
                }
                // Only a fresh entry is followed, and only a spent challenge refuses it later.
                Verdict::SameAs(i) => match &outcomes[i] {
                    Ok(row) => Ok(row.clone()),
                    Err(_) => Err(challenge::used_already()),
                },
                Verdict::New(challenge) => {
                    spent.extend(challenge);
                    let k = new_rows.len() as i64;
                    let row = match door {
                        // A pre-queue entry's placeholder: -1, -2, ... until the draw.
                        Door::Prequeue { prequeued } => QueueTicketRow {
                            status: TicketStatus::Prequeued,
                            ..new_ticket(entry, concert, -(prequeued + 1 + k), now)
                        },
                        _ => new_ticket(entry, concert, room.issued + 1 + k, now),
                    };
                    new_rows.push(row.clone());
                    Ok(row)
                }
            });
        }
        queue_challenges::spend_all(conn, &spent).await?;
        queue_tickets::insert_all(conn, &new_rows).await?;
        if !touched.is_empty() {
            queue_tickets::touch(conn, &touched).await?;
        }
        // The batch stands at the head of an idle room: the step the ticker runs admits it now,
        // in this transaction (the room is locked already), from the rows just written, and
        // writes the room's new count with its own. A room with a line keeps its order: the
        // ticker admits the line first.
        let at_head = matches!(door, Door::Open)
            && new_rows
                .first()
                .is_some_and(|row| row.seq == room.admitted_seq + 1);
        match (&door, new_rows.last()) {
            (_, None) => {}
            (Door::Prequeue { prequeued }, Some(_)) => {
                sales::set_prequeued(conn, concert, prequeued + new_rows.len() as i64).await?;
            }
            (_, Some(last)) if !at_head => {
                queue_rooms::set_issued(conn, concert, last.seq).await?;
            }
            (_, Some(_)) => {}
        }
        let Some(last) = new_rows.last().filter(|_| at_head) else {
            return Ok((outcomes, room.gauge(), now, None));
        };
        let room = QueueRoomRow {
            issued: last.seq,
            ..room
        };
        let stepped = step(
            conn,
            rules,
            &room,
            now,
            Trigger::Entry,
            Line::Fresh(&new_rows),
        )
        .await?;
        let Stepped {
            report,
            room,
            admitted,
            expires_at,
        } = stepped;
        Ok((outcomes, room, now, Some((report, admitted, expires_at))))
    })
    .await?;
    let written = outcomes.iter().filter(|o| o.is_ok()).count();
    metrics::counter!("queue_entries_total").increment(written as u64);
    metrics::histogram!("queue_entry_batch_size").record(entries.len() as f64);

    // The tickets the batch's own step admitted, and their deadline.
    let (admitted, expires_at): (HashSet<TicketId>, _) = match stepped {
        Some((report, admitted, expires_at)) => {
            report.count();
            (admitted.into_iter().collect(), Some(expires_at))
        }
        None => (HashSet::new(), None),
    };
    Ok(outcomes
        .into_iter()
        .map(|o| {
            o.map(|mut row| {
                if admitted.contains(&row.id) {
                    row.status = TicketStatus::Active;
                    row.activated_at = Some(now);
                    row.expires_at = expires_at;
                }
                view(&row, &gauge, now, rules)
            })
        })
        .collect())
}

/// Decides every entry with two reads for the whole batch: which users exist with the live
/// tickets they hold, and (when the room asks for proofs of work) which were spent before.
async fn judge(
    conn: &mut Conn,
    services: &Services,
    room: &QueueRoomRow,
    concert: &ConcertId,
    entries: &[Entry],
    now: NaiveDateTime,
) -> Result<Vec<Verdict>> {
    let mut people: Vec<UserId> = entries.iter().map(|e| e.user.clone()).collect();
    people.sort();
    people.dedup();
    let (known, tickets) = queue_tickets::unfinished_of(conn, &people, concert).await?;
    let known: HashSet<UserId> = known.into_iter().collect();
    let mut live: HashMap<UserId, QueueTicketRow> = HashMap::new();
    // Newest first: a fan's first live ticket found is the one kept.
    for row in tickets {
        let is_live = matches!(row.status, TicketStatus::Waiting | TicketStatus::Prequeued)
            || row.expires_at.is_some_and(|at| at > now);
        if is_live && !live.contains_key(&row.user_id) {
            live.insert(row.user_id.clone(), row);
        }
    }

    let required = services.challenges.required(room.pow_difficulty);
    let mut first_entry: HashMap<&UserId, usize> = HashMap::new();
    let mut verdicts = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let verdict = if !known.contains(&entry.user) {
            Verdict::Refused(Error::Unauthenticated("unknown user".into()))
        } else if let Some(row) = live.get(&entry.user) {
            Verdict::Live(row.clone())
        } else if let Some(&first) = first_entry.get(&entry.user) {
            Verdict::SameAs(first)
        } else {
            match challenge::verify(
                &services.challenges,
                entry.answer.as_ref(),
                &entry.user,
                concert,
                required,
            ) {
                Ok(spend) => {
                    first_entry.insert(&entry.user, i);
                    Verdict::New(spend)
                }
                Err(err) => Verdict::Refused(err),
            }
        };
        verdicts.push(verdict);
    }

    // A proof of work spent before, or twice in this batch, is refused.
    let ids: Vec<String> = verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::New(Some((id, _))) => Some(id.clone()),
            _ => None,
        })
        .collect();
    let mut spent: HashSet<String> = queue_challenges::spent_among(conn, &ids)
        .await?
        .into_iter()
        .collect();
    for verdict in &mut verdicts {
        if let Verdict::New(Some((id, _))) = verdict
            && !spent.insert(id.clone())
        {
            *verdict = Verdict::Refused(challenge::used_already());
        }
    }
    Ok(verdicts)
}

fn new_ticket(entry: &Entry, concert: &ConcertId, seq: i64, now: NaiveDateTime) -> QueueTicketRow {
    QueueTicketRow {
        id: TicketId::new(),
        token: QueueToken::new(),
        user_id: entry.user.clone(),
        concert_id: concert.clone(),
        seq,
        status: TicketStatus::Waiting,
        last_seen_at: now,
        activated_at: None,
        expires_at: None,
        created_at: now,
        updated_at: now,
    }
}
