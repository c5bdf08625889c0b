//! One subscription's stream over the hub's feeds: `queueTicket` (the ticket now, then each change
//! of what its holder sees) and `seatUpdates` (each seat of a date whose status changes).

use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, NaiveDateTime};
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

use super::hub::{PresenceGuard, RoomSnapshot, SeatFeed, Stage};

/// The `queueTicket` subscription: the ticket now, then every change of status, position, pause
/// or expected admission moment (see [`differs`]); ends after EXPIRED or COMPLETED.
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
        last: (first.clone(), now),
        done,
        presence,
    };
    let rest = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            tokio::select! {
                biased;
                () = s.presence.turn.notified() => {}
                changed = s.rx.changed() => changed.ok()?,
            }
            let snapshot = Arc::clone(&s.rx.borrow_and_update());
            let change = snapshot.changes.get(&s.row.id);
            if snapshot.stage == Stage::Turns && change.is_none_or(|c| c.status == s.row.status) {
                // Not this ticket's news: it acts when the line's stage follows.
                continue;
            }
            if let Some(change) = change {
                s.row.status = change.status;
                s.row.expires_at = change.expires_at;
                s.row.seq = change.seq;
            }
            let next = queue::view(&s.row, &snapshot.room, snapshot.now, &s.rules);
            if differs((&next, snapshot.now), (&s.last.0, s.last.1)) {
                s.done = is_final(next.status);
                s.last = (next.clone(), snapshot.now);
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
    /// The ticket last sent, and the database clock it was read at.
    last: (QueueTicket, NaiveDateTime),
    done: bool,
    /// Keeps the ticket's presence fresh, and wakes the stream when its status changes.
    presence: PresenceGuard,
}

fn is_final(status: QueueStatus) -> bool {
    matches!(status, QueueStatus::Expired | QueueStatus::Completed)
}

/// Within this many of the front a fan hears of every step of the line.
const NEAR_THE_FRONT: i64 = 100;
/// Further back, a new position is news once it moved a twentieth of the way, or this long after
/// the last push.
const POSITION_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// Whether `next` tells its holder something `last` did not (each with the clock it was read
/// at): a new status or pause; a new position near the front, or far back once it moved a
/// twentieth of the way or [`POSITION_EVERY`] passed; or an expected admission moment (read
/// time plus the estimated wait) that moved by more than two seconds or a tenth of the wait. A
/// wait that counts down with the clock is no news (a client counts it down itself), and a line
/// of 19,000 is not pushed 19,000 new positions every tick: the turn of the one admitted would
/// queue behind them.
fn differs(next: (&QueueTicket, NaiveDateTime), last: (&QueueTicket, NaiveDateTime)) -> bool {
    let ((a, a_at), (b, b_at)) = (next, last);
    let moment = |t: &QueueTicket, at: NaiveDateTime| {
        at.and_utc().timestamp_millis() + t.estimated_wait_seconds.saturating_mul(1000)
    };
    // Only a wait has a moment: an ACTIVE (or any other) ticket read again later is no news.
    let waiting = a.status == QueueStatus::Waiting && b.status == QueueStatus::Waiting;
    let moved = if waiting {
        (moment(a, a_at) - moment(b, b_at)).abs()
    } else {
        0
    };
    let tolerance = (a.estimated_wait_seconds.saturating_mul(100)).max(2000);
    let position = a.position != b.position
        && (a.position < NEAR_THE_FRONT
            || (b.position - a.position).abs().saturating_mul(20) >= b.position
            || a_at - b_at >= POSITION_EVERY);
    a.status != b.status || a.paused != b.paused || position || moved > tolerance
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
    fn only_status_position_pause_or_a_moved_admission_moment_is_sent() {
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
        let at = |secs| {
            chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
                .and_then(|d| d.and_hms_opt(12, 0, secs))
                .expect("valid time")
        };
        let wait = |secs| QueueTicket {
            estimated_wait_seconds: secs,
            ..t.clone()
        };
        assert!(!differs((&t, at(0)), (&t, at(0))));
        assert!(differs(
            (
                &QueueTicket {
                    position: 2,
                    ..t.clone()
                },
                at(0)
            ),
            (&t, at(0))
        ));
        assert!(differs(
            (
                &QueueTicket {
                    status: QueueStatus::Active,
                    ..t.clone()
                },
                at(0)
            ),
            (&t, at(0))
        ));
        // 60 s to wait, read 10 s later as 50 s: the same moment, nothing to send.
        assert!(!differs((&wait(50), at(10)), (&wait(60), at(0))));
        // Read as 55 s: the moment moved 5 s, within a tenth of the wait.
        assert!(!differs((&wait(55), at(10)), (&wait(60), at(0))));
        // Read as 62 s: 12 s later than promised.
        assert!(differs((&wait(62), at(10)), (&wait(60), at(0))));
        // Far back, one step is news only after a while or a twentieth of the way.
        let far = |position, secs| QueueTicket {
            position,
            estimated_wait_seconds: secs,
            ..t.clone()
        };
        assert!(!differs((&far(999, 99), at(1)), (&far(1000, 100), at(0))));
        assert!(differs((&far(950, 95), at(1)), (&far(1000, 100), at(0))));
        assert!(differs((&far(999, 95), at(5)), (&far(1000, 100), at(0))));
        // A turn read again later is the same turn (its wait is 0 whenever it is read).
        let active = QueueTicket {
            status: QueueStatus::Active,
            position: 0,
            estimated_wait_seconds: 0,
            ..t.clone()
        };
        assert!(!differs((&active, at(30)), (&active, at(0))));
        // Short waits move by two seconds before it is news.
        assert!(!differs((&wait(4), at(1)), (&wait(3), at(0))));
        assert!(differs((&wait(6), at(1)), (&wait(3), at(0))));
        assert!(is_final(QueueStatus::Completed) && is_final(QueueStatus::Expired));
        assert!(!is_final(QueueStatus::Active));
    }
}
