//! Row types: one struct per table, as stored, with status columns typed (`states`). The domain
//! turns them into its own types (money wrapped, effective statuses on the database clock).

use bigdecimal::BigDecimal;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::ids::{
    ConcertId, LedgerEntryId, PaymentId, QueueToken, ReservationId, TicketId, UserId,
};
use super::schema::*;
use super::states::{LedgerKind, ReservationStatus, Role, SeatStatus, TicketStatus};

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
    pub number: i16,
    pub price: BigDecimal,
    pub status: SeatStatus,
    pub held_by: Option<UserId>,
    pub held_until: Option<NaiveDateTime>,
    pub reservation_id: Option<ReservationId>,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = reservations, check_for_backend(diesel::mysql::Mysql))]
pub struct ReservationRow {
    pub id: ReservationId,
    pub user_id: UserId,
    pub concert_id: ConcertId,
    pub date: NaiveDate,
    pub seat_number: i16,
    pub price: BigDecimal,
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
    pub reservation_id: Option<ReservationId>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payments, check_for_backend(diesel::mysql::Mysql))]
pub struct PaymentRow {
    pub id: PaymentId,
    pub user_id: UserId,
    pub reservation_id: ReservationId,
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
