//! `myWaitlist` pushed: a waitlisted fan's entries at once, then whenever one changes (offered,
//! accepted, lapsed, left) or its position moves. The tick reads the entries written since the
//! last tick (one statement) and the served mark of each date a watcher waits on (one each),
//! whatever the number of watchers; every watcher's view is derived in memory.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use futures_util::Stream;
use tokio::sync::watch;

use super::hub::{LOOKBACK, LiveHub, WaitlistSnapshot};
use crate::db::ids::{ConcertId, UserId};
use crate::db::{self, Conn, waitlist};
use crate::domain::error::Result;
use crate::domain::orders::waitlist::{WaitlistEntry, entry_from};
use crate::domain::services::Services;

/// The `myWaitlist` subscription: the fan's entries now, then after every change.
pub async fn watch_waitlist(
    services: &Services,
    user_id: &UserId,
) -> Result<impl Stream<Item = Vec<WaitlistEntry>> + Send + 'static + use<>> {
    let (snapshot, now) = with_conn!(services.db, async |conn: &mut Conn| {
        let now = db::now(conn).await?;
        Ok((read_user(conn, user_id).await?, now))
    })
    .await?;
    let mut rx = {
        let mut state = services.live.lock();
        if state.waitlist_cursor.is_none() {
            state.waitlist_cursor = Some(now - LOOKBACK);
        }
        let feed = state
            .waitlists
            .entry(user_id.clone())
            .or_insert_with(|| watch::Sender::new(Arc::new(Vec::new())));
        feed.send_replace(Arc::new(snapshot));
        feed.subscribe()
    };
    rx.mark_changed();
    metrics::counter!("live_waitlist_subscriptions_total").increment(1);
    let state = (rx, None::<Vec<WaitlistEntry>>);
    Ok(futures_util::stream::unfold(
        state,
        |(mut rx, last)| async move {
            loop {
                rx.changed().await.ok()?;
                let snapshot = Arc::clone(&rx.borrow_and_update());
                let entries: Vec<WaitlistEntry> = snapshot
                    .iter()
                    .map(|(row, status, served)| entry_from(row.clone(), *status, *served))
                    .collect();
                if last.as_ref().is_some_and(|l| same(l, &entries)) {
                    continue;
                }
                return Some((entries.clone(), (rx, Some(entries))));
            }
        },
    ))
}

fn same(a: &[WaitlistEntry], b: &[WaitlistEntry]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.id == y.id
                && x.status == y.status
                && x.position == y.position
                && x.offer == y.offer
                && x.offer_expires_at == y.offer_expires_at
        })
}

/// The fan's recent entries with their dates' served marks.
async fn read_user(conn: &mut Conn, user_id: &UserId) -> Result<WaitlistSnapshot> {
    let rows = waitlist::of_user(conn, user_id, 50).await?;
    let mut served: HashMap<(ConcertId, NaiveDate), i64> = HashMap::new();
    for (row, _) in &rows {
        if let Entry::Vacant(slot) = served.entry((row.concert_id.clone(), row.date)) {
            let counters = waitlist::counters(conn, &row.concert_id, row.date).await?;
            slot.insert(counters.served);
        }
    }
    Ok(rows
        .into_iter()
        .map(|(row, status)| {
            let mark = served
                .get(&(row.concert_id.clone(), row.date))
                .copied()
                .unwrap_or(0);
            (row, status, mark)
        })
        .collect())
}

/// The tick's part: entries written since the last tick and the served marks of watched dates,
/// folded into every watcher's snapshot. Nothing is read while nobody watches.
pub(super) async fn publish(conn: &mut Conn, hub: &LiveHub, now: NaiveDateTime) -> Result<()> {
    let (cursor, dates) = {
        let mut state = hub.lock();
        state.waitlists.retain(|_, f| f.receiver_count() > 0);
        if state.waitlists.is_empty() {
            state.waitlist_cursor = None;
            return Ok(());
        }
        let dates: HashSet<(ConcertId, NaiveDate)> = state
            .waitlists
            .values()
            .flat_map(|f| {
                f.borrow()
                    .iter()
                    .map(|(row, _, _)| (row.concert_id.clone(), row.date))
                    .collect::<Vec<_>>()
            })
            .collect();
        (state.waitlist_cursor.unwrap_or(now - LOOKBACK), dates)
    };
    let changed = waitlist::changed_since(conn, cursor, now).await?;
    let mut served: HashMap<(ConcertId, NaiveDate), i64> = HashMap::new();
    let mut all_dates = dates;
    all_dates.extend(changed.iter().map(|(r, _)| (r.concert_id.clone(), r.date)));
    for (concert, date) in all_dates {
        let counters = waitlist::counters(conn, &concert, date).await?;
        served.insert((concert, date), counters.served);
    }
    let mut state = hub.lock();
    for (user, feed) in &state.waitlists {
        let current = Arc::clone(&feed.borrow());
        let mut next: WaitlistSnapshot = current.as_ref().clone();
        for (row, status) in changed.iter().filter(|(r, _)| r.user_id == *user) {
            match next.iter_mut().find(|(r, _, _)| r.id == row.id) {
                Some(slot) => {
                    slot.0 = row.clone();
                    slot.1 = *status;
                }
                None => next.insert(0, (row.clone(), *status, 0)),
            }
        }
        for (row, _, mark) in &mut next {
            if let Some(s) = served.get(&(row.concert_id.clone(), row.date)) {
                *mark = *s;
            }
        }
        let moved = next.len() != current.len()
            || next.iter().zip(current.iter()).any(|(a, b)| {
                a.0.id != b.0.id || a.1 != b.1 || a.2 != b.2 || a.0.order_id != b.0.order_id
            });
        if moved {
            feed.send_replace(Arc::new(next));
        }
    }
    state.waitlist_cursor = Some(now - LOOKBACK);
    Ok(())
}
