//! One subscription's stream over the hub's feeds: `queueTicket` (the ticket now, then each change
//! of what its holder sees) and `seatUpdates` (each seat of a date whose status changes).

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use futures_util::{Stream, StreamExt};
use tokio::sync::watch;
use tokio_stream::wrappers::BroadcastStream;

use crate::db::ids::{ConcertId, QueueToken, UserId};
use crate::db::models::QueueTicketRow;
use crate::db::{self, Conn};
use crate::domain::catalog::{self, Seat};
use crate::domain::error::Result;
use crate::domain::queue::stats::QueueStats;
use crate::domain::queue::{self, QueueStatus, QueueTicket};
use crate::domain::services::Services;

use super::hub::{PresenceGuard, RoomSnapshot, SeatFeed};

/// The `queueTicket` subscription: the ticket now, then every change of status, position or
/// estimated wait; ends after EXPIRED or COMPLETED.
pub async fn watch_ticket(
    services: &Services,
    token: &QueueToken,
    user_id: Option<&UserId>,
) -> Result<impl Stream<Item = QueueTicket> + Send + 'static + use<>> {
    let (row, room, now) = with_conn!(services.db, async |conn: &mut Conn| {
        queue::read_for_holder(conn, token, user_id).await
    })
    .await?;
    let rules = Arc::clone(&services.rules);
    let first = queue::view(&row, &room, now, &rules);
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
                s.row.seq = change.seq;
            }
            let next = queue::view(&s.row, &snapshot.room, snapshot.now, &s.rules);
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
    rules: Arc<crate::domain::rules::Rules>,
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
        || a.paused != b.paused
}

/// The `queueStats` subscription (operators): the room's statistics now, then once per tick.
pub async fn watch_stats(
    services: &Services,
    operator: &UserId,
    concert_id: &ConcertId,
) -> Result<impl Stream<Item = Arc<QueueStats>> + Send + 'static + use<>> {
    queue::stats::check_watcher(services, operator, concert_id).await?;
    let mut rx = {
        let mut state = services.live.lock();
        state
            .stats
            .entry(concert_id.clone())
            .or_insert_with(|| watch::Sender::new(None))
            .subscribe()
    };
    // The first watcher on this instance reads at once rather than wait for the tick.
    if rx.borrow().is_none() {
        let read = with_conn!(services.db, async |conn: &mut Conn| {
            queue::stats::read(conn, concert_id, &services.rules).await
        })
        .await?;
        if let Some(feed) = services.live.lock().stats.get(concert_id) {
            feed.send_if_modified(|current| {
                let empty = current.is_none();
                if empty {
                    *current = Some(Arc::new(read));
                }
                empty
            });
        }
    }
    rx.mark_changed();
    let watcher = StatsWatch {
        rx,
        services: services.clone(),
        operator: operator.clone(),
        concert: concert_id.clone(),
        checked_at: Instant::now(),
    };
    Ok(futures_util::stream::unfold(watcher, |mut w| async move {
        loop {
            w.rx.changed().await.ok()?;
            // The role is checked again now and then: a role taken away ends the stream.
            if w.checked_at.elapsed() >= ROLE_RECHECK {
                queue::stats::check_watcher(&w.services, &w.operator, &w.concert)
                    .await
                    .ok()?;
                w.checked_at = Instant::now();
            }
            let latest = w.rx.borrow_and_update().clone();
            if let Some(stats) = latest {
                return Some((stats, w));
            }
        }
    }))
}

/// How often an open `queueStats` subscription checks that its operator still is one.
const ROLE_RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

struct StatsWatch {
    rx: watch::Receiver<Option<Arc<QueueStats>>>,
    services: Services,
    operator: UserId,
    concert: ConcertId,
    checked_at: Instant,
}

/// The `seatUpdates` subscription: each seat of the date whose status changes.
pub async fn watch_seats(
    services: &Services,
    concert_id: &ConcertId,
    date: NaiveDate,
) -> Result<impl Stream<Item = Seat> + Send + 'static + use<>> {
    let key = (concert_id.clone(), date);
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
            let feed = state
                .dates
                .entry(key)
                .or_insert_with(|| SeatFeed::new(now, &baseline));
            feed.tx.subscribe()
        }
    };
    metrics::counter!("live_seat_subscriptions_total").increment(1);
    Ok(BroadcastStream::new(rx).filter_map(|seat| async move { seat.ok() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_status_position_or_wait_changes_are_sent() {
        let t = QueueTicket {
            id: crate::db::ids::TicketId::new(),
            token: QueueToken::new(),
            concert_id: ConcertId::new(),
            user_id: UserId::new(),
            status: QueueStatus::Waiting,
            position: 3,
            estimated_wait_seconds: 1,
            admission_rate: 10.0,
            paused: false,
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
