//! A scheduled sale with a fair start anyone can check.
//!
//! A concert an operator makes is not on sale (`SALE_NOT_OPEN`) until its sale is scheduled, so
//! nobody can slip into its room between creation and scheduling. An operator schedules the
//! sale: entries are refused (`SALE_NOT_OPEN`) until the
//! pre-queue opens; from then until the sale opens they join a pre-queue without a place
//! (PREQUEUED). When the sale opens (database clock; the ticker of whichever instance takes the
//! room's lock first, once) the pre-queue is **drawn**: each pre-queued ticket's key is
//! SHA-256(seed ‖ ticket id) and places 1, 2, ... go by ascending key, then everyone who arrives
//! later queues FIFO behind. The seed is 32 random bytes whose SHA-256 (`seedCommitment`) is
//! published when the sale is scheduled, before anyone can enter, and which is itself published
//! once the draw is done, with the drawn order of public ticket ids. Anyone can then check that
//! the seed matches the commitment and recompute the order (`scripts/verify-draw`): the operator
//! could not pick a seed after seeing who entered, and nobody gains by entering early.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use super::super::accounts::require_operator;
use super::super::catalog;
use super::super::error::{Error, Result};
use super::super::services::Services;
use super::super::time::utc;
use crate::db::ids::{ConcertId, TicketId, UserId};
use crate::db::models::SaleRow;
use crate::db::{Conn, queue_rooms, queue_tickets, sales};

/// The furthest ahead a sale may be scheduled.
const MAX_AHEAD: TimeDelta = TimeDelta::days(366);
/// Most ids one `drawOrder` page returns.
pub const MAX_DRAW_PAGE: i64 = 1000;

#[derive(Debug, Clone)]
pub struct Sale {
    pub concert_id: ConcertId,
    pub prequeue_opens_at: Option<DateTime<Utc>>,
    pub opens_at: DateTime<Utc>,
    pub seed_commitment: String,
    /// Revealed once the draw is done.
    pub seed: Option<String>,
    pub drawn_at: Option<DateTime<Utc>>,
    /// Entries in the pre-queue (all of them drawn, once drawn).
    pub prequeued: i64,
}

impl Sale {
    /// The sale a row describes, once it is scheduled.
    fn scheduled(row: SaleRow) -> Option<Self> {
        let drawn = row.drawn_at.is_some();
        Some(Self {
            opens_at: utc(row.opens_at?),
            concert_id: row.concert_id,
            prequeue_opens_at: row.prequeue_opens_at.map(utc),
            seed_commitment: row.seed_commitment,
            seed: drawn.then_some(row.seed),
            drawn_at: row.drawn_at.map(utc),
            prequeued: row.prequeued,
        })
    }
}

/// A not-yet-scheduled sale for a concert an operator just made: its room refuses entries.
pub(crate) fn unscheduled(
    concert_id: &ConcertId,
    operator: &UserId,
    now: NaiveDateTime,
) -> SaleRow {
    new_sale(concert_id, operator, now, None, None)
}

/// A sale row with a fresh random seed and its commitment.
fn new_sale(
    concert_id: &ConcertId,
    operator: &UserId,
    now: NaiveDateTime,
    opens_at: Option<NaiveDateTime>,
    prequeue_opens_at: Option<NaiveDateTime>,
) -> SaleRow {
    let seed: [u8; 32] = rand::random();
    SaleRow {
        concert_id: concert_id.clone(),
        prequeue_opens_at,
        opens_at,
        seed: hex(&seed),
        seed_commitment: hex(&Sha256::digest(seed)),
        prequeued: 0,
        drawn_at: None,
        scheduled_by: operator.clone(),
        scheduled_at: now,
    }
}

/// An operator schedules (or, before its pre-queue opens, reschedules) a concert's sale.
pub async fn schedule(
    services: &Services,
    operator: &UserId,
    concert_id: &ConcertId,
    opens_at: DateTime<Utc>,
    prequeue_opens_at: Option<DateTime<Utc>>,
) -> Result<Sale> {
    let opens_at = opens_at.naive_utc();
    let prequeue_opens_at = prequeue_opens_at.map(|t| t.naive_utc());
    let sale = transaction!(services.db, async |conn: &mut Conn| {
        require_operator(conn, operator).await?;
        if prequeue_opens_at.is_some_and(|p| p > opens_at) {
            return Err(Error::bad_input(
                "prequeueOpensAt must not be after opensAt",
            ));
        }
        let (room, now) = super::room::lock_room(conn, concert_id).await?;
        if opens_at <= now || opens_at > now + MAX_AHEAD {
            return Err(Error::bad_input(
                "opensAt must be in the future, at most a year ahead",
            ));
        }
        if let Some(existing) = sales::lock(conn, concert_id).await? {
            let door_opened = existing
                .prequeue_opens_at
                .or(existing.opens_at)
                .is_some_and(|at| at <= now);
            if existing.drawn_at.is_some() || door_opened || existing.prequeued > 0 {
                return Err(Error::bad_input(
                    "this sale's waiting room is already open; its schedule and seed are final",
                ));
            }
        }
        if room.issued > 0 {
            return Err(Error::bad_input(
                "people already entered this concert's waiting room; a sale can only be \
                 scheduled before anyone enters",
            ));
        }
        let row = new_sale(concert_id, operator, now, Some(opens_at), prequeue_opens_at);
        sales::upsert(conn, &row).await?;
        Sale::scheduled(row).ok_or_else(|| Error::corrupt("a sale scheduled without a time"))
    })
    .await?;
    tracing::info!(%concert_id, %operator, opens_at = %sale.opens_at, "sale scheduled");
    Ok(sale)
}

/// A concert's sale, if one is scheduled (public).
pub async fn sale(services: &Services, concert_id: &ConcertId) -> Result<Option<Sale>> {
    with_conn!(services.db, async |conn: &mut Conn| {
        catalog::ensure_concert(conn, concert_id).await?;
        Ok(sales::find(conn, concert_id)
            .await?
            .and_then(Sale::scheduled))
    })
    .await
}

/// The drawn order, a page of it: the public ids of places `offset + 1 ..= offset + limit`
/// (empty until the draw).
pub async fn draw_order(
    services: &Services,
    concert_id: &ConcertId,
    offset: i64,
    limit: i64,
) -> Result<Vec<TicketId>> {
    if offset < 0 || !(1..=MAX_DRAW_PAGE).contains(&limit) {
        return Err(Error::bad_input(format!(
            "offset must be 0 or more and limit 1 to {MAX_DRAW_PAGE}"
        )));
    }
    with_conn!(services.db, async |conn: &mut Conn| {
        let Some(sale) = sales::find(conn, concert_id).await? else {
            return Ok(Vec::new());
        };
        if sale.drawn_at.is_none() {
            return Ok(Vec::new());
        }
        let until = (offset + limit).min(sale.prequeued);
        Ok(queue_tickets::by_place(conn, concert_id, offset, until).await?)
    })
    .await
}

/// Draws every sale whose opening time has come. Run by each instance's ticker; the room lock
/// and the `drawn_at` check make one of them do each draw, once.
pub async fn draw_due(services: &Services) -> Result<usize> {
    let due = with_conn!(services.db, async |conn: &mut Conn| {
        Ok(sales::due(conn).await?)
    })
    .await?;
    let mut drawn = 0;
    for concert_id in due {
        match draw(services, &concert_id).await {
            Ok(Some(n)) => {
                drawn += 1;
                tracing::info!(%concert_id, prequeued = n, "sale opened: pre-queue drawn");
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = ?err, %concert_id, "drawing the pre-queue failed"),
        }
    }
    Ok(drawn)
}

/// The draw of one sale, if due and not done: how many tickets it placed.
///
/// Its cost grows with the pre-queue (one UPDATE over it, ordered by the draw's key; measured
/// in the README). Entries to the room wait for it on the room lock;
/// other instances skip the room meanwhile rather than queue behind it.
async fn draw(services: &Services, concert_id: &ConcertId) -> Result<Option<usize>> {
    let home = services.db.room_home(concert_id);
    transaction!(home, async |conn: &mut Conn| {
        // The room lock first, as every entry batch takes it: no entry lands mid-draw. Held by
        // another transaction (another instance drawing, an entry batch): tried next tick.
        let Some(room) = queue_rooms::try_lock(conn, concert_id).await? else {
            return Ok(None);
        };
        let Some(sale) = sales::lock(conn, concert_id).await? else {
            return Ok(None);
        };
        // The clock read after the locks: the draw's writes are stamped when it runs.
        let now = crate::db::now(conn).await?;
        if sale.drawn_at.is_some() || sale.opens_at.is_none_or(|at| at > now) {
            return Ok(None);
        }
        if unhex(&sale.seed).is_none_or(|seed| seed.len() != 32) {
            return Err(Error::corrupt("sale seed"));
        }
        // One statement orders and places the whole pre-queue (the order `shuffle` gives).
        let placed =
            queue_tickets::draw_in_place(conn, concert_id, &sale.seed, room.issued, now).await?;
        if placed > 0 {
            queue_rooms::set_issued(conn, concert_id, room.issued + placed as i64).await?;
        }
        sales::mark_drawn(conn, concert_id, now).await?;
        Ok(Some(placed))
    })
    .await
}

/// The draw's order: ascending SHA-256(seed ‖ id as text), ties (never seen) by id.
pub fn shuffle(seed: &[u8], mut ids: Vec<TicketId>) -> Vec<TicketId> {
    let key = |id: &TicketId| {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(id.as_str().as_bytes());
        h.finalize()
    };
    ids.sort_by_cached_key(|id| (key(id), id.clone()));
    ids
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draw_is_a_function_of_the_seed_and_the_ids_only() {
        let ids: Vec<TicketId> = (0..50).map(|_| TicketId::new()).collect();
        let mut reversed = ids.clone();
        reversed.reverse();
        let a = shuffle(&[7; 32], ids.clone());
        assert_eq!(
            a,
            shuffle(&[7; 32], reversed),
            "arrival order does not matter"
        );
        assert_ne!(a, shuffle(&[8; 32], ids.clone()), "the seed does");
        assert_ne!(a, ids, "it is not the arrival order");
    }

    #[test]
    fn the_commitment_is_the_sha256_of_the_seed_bytes() {
        let seed = [0u8; 32];
        assert_eq!(
            hex(&Sha256::digest(seed)),
            "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        );
        assert_eq!(unhex(&hex(&[1, 171, 255])), Some(vec![1, 171, 255]));
        assert_eq!(unhex("zz"), None);
    }
}
