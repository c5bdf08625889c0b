//! Row types: one struct per table, as stored, with status columns typed (`states`). The domain
//! turns them into its own types (money wrapped, effective statuses on the database clock).

use bigdecimal::BigDecimal;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::ids::{
    ConcertId, LedgerEntryId, OrderId, PaymentId, QueueToken, ReservationId, SeatNumber, TicketId,
    UserId, WaitlistEntryId,
};
use super::schema::*;
use super::states::{
    LedgerKind, OrderSource, OrderStatus, ReservationStatus, Role, SeatStatus, TicketStatus,
    WaitlistStatus,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, check_for_backend(diesel::mysql::Mysql))]
pub struct UserRow {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub balance: BigDecimal,
    pub created_at: NaiveDateTime,
    pub role: Role,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = concerts, check_for_backend(diesel::mysql::Mysql))]
pub struct ConcertRow {
    pub id: ConcertId,
    pub title: String,
    pub venue: String,
    pub price: BigDecimal,
    pub created_at: NaiveDateTime,
    pub description: Option<String>,
    pub seats_per_date: i16,
    /// Seats per row (None: the whole date is one row).
    pub seats_per_row: Option<i16>,
    /// The fair share of this concert (None: the configured default).
    pub max_tickets_per_fan: Option<i16>,
}

/// Seats `from_seat..=to_seat` of every date of a concert cost `price` and are called `name`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = price_tiers, check_for_backend(diesel::mysql::Mysql))]
pub struct PriceTierRow {
    pub concert_id: ConcertId,
    pub from_seat: SeatNumber,
    pub to_seat: SeatNumber,
    pub name: String,
    pub price: BigDecimal,
}

/// One change of a room's queue controls: who, when, and the values set (None: unchanged).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = queue_control_changes, check_for_backend(diesel::mysql::Mysql))]
pub struct ControlChangeRow {
    pub id: String,
    pub concert_id: ConcertId,
    pub changed_by: UserId,
    pub changed_at: NaiveDateTime,
    pub paused: Option<bool>,
    pub admit_per_sec: Option<u32>,
    pub active_limit: Option<u32>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = concert_dates, check_for_backend(diesel::mysql::Mysql))]
pub struct ConcertDateRow {
    pub concert_id: ConcertId,
    pub date: NaiveDate,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = seats, check_for_backend(diesel::mysql::Mysql))]
pub struct SeatRow {
    pub concert_id: ConcertId,
    pub date: NaiveDate,
    pub number: SeatNumber,
    /// The seat's row, from 1 (nearest the stage).
    pub seat_row: i16,
    pub price: BigDecimal,
    pub status: SeatStatus,
    pub held_by: Option<UserId>,
    pub held_until: Option<NaiveDateTime>,
    pub reservation_id: Option<ReservationId>,
    pub updated_at: NaiveDateTime,
    pub tier: String,
}

/// One fan's place on a date's waitlist.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = waitlist_entries, check_for_backend(diesel::mysql::Mysql))]
pub struct WaitlistEntryRow {
    pub id: WaitlistEntryId,
    pub concert_id: ConcertId,
    pub date: NaiveDate,
    pub user_id: UserId,
    pub seq: i64,
    pub seat_count: i16,
    pub status: WaitlistStatus,
    pub order_id: Option<OrderId>,
    pub offer_expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The seats a fan holds on one date, as one thing to pay, release or refund.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = orders, check_for_backend(diesel::mysql::Mysql))]
pub struct OrderRow {
    pub id: OrderId,
    pub user_id: UserId,
    pub concert_id: ConcertId,
    pub date: NaiveDate,
    pub status: OrderStatus,
    pub source: OrderSource,
    pub total: BigDecimal,
    pub held_until: NaiveDateTime,
    pub paid_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = reservations, check_for_backend(diesel::mysql::Mysql))]
pub struct ReservationRow {
    pub id: ReservationId,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub concert_id: ConcertId,
    pub date: NaiveDate,
    pub seat_number: SeatNumber,
    pub price: BigDecimal,
    /// The seat's tier when it was taken.
    pub tier: String,
    pub status: ReservationStatus,
    pub held_until: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = wallet_transactions, check_for_backend(diesel::mysql::Mysql))]
pub struct WalletTransactionRow {
    pub id: LedgerEntryId,
    pub user_id: UserId,
    pub kind: LedgerKind,
    pub amount: BigDecimal,
    pub balance_after: BigDecimal,
    /// The seat a REFUND credits back.
    pub reservation_id: Option<ReservationId>,
    /// The order a PAYMENT pays.
    pub order_id: Option<OrderId>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payments, check_for_backend(diesel::mysql::Mysql))]
pub struct PaymentRow {
    pub id: PaymentId,
    pub user_id: UserId,
    pub order_id: OrderId,
    pub wallet_transaction_id: LedgerEntryId,
    pub amount: BigDecimal,
    pub paid_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys, check_for_backend(diesel::mysql::Mysql))]
pub struct IdempotencyKeyRow {
    pub user_id: UserId,
    pub idem_key: String,
    pub operation: String,
    pub fingerprint: String,
    pub result_id: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = queue_rooms, check_for_backend(diesel::mysql::Mysql))]
pub struct QueueRoomRow {
    pub concert_id: ConcertId,
    pub issued: i64,
    pub admitted_seq: i64,
    pub admit_clock: Option<NaiveDateTime>,
    pub last_tick_at: Option<NaiveDateTime>,
    /// Proof-of-work this room asks of entrants beyond the instance default.
    pub pow_difficulty: Option<u8>,
    pub paused: bool,
    /// The admission rate set for this room (None: the instance default).
    pub admit_per_sec: Option<u32>,
    /// The active limit set for this room (None: the instance default).
    pub active_limit: Option<u32>,
    /// Every seat is sold: the room admits nobody and its waiting tickets read SOLD_OUT.
    pub sold_out: bool,
    pub admitted_total: i64,
    pub abandoned_total: i64,
    /// The observed admission rate: a sample window's start and the admissions before it.
    pub rate_sample_at: Option<NaiveDateTime>,
    pub rate_sample_total: i64,
    /// The estimate when the current sample window began.
    pub rate_prior: Option<f64>,
    /// Admissions per second while people were waiting, smoothed over the last minutes.
    pub observed_rate: Option<f64>,
    #[diesel(embed)]
    pub turns: TurnsRow,
}

/// What a ticket's holder sees of its room: how far admission has walked, whether the room is
/// sold out or paused, and the rates an estimated wait comes from.
#[derive(Debug, Clone, Default, PartialEq, Queryable, Selectable)]
#[diesel(table_name = queue_rooms, check_for_backend(diesel::mysql::Mysql))]
pub struct RoomGaugeRow {
    pub admitted_seq: i64,
    pub sold_out: bool,
    pub paused: bool,
    pub admit_per_sec: Option<u32>,
    pub active_limit: Option<u32>,
    pub observed_rate: Option<f64>,
    #[diesel(embed)]
    pub turns: TurnsRow,
}

/// The turns running in a room when its last admission step ended: how many, and the earliest and
/// latest of their deadlines (the database clock). When places free up next comes from them.
#[derive(Debug, Clone, Default, PartialEq, Queryable, Selectable, AsChangeset)]
#[diesel(table_name = queue_rooms, check_for_backend(diesel::mysql::Mysql))]
#[diesel(treat_none_as_null = true)]
pub struct TurnsRow {
    pub active_count: i32,
    pub first_deadline: Option<NaiveDateTime>,
    pub last_deadline: Option<NaiveDateTime>,
}

impl TurnsRow {
    /// These turns and `admitted` more that began now, with `deadline`.
    pub fn after_admitting(&self, admitted: usize, deadline: NaiveDateTime) -> Self {
        if admitted == 0 {
            return self.clone();
        }
        Self {
            active_count: self
                .active_count
                .saturating_add(i32::try_from(admitted).unwrap_or(i32::MAX)),
            first_deadline: Some(self.first_deadline.map_or(deadline, |d| d.min(deadline))),
            last_deadline: Some(deadline),
        }
    }
}

impl QueueRoomRow {
    pub fn gauge(&self) -> RoomGaugeRow {
        RoomGaugeRow {
            admitted_seq: self.admitted_seq,
            sold_out: self.sold_out,
            paused: self.paused,
            admit_per_sec: self.admit_per_sec,
            active_limit: self.active_limit,
            observed_rate: self.observed_rate,
            turns: self.turns.clone(),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = queue_tickets, check_for_backend(diesel::mysql::Mysql))]
pub struct QueueTicketRow {
    pub id: TicketId,
    pub token: QueueToken,
    pub user_id: UserId,
    pub concert_id: ConcertId,
    pub seq: i64,
    pub status: TicketStatus,
    pub last_seen_at: NaiveDateTime,
    pub activated_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The sale of one concert made by an operator: not on sale until scheduled (a concert without
/// a row is on sale).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sales, check_for_backend(diesel::mysql::Mysql))]
pub struct SaleRow {
    pub concert_id: ConcertId,
    /// Entries before this are refused; from it they join the pre-queue (None: from scheduling).
    pub prequeue_opens_at: Option<NaiveDateTime>,
    /// The sale opens, and its pre-queue is drawn, at this time; None: not scheduled yet.
    pub opens_at: Option<NaiveDateTime>,
    /// The draw's seed, lowercase hex; public once the sale opens.
    pub seed: String,
    /// SHA-256 of the seed's bytes, lowercase hex; public from scheduling.
    pub seed_commitment: String,
    /// Entries in the pre-queue so far (their placeholder sequence numbers are -1, -2, ...).
    pub prequeued: i64,
    pub drawn_at: Option<NaiveDateTime>,
    pub scheduled_by: UserId,
    pub scheduled_at: NaiveDateTime,
}
