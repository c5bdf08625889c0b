//! Taking seats: an order of the seats a fan names (`holdSeats`, and `holdSeat` as an order of
//! one), or of the best free ones (`holdBestAvailable`). Every seat or none, in one transaction.
//!
//! One conditional UPDATE per seat row decides who gets it: it matches only a seat that is
//! AVAILABLE or whose hold has lapsed by the database clock, so exactly one of any number of
//! racing callers sees one affected row. Seats are taken in number order, so two fans racing
//! for overlapping sets wait for each other in one direction and never deadlock; the loser
//! finds a seat taken, changes nothing, and is told which seats (`SEAT_UNAVAILABLE`).
//!
//! Best available choices of one date take turns on the date's row, so each sees what the one
//! before it took and the best blocks are handed out in order (32 fans asking at once get the
//! 32 best blocks, or a clean refusal). Within its turn it reads the free seats and tries blocks
//! best first, each locked with `SKIP LOCKED`: seats a named hold is taking at that moment are
//! skipped, never waited for. An answer of "no block" is given only from a round that skipped
//! nothing (after a few short retries), with the largest block free.
//!
//! The fair share is counted under the fan's row lock: every transaction that adds seats to a
//! fan locks that row first, so parallel sessions of one fan cannot both pass the check.

use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};

use super::best::Rows;
use super::{Order, OrderSource, OrderStatus, ReservationStatus, to_order};
use crate::db::ids::{ConcertId, OrderId, QueueToken, ReservationId, SeatNumber, UserId};
use crate::db::models::{OrderRow, ReservationRow};
use crate::db::states::SeatStatus;
use crate::db::{Conn, concerts, orders, price_tiers, reservations, seats};
use crate::domain::accounts::lock_user_at_now;
use crate::domain::error::{Error, Result, Unavailable};
use crate::domain::idempotency;
use crate::domain::inputs::IdempotencyKey;
use crate::domain::money::Money;
use crate::domain::queue;
use crate::domain::rules::Rules;
use crate::domain::services::Services;
use crate::domain::time::chrono_duration;

/// Most seats one request may name or ask for, whatever a concert's fair share: bounds the
/// request's cost before any of it runs.
pub const MAX_SEATS_PER_ORDER: usize = 100;

/// Most blocks one round of best available tries under lock.
const MAX_BLOCK_TRIES: usize = 64;

/// Rounds of best available before "no block" is answered while others were taking seats.
const BEST_AVAILABLE_ROUNDS: u32 = 8;

/// Seats named by a fan, checked for shape: 1 to [`MAX_SEATS_PER_ORDER`], each once, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatSet(Vec<SeatNumber>);

impl SeatSet {
    pub fn parse(mut numbers: Vec<SeatNumber>) -> Result<Self> {
        if numbers.is_empty() || numbers.len() > MAX_SEATS_PER_ORDER {
            return Err(Error::bad_input(format!(
                "seatNumbers must list 1 to {MAX_SEATS_PER_ORDER} seats"
            )));
        }
        numbers.sort();
        if let Some(twice) = numbers.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::bad_input(format!(
                "seatNumbers lists seat {} twice",
                twice[0]
            )));
        }
        Ok(Self(numbers))
    }

    pub fn numbers(&self) -> &[SeatNumber] {
        &self.0
    }
}

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

/// Holds `seats` of `date` for the caller until `now + HOLD_TTL`: every seat or none. With a
/// key, a repeat returns the first order.
pub async fn hold_seats(
    services: &Services,
    user_id: &UserId,
    concert_id: &ConcertId,
    date: NaiveDate,
    seats: &SeatSet,
    queue_token: &QueueToken,
    key: Option<IdempotencyKey>,
) -> Result<Order> {
    let rules = &services.rules;
    let numbers = seats.numbers();
    let fingerprint = format!(
        "{concert_id}/{date}/{}",
        numbers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let order = transaction!(services.db, async |conn: &mut Conn| {
        let (terms, now) = begin(conn, user_id, concert_id, date).await?;
        if let Some(key) = &key
            && let Some(first) =
                idempotency::replay(conn, user_id, key, "hold_seats", &fingerprint).await?
        {
            let first = OrderId::parse(&first)
                .ok_or_else(|| Error::corrupt(format!("idempotency result {first:?}")))?;
            return super::views::find_order(conn, &first).await;
        }
        check_share(
            conn,
            rules,
            &terms,
            user_id,
            concert_id,
            date,
            numbers.len(),
            now,
        )
        .await?;
        let order = OrderId::new();
        let ids: Vec<ReservationId> = numbers.iter().map(|_| ReservationId::new()).collect();
        let held_until = now + chrono_duration(rules.hold_ttl);
        for (i, (number, id)) in numbers.iter().zip(&ids).enumerate() {
            let seat = (concert_id, date, *number);
            if !seats::take(conn, seat, user_id, id, held_until, now).await? {
                // The seats before this one were free (this transaction took them).
                return Err(why_not_taken(conn, concert_id, date, &numbers[i..]).await);
            }
        }
        let written = write_order(
            conn,
            NewOrder {
                id: order,
                user_id,
                concert_id,
                date,
                numbers,
                ids: &ids,
                source: OrderSource::Turn,
                held_until,
                now,
            },
        )
        .await?;
        // The turn is checked under lock, last in the lock order: a turn that ended since the
        // resolver's early check holds nothing.
        queue::lock_active(conn, queue_token, concert_id, user_id, rules).await?;
        if let Some(key) = &key {
            idempotency::record(
                conn,
                user_id,
                key,
                "hold_seats",
                &fingerprint,
                written.id.as_str(),
            )
            .await?;
        }
        Ok(written)
    })
    .await?;
    metrics::counter!("holds_taken_total").increment(order.seats.len() as u64);
    note_held(services, &order);
    Ok(order)
}

/// This instance's seat maps show the order's seats held at once (see `LiveHub::note_seats`).
fn note_held(services: &Services, order: &Order) {
    let numbers: Vec<SeatNumber> = order.seats.iter().map(|s| s.seat_number).collect();
    services
        .live
        .note_seats(&order.concert_id, order.date, &numbers, SeatStatus::Held);
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
    transaction!(services.db, async |conn: &mut Conn| {
        let (terms, now) = begin(conn, user_id, concert_id, date).await?;
        check_share(
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
        // After the fan's row, before any seat: the global lock order.
        concerts::lock_date(conn, concert_id, date).await?;
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
        let order = OrderId::new();
        let ids: Vec<ReservationId> = numbers.iter().map(|_| ReservationId::new()).collect();
        let held_until = now + chrono_duration(rules.hold_ttl);
        for (number, id) in numbers.iter().zip(&ids) {
            // Locked by this transaction and free: the update cannot miss.
            if !seats::take(
                conn,
                (concert_id, date, *number),
                user_id,
                id,
                held_until,
                now,
            )
            .await?
            {
                return Err(Error::corrupt(format!(
                    "seat {number} locked free but not taken"
                )));
            }
        }
        let written = write_order(
            conn,
            NewOrder {
                id: order,
                user_id,
                concert_id,
                date,
                numbers: &numbers,
                ids: &ids,
                source: OrderSource::Turn,
                held_until,
                now,
            },
        )
        .await?;
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

/// A fan's fair share of a concert: the limit and the seats held and paid against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u32,
    pub used: u32,
}

/// The caller's fair share of a concert now.
pub async fn allowance(
    services: &Services,
    user_id: &UserId,
    concert_id: &ConcertId,
) -> Result<Allowance> {
    let default = u32::from(services.rules.max_tickets_per_fan);
    with_conn!(services.db, async |conn: &mut Conn| {
        let concert = concerts::find(conn, concert_id)
            .await?
            .ok_or(Error::NotFound("concert"))?;
        let now = crate::db::now(conn).await?;
        let used = reservations::held_or_paid_of_concert(conn, user_id, concert_id, now).await?;
        Ok(Allowance {
            limit: concert
                .max_tickets_per_fan
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(default),
            used: u32::try_from(used).unwrap_or(u32::MAX),
        })
    })
    .await
}

/// What taking seats of a date depends on.
pub(crate) struct Terms {
    pub rows: Rows,
    /// The concert's own fair share, if it sets one.
    pub max_tickets_per_fan: Option<u32>,
}

/// The start of every hold: the date exists, then the fan's row is locked (the first lock of
/// the order) with the database clock.
async fn begin(
    conn: &mut Conn,
    user_id: &UserId,
    concert_id: &ConcertId,
    date: NaiveDate,
) -> Result<(Terms, NaiveDateTime)> {
    let (per_row, share) = concerts::hold_terms(conn, concert_id, date)
        .await?
        .ok_or(Error::NotFound("concert date"))?;
    let now = lock_user_at_now(conn, user_id).await?;
    let terms = Terms {
        rows: Rows {
            seats_per_row: per_row.and_then(|n| u16::try_from(n).ok()),
        },
        max_tickets_per_fan: share.and_then(|n| u32::try_from(n).ok()),
    };
    Ok((terms, now))
}

/// Refuses an order that would take the fan past their fair share of the concert (or past the
/// optional per-date cap on unpaid holds). Called holding the fan's row lock.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn check_share(
    conn: &mut Conn,
    rules: &Rules,
    terms: &Terms,
    user_id: &UserId,
    concert_id: &ConcertId,
    date: NaiveDate,
    adding: usize,
    now: NaiveDateTime,
) -> Result<()> {
    let limit = terms
        .max_tickets_per_fan
        .unwrap_or(u32::from(rules.max_tickets_per_fan));
    let used = reservations::held_or_paid_of_concert(conn, user_id, concert_id, now).await?;
    let used = u32::try_from(used).unwrap_or(u32::MAX);
    let adding = u32::try_from(adding).unwrap_or(u32::MAX);
    if used.saturating_add(adding) > limit {
        return Err(Error::TicketLimitReached {
            limit,
            remaining: limit.saturating_sub(used),
        });
    }
    if rules.max_holds_per_date > 0 {
        let held = reservations::live_holds_for_date(conn, user_id, concert_id, date, now).await?;
        let held = u32::try_from(held).unwrap_or(u32::MAX);
        if held.saturating_add(adding) > rules.max_holds_per_date {
            return Err(Error::HoldLimitReached(rules.max_holds_per_date));
        }
    }
    Ok(())
}

/// Why the first of `numbers` could not be taken: one of them is not a seat of the date (bad
/// input), or these are held or sold by others (the first of them at least).
async fn why_not_taken(
    conn: &mut Conn,
    concert_id: &ConcertId,
    date: NaiveDate,
    numbers: &[SeatNumber],
) -> Error {
    let diagnosis = async {
        let existing = seats::existing(conn, concert_id, date, numbers).await?;
        if let Some(missing) = numbers.iter().find(|n| !existing.contains(n)) {
            return Ok(Error::bad_input(format!(
                "seatNumber {missing} is not a seat of this concert",
            )));
        }
        let mut taken = seats::taken_among(conn, concert_id, date, numbers).await?;
        if taken.is_empty() {
            // Taken and given back between the two statements: it was not free when asked.
            taken = numbers[..1].to_vec();
        }
        Ok::<_, Error>(Error::SeatUnavailable(Unavailable::Seats(taken)))
    };
    diagnosis.await.unwrap_or_else(|e| e)
}

/// An order about to be written: its seats are taken by this transaction already.
pub(crate) struct NewOrder<'a> {
    pub id: OrderId,
    pub user_id: &'a UserId,
    pub concert_id: &'a ConcertId,
    pub date: NaiveDate,
    pub numbers: &'a [SeatNumber],
    pub ids: &'a [ReservationId],
    pub source: OrderSource,
    pub held_until: NaiveDateTime,
    pub now: NaiveDateTime,
}

/// Writes an order and its seats' reservations for seats this transaction has just taken;
/// lapsed holds of those seats are marked EXPIRED so their records say so.
pub(crate) async fn write_order(conn: &mut Conn, new: NewOrder<'_>) -> Result<Order> {
    for number in new.numbers {
        reservations::expire_lapsed_of_seat(conn, (new.concert_id, new.date, *number), new.now)
            .await?;
    }
    let priced = seats::prices(conn, new.concert_id, new.date, new.numbers).await?;
    let rows: Vec<ReservationRow> = priced
        .into_iter()
        .zip(new.ids)
        .map(|((number, price, tier), id)| ReservationRow {
            id: id.clone(),
            order_id: new.id.clone(),
            user_id: new.user_id.clone(),
            concert_id: new.concert_id.clone(),
            date: new.date,
            seat_number: number,
            price,
            tier,
            status: ReservationStatus::Held,
            held_until: new.held_until,
            created_at: new.now,
            updated_at: new.now,
        })
        .collect();
    let prices: Vec<Money> = rows
        .iter()
        .map(|r| Money::from_stored(r.price.clone()))
        .collect();
    let order = OrderRow {
        id: new.id,
        user_id: new.user_id.clone(),
        concert_id: new.concert_id.clone(),
        date: new.date,
        status: OrderStatus::Held,
        source: new.source,
        total: Money::sum(&prices).as_decimal().clone(),
        held_until: new.held_until,
        paid_at: None,
        created_at: new.now,
        updated_at: new.now,
    };
    orders::insert(conn, &order).await?;
    reservations::insert_all(conn, &rows).await?;
    let seats = rows
        .into_iter()
        .map(|r| (r, ReservationStatus::Held))
        .collect();
    Ok(to_order(order, OrderStatus::Held, seats))
}

/// The seed API's hold of one seat: an order of one, shown as its reservation.
pub async fn hold_seat(
    services: &Services,
    user_id: &UserId,
    concert_id: &ConcertId,
    date: NaiveDate,
    seat: SeatNumber,
    queue_token: &QueueToken,
) -> Result<super::Reservation> {
    let seats = SeatSet::parse(vec![seat])?;
    let order = hold_seats(
        services,
        user_id,
        concert_id,
        date,
        &seats,
        queue_token,
        None,
    )
    .await?;
    order
        .seats
        .into_iter()
        .next()
        .ok_or_else(|| Error::corrupt("an order of one seat without its seat"))
}
