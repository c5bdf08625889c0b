//! Taking the seats a fan names: `holdSeats`, and the seed API's `holdSeat` as an order of one.
//! Every seat or none, in one transaction.
//!
//! One conditional UPDATE per seat row decides who gets it: it matches only a seat that is
//! AVAILABLE or whose hold has lapsed by the database clock, so exactly one of any number of
//! racing callers sees one affected row. Seats are taken in number order, so two fans racing
//! for overlapping sets wait for each other in one direction and never deadlock; the loser
//! finds a seat taken, changes nothing, and is told which seats (`SEAT_UNAVAILABLE`).

use chrono::NaiveDate;

use super::take::{self, MAX_SEATS_PER_ORDER, NewOrder, note_held};
use super::{Order, OrderSource};
use crate::db::ids::{ConcertId, OrderId, QueueToken, SeatNumber, UserId};
use crate::db::waitlist::RowLock;
use crate::db::{Conn, seats};
use crate::domain::error::{Error, Result, Unavailable};
use crate::domain::idempotency;
use crate::domain::inputs::IdempotencyKey;
use crate::domain::queue;
use crate::domain::services::Services;
use crate::domain::time::chrono_duration;

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
    let home = services.db.room_home(concert_id);
    let order = transaction!(home, async |conn: &mut Conn| {
        let (terms, now) = take::begin_fan(conn, user_id, concert_id, date).await?;
        if let Some(key) = &key
            && let Some(first) =
                idempotency::replay(conn, user_id, key, "hold_seats", &fingerprint).await?
        {
            let first = OrderId::parse(&first)
                .ok_or_else(|| Error::corrupt(format!("idempotency result {first:?}")))?;
            return super::views::find_order(conn, &first).await;
        }
        take::take_date_turn(conn, concert_id, date, RowLock::Shared).await?;
        take::check_share(
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
        let taken = take::take_order(
            conn,
            NewOrder {
                user_id,
                concert_id,
                date,
                numbers,
                source: OrderSource::Turn,
                held_until: now + chrono_duration(rules.hold_ttl),
                now,
            },
        )
        .await?;
        let written = match taken {
            Ok(order) => order,
            // The seats before this one were free (this transaction took them).
            Err(i) => return Err(why_not_taken(conn, concert_id, date, &numbers[i..]).await),
        };
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
