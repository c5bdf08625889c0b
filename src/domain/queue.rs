//! The virtual waiting room.
//!
//! Each concert has one room (`queue_rooms`) with two counters: `issued`, the last sequence number
//! handed out, and `admitted_seq`, how far admission has walked. A waiting ticket's position is
//! `seq - admitted_seq - 1`: one row read, no scan, and it can only fall because `admitted_seq`
//! only grows.
//!
//! Admission ([`advance`]) locks the room row, so however many instances run it, one at a time
//! acts on a room. Its pace is a GCRA on the database clock: the room's `admit_clock` moves
//! forward `1/rate` seconds per admission and may lag `now` by at most one second, so no more than
//! `rate` tickets are admitted per second (plus a one-second burst) across all instances. The
//! number of ACTIVE tickets never exceeds the limit because it is counted under the same lock.
//! Tickets whose owner stopped polling are marked ABANDONED when admission reaches them, so people
//! who left never stall the line.

use base64::Engine;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

use super::accounts::lock_user;
use super::catalog::ensure_concert;
use super::error::{Error, Result};
use super::{Services, chrono_duration, new_id, utc};
use crate::config::Rules;
use crate::db::models::{QueueRoomRow, QueueTicketRow};
use crate::db::schema::{queue_rooms, queue_tickets};
use crate::db::{self, Conn};

pub use crate::db::states::TicketStatus;

/// A ticket's status as its holder sees it: an ACTIVE ticket past its deadline and an
/// ABANDONED one both read EXPIRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueStatus {
    Waiting,
    Active,
    Expired,
    Completed,
}

#[derive(Debug, Clone)]
pub struct QueueTicket {
    pub token: String,
    pub concert_id: String,
    pub user_id: String,
    pub status: QueueStatus,
    /// People ahead; 0 unless waiting.
    pub position: i64,
    pub estimated_wait_seconds: i64,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What one admission step did, for logs, metrics and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AdmissionReport {
    pub admitted: usize,
    pub abandoned: usize,
    pub expired: usize,
    pub skipped: bool,
}

/// Tickets looked at per batch, and batches per step: bounds one step's work however long the
/// line of abandoned tickets at its head.
const WALK_BATCH: i64 = 256;
const WALK_BATCHES: usize = 8;

/// A poll refreshes `last_seen_at` at most this often, so polling costs a write only now and then.
const PRESENCE_WRITE_EVERY: TimeDelta = TimeDelta::seconds(5);

/// `queue_rooms.admitted_seq` of the ticket's room, as a column of the ticket query.
const ROOM_ADMITTED_SEQ: &str =
    "(SELECT r.admitted_seq FROM queue_rooms r WHERE r.concert_id = queue_tickets.concert_id)";

/// Joins the concert's queue, or returns the caller's live ticket for it (a refresh never loses
/// one's place). A ticket at the head of an idle room is admitted at once.
pub async fn enter(services: &Services, user_id: &str, concert_id: &str) -> Result<QueueTicket> {
    with_conn!(services.db, async |conn: &mut Conn| ensure_concert(
        conn, concert_id
    )
    .await)
    .await?;
    let (ticket_id, at_head) = transaction!(services.db, async |conn: &mut Conn| {
        lock_user(conn, user_id).await?;
        let now = db::now(conn).await?;
        if let Some(live) = live_ticket(conn, user_id, concert_id, now).await? {
            touch(conn, &live, now).await?;
            return Ok((live.id, false));
        }
        // Lock the existing room straight away: INSERT IGNORE on an existing row takes a shared
        // lock first, and N entries upgrading shared locks together deadlock.
        let room = match lock_room(conn, concert_id).await? {
            Some(room) => room,
            None => {
                diesel::insert_or_ignore_into(queue_rooms::table)
                    .values(queue_rooms::concert_id.eq(concert_id))
                    .execute(conn)
                    .await?;
                lock_room(conn, concert_id)
                    .await?
                    .ok_or_else(|| Error::corrupt("room vanished"))?
            }
        };
        let seq = room.issued + 1;
        diesel::update(queue_rooms::table.find(concert_id))
            .set(queue_rooms::issued.eq(seq))
            .execute(conn)
            .await?;
        let row = QueueTicketRow {
            id: new_id(),
            token: new_token(),
            user_id: user_id.to_owned(),
            concert_id: concert_id.to_owned(),
            seq,
            status: TicketStatus::Waiting,
            last_seen_at: now,
            activated_at: None,
            expires_at: None,
            created_at: now,
            updated_at: now,
        };
        diesel::insert_into(queue_tickets::table)
            .values(&row)
            .execute(conn)
            .await?;
        Ok((row.id, seq == room.admitted_seq + 1))
    })
    .await?;
    metrics::counter!("queue_entries_total").increment(1);

    if at_head {
        // Same step the ticker runs; a failure here only delays admission to the next tick.
        if let Err(err) = advance(services, concert_id, Trigger::Entry).await {
            tracing::warn!(error = ?err, concert_id, "admission after enterQueue failed");
        }
    }
    with_conn!(services.db, async |conn: &mut Conn| {
        let (row, admitted_seq, now) = queue_tickets::table
            .find(&ticket_id)
            .select((
                QueueTicketRow::as_select(),
                sql::<BigInt>(ROOM_ADMITTED_SEQ),
                db::utc_now(),
            ))
            .first::<(QueueTicketRow, i64, NaiveDateTime)>(conn)
            .await?;
        Ok(view(&row, admitted_seq, now, &services.rules))
    })
    .await
}

/// The ticket behind a queue token, as its holder polls it. Polling counts as presence.
pub async fn poll(services: &Services, token: &str, user_id: Option<&str>) -> Result<QueueTicket> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let (row, admitted_seq, now) = find_by_token(conn, token).await?;
        check_owner(&row, user_id)?;
        touch(conn, &row, now).await?;
        Ok(view(&row, admitted_seq, now, &services.rules))
    })
    .await
}

/// Checks that `token` names a ticket (of `user_id`, when given); used when a websocket connects.
pub async fn check_token(services: &Services, token: &str, user_id: Option<&str>) -> Result<()> {
    with_conn!(services.db, async |conn: &mut Conn| {
        let (row, _, _) = find_by_token(conn, token).await?;
        check_owner(&row, user_id)
    })
    .await
}

/// Checks that `token` is an ACTIVE, unexpired ticket for `concert_id` (and, when the caller is
/// signed in, that it is theirs). Guards the seat map, holds and payment.
pub async fn require_active(
    services: &Services,
    token: Option<&str>,
    concert_id: &str,
    user_id: Option<&str>,
) -> Result<()> {
    let token = token
        .ok_or_else(|| Error::not_admitted("a Queue-Token header is required; call enterQueue"))?;
    with_conn!(services.db, async |conn: &mut Conn| {
        let (row, admitted_seq, now) = find_by_token(conn, token).await?;
        check_admitted(
            &row,
            admitted_seq,
            now,
            concert_id,
            user_id,
            &services.rules,
        )
    })
    .await
}

/// Inside a transaction: locks the ticket and checks it as [`require_active`] does. Taken last in
/// the lock order (user, seat, reservation, queue ticket).
pub(crate) async fn lock_active(
    conn: &mut Conn,
    token: &str,
    concert_id: &str,
    user_id: &str,
    rules: &Rules,
) -> Result<QueueTicketRow> {
    check_token_shape(token)?;
    let (row, admitted_seq, now) = queue_tickets::table
        .filter(queue_tickets::token.eq(token))
        .select((
            QueueTicketRow::as_select(),
            sql::<BigInt>(ROOM_ADMITTED_SEQ),
            db::utc_now(),
        ))
        .for_update()
        .first::<(QueueTicketRow, i64, NaiveDateTime)>(conn)
        .await
        .optional()?
        .ok_or_else(unknown_token)?;
    check_admitted(&row, admitted_seq, now, concert_id, Some(user_id), rules)?;
    Ok(row)
}

/// A successful payment ends the ticket's turn and frees its slot at once.
pub(crate) async fn complete(conn: &mut Conn, ticket_id: &str, now: NaiveDateTime) -> Result<()> {
    diesel::update(queue_tickets::table.find(ticket_id))
        .set((
            queue_tickets::status.eq(TicketStatus::Completed),
            queue_tickets::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Who asks for an admission step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An instance's ticker: skipped when another instance already stepped this room within
    /// half a tick, so N instances do not make N steps per tick.
    Ticker,
    /// A fan entering an idle room at its head: always steps, so they are admitted at once.
    Entry,
}

/// One admission step for one room: expire lapsed ACTIVE tickets, skip abandoned ones, admit as
/// many waiting tickets as the rate and the active limit allow.
pub async fn advance(
    services: &Services,
    concert_id: &str,
    trigger: Trigger,
) -> Result<AdmissionReport> {
    let rules = &services.rules;
    let report = transaction!(services.db, async |conn: &mut Conn| {
        let Some(room) = lock_room(conn, concert_id).await? else {
            return Ok(AdmissionReport::default());
        };
        let now = db::now(conn).await?;
        let half_tick = chrono_duration(rules.queue_tick) / 2;
        if trigger == Trigger::Ticker && room.last_tick_at.is_some_and(|t| now - t < half_tick) {
            return Ok(AdmissionReport {
                skipped: true,
                ..Default::default()
            });
        }

        let expired = diesel::update(queue_tickets::table)
            .filter(queue_tickets::concert_id.eq(concert_id))
            .filter(queue_tickets::status.eq(TicketStatus::Active))
            .filter(queue_tickets::expires_at.le(now))
            .set((
                queue_tickets::status.eq(TicketStatus::Expired),
                queue_tickets::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        let active: i64 = queue_tickets::table
            .filter(queue_tickets::concert_id.eq(concert_id))
            .filter(queue_tickets::status.eq(TicketStatus::Active))
            .count()
            .get_result(conn)
            .await?;

        let pace = Pace::new(rules.queue_admit_per_sec);
        let clock = pace.clock(room.admit_clock, now);
        let slots = pace
            .budget(clock, now)
            .min(i64::from(rules.queue_active_limit) - active)
            .max(0);

        let stale_before = now - chrono_duration(rules.queue_abandon_after);
        let mut cursor = room.admitted_seq;
        let mut admitted: Vec<String> = Vec::new();
        let mut abandoned: Vec<String> = Vec::new();
        'walk: for _ in 0..WALK_BATCHES {
            if cursor >= room.issued {
                break;
            }
            let batch: Vec<(String, i64, TicketStatus, NaiveDateTime)> = queue_tickets::table
                .filter(queue_tickets::concert_id.eq(concert_id))
                .filter(queue_tickets::seq.gt(cursor))
                .order(queue_tickets::seq.asc())
                .limit(WALK_BATCH)
                .select((
                    queue_tickets::id,
                    queue_tickets::seq,
                    queue_tickets::status,
                    queue_tickets::last_seen_at,
                ))
                .for_update()
                .load(conn)
                .await?;
            if batch.is_empty() {
                break;
            }
            for (id, seq, status, last_seen_at) in batch {
                if status != TicketStatus::Waiting {
                    cursor = seq;
                } else if last_seen_at < stale_before {
                    abandoned.push(id);
                    cursor = seq;
                } else if (admitted.len() as i64) < slots {
                    admitted.push(id);
                    cursor = seq;
                } else {
                    break 'walk;
                }
            }
        }

        if !admitted.is_empty() {
            let expires_at = now + chrono_duration(rules.queue_active_ttl);
            diesel::update(queue_tickets::table.filter(queue_tickets::id.eq_any(&admitted)))
                .set((
                    queue_tickets::status.eq(TicketStatus::Active),
                    queue_tickets::activated_at.eq(now),
                    queue_tickets::expires_at.eq(expires_at),
                    queue_tickets::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
        }
        if !abandoned.is_empty() {
            diesel::update(queue_tickets::table.filter(queue_tickets::id.eq_any(&abandoned)))
                .set((
                    queue_tickets::status.eq(TicketStatus::Abandoned),
                    queue_tickets::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
        }
        diesel::update(queue_rooms::table.find(concert_id))
            .set((
                queue_rooms::admitted_seq.eq(cursor),
                queue_rooms::admit_clock.eq(pace.after(clock, admitted.len())),
                // Only a ticker round claims the tick: an inline step after enterQueue must not
                // make the next round skip.
                queue_rooms::last_tick_at.eq(if trigger == Trigger::Ticker {
                    Some(now)
                } else {
                    room.last_tick_at
                }),
            ))
            .execute(conn)
            .await?;
        Ok(AdmissionReport {
            admitted: admitted.len(),
            abandoned: abandoned.len(),
            expired,
            skipped: false,
        })
    })
    .await?;
    metrics::counter!("queue_admitted_total").increment(report.admitted as u64);
    metrics::counter!("queue_abandoned_total").increment(report.abandoned as u64);
    Ok(report)
}

/// One ticker round: an admission step for every room with someone waiting.
pub async fn admission_round(services: &Services) -> Result<Vec<(String, AdmissionReport)>> {
    let rooms: Vec<String> = with_conn!(services.db, async |conn: &mut Conn| {
        Ok(queue_rooms::table
            .filter(queue_rooms::issued.gt(queue_rooms::admitted_seq))
            .select(queue_rooms::concert_id)
            .load(conn)
            .await?)
    })
    .await?;
    let mut reports = Vec::with_capacity(rooms.len());
    for concert_id in rooms {
        // One room's failure must not stall admission in the others.
        match advance(services, &concert_id, Trigger::Ticker).await {
            Ok(report) => reports.push((concert_id, report)),
            Err(err) => tracing::warn!(error = ?err, concert_id, "admission step failed"),
        }
    }
    Ok(reports)
}

/// The admission rate as a GCRA: `clock` is the time up to which admissions have been "spent".
struct Pace {
    interval: TimeDelta,
    burst: TimeDelta,
}

impl Pace {
    fn new(per_sec: u32) -> Self {
        let per_sec = i64::from(per_sec.max(1));
        Self {
            interval: TimeDelta::microseconds(1_000_000 / per_sec),
            burst: TimeDelta::seconds(1),
        }
    }

    /// The clock to use now: unused capacity older than one second is forgotten.
    fn clock(&self, stored: Option<NaiveDateTime>, now: NaiveDateTime) -> NaiveDateTime {
        let floor = now - self.burst;
        stored.map_or(floor, |c| c.max(floor))
    }

    /// Admissions allowed now.
    fn budget(&self, clock: NaiveDateTime, now: NaiveDateTime) -> i64 {
        let spare = (now - clock).num_microseconds().unwrap_or(0).max(0);
        spare / self.interval.num_microseconds().unwrap_or(1).max(1)
    }

    fn after(&self, clock: NaiveDateTime, admitted: usize) -> NaiveDateTime {
        clock + self.interval * i32::try_from(admitted).unwrap_or(i32::MAX)
    }
}

pub(crate) async fn find_by_token(
    conn: &mut Conn,
    token: &str,
) -> Result<(QueueTicketRow, i64, NaiveDateTime)> {
    check_token_shape(token)?;
    queue_tickets::table
        .filter(queue_tickets::token.eq(token))
        .select((
            QueueTicketRow::as_select(),
            sql::<BigInt>(ROOM_ADMITTED_SEQ),
            db::utc_now(),
        ))
        .first(conn)
        .await
        .optional()?
        .ok_or_else(unknown_token)
}

async fn live_ticket(
    conn: &mut Conn,
    user_id: &str,
    concert_id: &str,
    now: NaiveDateTime,
) -> Result<Option<QueueTicketRow>> {
    let candidates: Vec<QueueTicketRow> = queue_tickets::table
        .filter(queue_tickets::user_id.eq(user_id))
        .filter(queue_tickets::concert_id.eq(concert_id))
        .filter(queue_tickets::status.eq_any([TicketStatus::Waiting, TicketStatus::Active]))
        .order(queue_tickets::seq.desc())
        .select(QueueTicketRow::as_select())
        .load(conn)
        .await?;
    Ok(candidates
        .into_iter()
        .find(|t| t.status == TicketStatus::Waiting || t.expires_at.is_some_and(|at| at > now)))
}

async fn lock_room(conn: &mut Conn, concert_id: &str) -> Result<Option<QueueRoomRow>> {
    Ok(queue_rooms::table
        .find(concert_id)
        .select(QueueRoomRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// Records presence for a waiting ticket, at most once per [`PRESENCE_WRITE_EVERY`].
pub(crate) async fn touch(conn: &mut Conn, row: &QueueTicketRow, now: NaiveDateTime) -> Result<()> {
    if row.status == TicketStatus::Waiting && now - row.last_seen_at >= PRESENCE_WRITE_EVERY {
        diesel::update(queue_tickets::table.find(&row.id))
            .filter(queue_tickets::status.eq(TicketStatus::Waiting))
            .set(queue_tickets::last_seen_at.eq(db::utc_now()))
            .execute(conn)
            .await?;
    }
    Ok(())
}

pub(crate) fn check_owner(row: &QueueTicketRow, user_id: Option<&str>) -> Result<()> {
    match user_id {
        Some(user) if user != row.user_id => Err(Error::Forbidden(
            "this queue token belongs to another user".into(),
        )),
        _ => Ok(()),
    }
}

fn check_admitted(
    row: &QueueTicketRow,
    admitted_seq: i64,
    now: NaiveDateTime,
    concert_id: &str,
    user_id: Option<&str>,
    rules: &Rules,
) -> Result<()> {
    check_owner(row, user_id)?;
    if row.concert_id != concert_id {
        return Err(Error::not_admitted(
            "this queue token is for another concert",
        ));
    }
    let ticket = view(row, admitted_seq, now, rules);
    match ticket.status {
        QueueStatus::Active => Ok(()),
        QueueStatus::Waiting => Err(Error::not_admitted(format!(
            "still waiting in the queue: {} ahead of you",
            ticket.position
        ))),
        QueueStatus::Expired => Err(Error::not_admitted(
            "your turn has expired; enter the queue again",
        )),
        QueueStatus::Completed => Err(Error::not_admitted(
            "this turn ended with a payment; enter the queue again",
        )),
    }
}

pub(crate) fn view(
    row: &QueueTicketRow,
    admitted_seq: i64,
    now: NaiveDateTime,
    rules: &Rules,
) -> QueueTicket {
    let status = match row.status {
        TicketStatus::Waiting => QueueStatus::Waiting,
        TicketStatus::Active if row.expires_at.is_some_and(|at| at > now) => QueueStatus::Active,
        TicketStatus::Active | TicketStatus::Expired | TicketStatus::Abandoned => {
            QueueStatus::Expired
        }
        TicketStatus::Completed => QueueStatus::Completed,
    };
    let position = if status == QueueStatus::Waiting {
        (row.seq - admitted_seq - 1).max(0)
    } else {
        0
    };
    let estimated_wait_seconds = if status == QueueStatus::Waiting {
        estimated_wait(position, rules.queue_admit_per_sec, rules.queue_tick)
    } else {
        0
    };
    QueueTicket {
        token: row.token.clone(),
        concert_id: row.concert_id.clone(),
        user_id: row.user_id.clone(),
        status,
        position,
        estimated_wait_seconds,
        expires_at: match status {
            QueueStatus::Active => row.expires_at.map(utc),
            _ => None,
        },
    }
}

/// Seconds until a ticket with `position` people ahead is admitted at `per_sec`, rounded up to
/// whole ticks (admission happens on ticks).
fn estimated_wait(position: i64, per_sec: u32, tick: std::time::Duration) -> i64 {
    let per_sec = i64::from(per_sec.max(1));
    let seconds = (position + 1 + per_sec - 1) / per_sec;
    seconds.max(tick.as_secs().max(1) as i64)
}

/// Tokens are 43 URL-safe characters; anything else cannot name a ticket and is refused before
/// it reaches a query (a non-ASCII value would not even compare with the ASCII column).
fn check_token_shape(token: &str) -> Result<()> {
    let well_formed = token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed {
        Ok(())
    } else {
        Err(unknown_token())
    }
}

fn unknown_token() -> Error {
    Error::not_admitted("unknown queue token; call enterQueue")
}

/// 256 random bits, URL-safe: unguessable, and safe in a header.
fn new_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(secs: i64, micros: i64) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 1)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|t| t + TimeDelta::seconds(secs) + TimeDelta::microseconds(micros))
            .expect("valid time")
    }

    #[test]
    fn a_new_room_may_admit_one_second_of_rate() {
        let pace = Pace::new(10);
        let now = at(0, 0);
        let clock = pace.clock(None, now);
        assert_eq!(pace.budget(clock, now), 10);
    }

    #[test]
    fn admissions_spend_the_budget_and_it_refills_with_time() {
        let pace = Pace::new(10);
        let now = at(0, 0);
        let clock = pace.after(pace.clock(None, now), 10);
        assert_eq!(pace.budget(clock, now), 0);
        assert_eq!(
            pace.budget(pace.clock(Some(clock), at(0, 250_000)), at(0, 250_000)),
            2
        );
        // Capacity unused for longer than a second is not banked.
        assert_eq!(
            pace.budget(pace.clock(Some(clock), at(60, 0)), at(60, 0)),
            10
        );
    }

    #[test]
    fn over_any_long_window_admissions_stay_within_rate_plus_one_burst() {
        let pace = Pace::new(7);
        let mut clock = None;
        let mut total = 0;
        // 200 ticks of 100 ms, each admitting everything it may.
        for tick in 0..200 {
            let now = at(0, tick * 100_000);
            let c = pace.clock(clock, now);
            let n = pace.budget(c, now);
            total += n;
            clock = Some(pace.after(c, n as usize));
        }
        // 20 seconds at 7/s, plus the initial one-second burst.
        assert!(total <= 7 * 20 + 7, "admitted {total}");
        assert!(total >= 7 * 19, "admitted only {total}");
    }

    #[test]
    fn waiting_position_is_people_ahead_and_wait_follows_the_rate() {
        let rules = Rules {
            queue_admit_per_sec: 10,
            ..Rules::default()
        };
        let now = at(0, 0);
        let row = QueueTicketRow {
            id: "t".into(),
            token: "tok".into(),
            user_id: "u".into(),
            concert_id: "c".into(),
            seq: 42,
            status: TicketStatus::Waiting,
            last_seen_at: now,
            activated_at: None,
            expires_at: None,
            created_at: now,
            updated_at: now,
        };
        let ticket = view(&row, 20, now, &rules);
        assert_eq!(ticket.status, QueueStatus::Waiting);
        assert_eq!(ticket.position, 21);
        assert_eq!(ticket.estimated_wait_seconds, 3);
        assert_eq!(ticket.expires_at, None);

        let lapsed = QueueTicketRow {
            status: TicketStatus::Active,
            expires_at: Some(now),
            ..row.clone()
        };
        assert_eq!(view(&lapsed, 42, now, &rules).status, QueueStatus::Expired);
        let abandoned = QueueTicketRow {
            status: TicketStatus::Abandoned,
            ..row
        };
        let t = view(&abandoned, 42, now, &rules);
        assert_eq!((t.status, t.position), (QueueStatus::Expired, 0));
    }

    #[test]
    fn tokens_are_43_url_safe_characters_and_differ() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, b);
    }
}
