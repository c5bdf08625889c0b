//! Taking the best free seats (`holdBestAvailable`): the lowest numbers (nearest the stage),
//! and for a group that sits together, adjacent numbers in one row.
//!
//! Best-available choices of one date take turns on the date's row, so each sees what the one
//! before it took and the best blocks are handed out in order (32 fans asking at once get the
//! best blocks, or a clean refusal). Within its turn it reads the free seats and tries blocks
//! best first, each locked with `SKIP LOCKED`: seats a named hold is taking at that moment are
//! skipped, never waited for. An answer of "no block" is given only from a round that skipped
//! nothing (after a few short retries), with the largest block free.

use std::time::Duration;

use chrono::NaiveDate;

use super::Order;
use super::rows::Rows;
use super::take::{self, MAX_SEATS_PER_ORDER, NewOrder, note_held};
use crate::db::ids::{ConcertId, QueueToken, SeatNumber, UserId};
use crate::db::states::OrderSource;
use crate::db::waitlist::RowLock;
use crate::db::{Conn, price_tiers, seats};
use crate::domain::error::{Error, Result, Unavailable};
use crate::domain::queue;
use crate::domain::services::Services;
use crate::domain::time::chrono_duration;

/// Most blocks one round of best available tries under lock.
const MAX_BLOCK_TRIES: usize = 64;

/// Rounds of best available before "no block" is answered while others were taking seats.
const BEST_AVAILABLE_ROUNDS: u32 = 8;

/// What best available is asked for, checked for shape.
#[derive(Debug, Clone)]
pub struct BestRequest {
    pub count: usize,
    pub tier: Option<String>,
    pub together: bool,
}

impl BestRequest {
    pub fn parse(count: i32, tier: Option<String>, together: bool) -> Result<Self> {
        let count = usize::try_from(count)
            .ok()
            .filter(|n| (1..=MAX_SEATS_PER_ORDER).contains(n))
            .ok_or_else(|| {
                Error::bad_input(format!(
                    "count must be 1 to {MAX_SEATS_PER_ORDER}, got {count}"
                ))
            })?;
        let tier = match tier.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) if t.chars().count() > 64 => {
                return Err(Error::bad_input("tier names have at most 64 characters"));
            }
            Some(t) => Some(t.to_owned()),
        };
        Ok(Self {
            count,
            tier,
            together,
        })
    }
}

/// Holds the best `request.count` free seats of `date` (in `request.tier`; side by side in one
/// row when `request.together`) for the caller until `now + HOLD_TTL`.
pub async fn hold_best_available(
    services: &Services,
    user_id: &UserId,
    concert_id: &ConcertId,
    date: NaiveDate,
    request: &BestRequest,
    queue_token: &QueueToken,
) -> Result<Order> {
    let mut round = 0;
    loop {
        round += 1;
        match best_available_round(services, user_id, concert_id, date, request, queue_token).await
        {
            Err(Error::SeatUnavailable(Unavailable::NoBlock {
                largest_block,
                contended: true,
            })) => {
                if round >= BEST_AVAILABLE_ROUNDS {
                    return Err(Error::SeatUnavailable(Unavailable::NoBlock {
                        largest_block,
                        contended: false,
                    }));
                }
                // Others were taking seats: theirs commit within milliseconds.
                let pause = 5 + rand::random::<u64>() % (10 * u64::from(round));
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Ok(order) => {
                metrics::counter!("holds_taken_total").increment(order.seats.len() as u64);
                note_held(services, &order);
                return Ok(order);
            }
            Err(other) => return Err(other),
        }
    }
}

async fn best_available_round(
    services: &Services,
    user_id: &UserId,
    concert_id: &ConcertId,
    date: NaiveDate,
    request: &BestRequest,
    queue_token: &QueueToken,
) -> Result<Order> {
    let rules = &services.rules;
    let home = services.db.room_home(concert_id);
    transaction!(home, async |conn: &mut Conn| {
        let (terms, now) = take::begin(conn, user_id, concert_id, date, RowLock::Exclusive).await?;
        take::check_share(
            conn,
            rules,
            &terms,
            user_id,
            concert_id,
            date,
            request.count,
            now,
        )
        .await?;
        if let Some(tier) = &request.tier
            && !price_tiers::has_name(conn, concert_id, tier).await?
        {
            return Err(Error::bad_input(format!(
                "this concert has no tier named {tier:?}"
            )));
        }
        let free = seats::free_numbers(conn, concert_id, date, request.tier.as_deref()).await?;
        let rows = terms.rows;
        let chosen = if request.together {
            lock_best_block(conn, concert_id, date, rows, &free, request.count).await?
        } else {
            lock_lowest(
                conn,
                concert_id,
                date,
                request.tier.as_deref(),
                &free,
                request.count,
            )
            .await?
        };
        let numbers = match chosen {
            Ok(numbers) => numbers,
            Err(contended) => {
                return Err(Error::SeatUnavailable(Unavailable::NoBlock {
                    largest_block: if request.together {
                        rows.largest_block(&free)
                    } else {
                        free.len()
                    },
                    contended,
                }));
            }
        };
        let taken = take::take_order(
            conn,
            NewOrder {
                user_id,
                concert_id,
                date,
                numbers: &numbers,
                source: OrderSource::Turn,
                held_until: now + chrono_duration(rules.hold_ttl),
                now,
            },
        )
        .await?;
        // Locked by this transaction and free: no update can miss.
        let written = taken.map_err(|i| {
            Error::corrupt(format!("seat {} locked free but not taken", numbers[i]))
        })?;
        queue::lock_active(conn, queue_token, concert_id, user_id, rules).await?;
        Ok(written)
    })
    .await
}

/// The first block (best first) this transaction could lock whole; Err(true) when none, but
/// some were skipped because others held them at that moment.
async fn lock_best_block(
    conn: &mut Conn,
    concert_id: &ConcertId,
    date: NaiveDate,
    rows: Rows,
    free: &[SeatNumber],
    count: usize,
) -> Result<Result<Vec<SeatNumber>, bool>> {
    let mut contended = false;
    let mut skip_through: Option<SeatNumber> = None;
    let mut tries = 0;
    for block in rows.blocks(free, count) {
        if skip_through.is_some_and(|s| block[0] <= s) {
            continue;
        }
        if tries == MAX_BLOCK_TRIES {
            return Ok(Err(true));
        }
        tries += 1;
        let locked = seats::lock_free_skipping_locked(conn, concert_id, date, &block).await?;
        if locked.len() == block.len() {
            return Ok(Ok(block));
        }
        contended = true;
        // Every block through the first seat missing would miss it too.
        skip_through = block.iter().find(|n| !locked.contains(n)).copied();
    }
    Ok(Err(contended))
}

/// The lowest `count` free seats this transaction could lock; Err(contended) when fewer.
async fn lock_lowest(
    conn: &mut Conn,
    concert_id: &ConcertId,
    date: NaiveDate,
    tier: Option<&str>,
    free: &[SeatNumber],
    count: usize,
) -> Result<Result<Vec<SeatNumber>, bool>> {
    if free.len() < count {
        return Ok(Err(false));
    }
    let locked = seats::lock_lowest_free(conn, concert_id, date, tier, count).await?;
    if locked.len() == count {
        Ok(Ok(locked))
    } else {
        // Fewer than the free seats read: the others are being taken right now.
        Ok(Err(true))
    }
}
