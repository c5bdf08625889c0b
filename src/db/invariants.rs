//! The invariants every state of the database must keep, as SQL: after any run, load or fault,
//! each query below must return no rows. Tests assert them after their scenarios; the benches
//! check them after every run.
//!
//! - each balance equals the sum of its ledger and is not negative;
//! - a SOLD seat has exactly one PAID reservation, and a PAID reservation's seat is SOLD;
//! - a PAID reservation belongs to a PAID order; every paid order has exactly one payment of
//!   its total, whose PAYMENT ledger row exists; no payment belongs to an order never paid;
//! - an order's total is the sum of its seats that were not released; a live hold belongs to a
//!   live HELD order with the same deadline;
//! - every REFUNDED reservation has exactly one REFUND ledger row of its price;
//! - a HELD seat points at a HELD reservation of that very seat.

use diesel::QueryableByName;
use diesel::result::Error as DieselError;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;

use super::Conn;

/// Each rule and the query that lists what breaks it.
const CHECKS: [(&str, &str); 11] = [
    (
        "balance differs from ledger or is negative",
        "SELECT u.id AS id FROM users u LEFT JOIN wallet_transactions t ON t.user_id = u.id \
         GROUP BY u.id, u.balance HAVING u.balance <> COALESCE(SUM(t.amount), 0) OR u.balance < 0",
    ),
    (
        "SOLD seat without exactly one PAID reservation",
        "SELECT CONCAT(s.concert_id, '/', s.date, '/', s.number) AS id FROM seats s \
         LEFT JOIN reservations r ON r.concert_id = s.concert_id AND r.date = s.date \
           AND r.seat_number = s.number AND r.status = 'PAID' \
         WHERE s.status = 'SOLD' GROUP BY s.concert_id, s.date, s.number HAVING COUNT(r.id) <> 1",
    ),
    (
        "PAID reservation on a seat that is not SOLD",
        "SELECT r.id AS id FROM reservations r JOIN seats s ON s.concert_id = r.concert_id \
           AND s.date = r.date AND s.number = r.seat_number \
         WHERE r.status = 'PAID' AND s.status <> 'SOLD'",
    ),
    (
        "PAID reservation whose order is not PAID",
        "SELECT r.id AS id FROM reservations r LEFT JOIN orders o ON o.id = r.order_id \
         WHERE r.status = 'PAID' AND (o.id IS NULL OR o.status <> 'PAID')",
    ),
    (
        "paid order without exactly one payment of its total and a PAYMENT ledger row of it",
        "SELECT o.id AS id FROM orders o LEFT JOIN payments p ON p.order_id = o.id \
           LEFT JOIN wallet_transactions t ON t.id = p.wallet_transaction_id \
             AND t.amount = -p.amount AND t.kind = 'PAYMENT' AND t.order_id = o.id \
         WHERE o.status IN ('PAID', 'REFUNDED') GROUP BY o.id, o.total \
         HAVING COUNT(p.id) <> 1 OR COUNT(t.id) <> 1 OR MAX(p.amount) <> o.total",
    ),
    (
        "payment of an order that is not PAID or REFUNDED",
        "SELECT p.id AS id FROM payments p LEFT JOIN orders o ON o.id = p.order_id \
         WHERE o.id IS NULL OR o.status NOT IN ('PAID', 'REFUNDED')",
    ),
    (
        "order total differs from the prices of its seats that were not released",
        "SELECT o.id AS id FROM orders o LEFT JOIN reservations r \
           ON r.order_id = o.id AND r.status <> 'CANCELLED' \
         WHERE o.status IN ('HELD', 'PAID', 'REFUNDED') GROUP BY o.id, o.total \
         HAVING o.total <> COALESCE(SUM(r.price), 0)",
    ),
    (
        "live hold outside a live HELD order with the same deadline",
        "SELECT r.id AS id FROM reservations r LEFT JOIN orders o ON o.id = r.order_id \
         WHERE r.status = 'HELD' AND r.held_until > UTC_TIMESTAMP(6) \
           AND (o.id IS NULL OR o.status <> 'HELD' OR o.held_until <> r.held_until)",
    ),
    (
        "REFUND ledger row of a reservation that is not REFUNDED",
        "SELECT t.id AS id FROM wallet_transactions t LEFT JOIN reservations r \
           ON r.id = t.reservation_id \
         WHERE t.kind = 'REFUND' AND (r.id IS NULL OR r.status <> 'REFUNDED')",
    ),
    (
        "REFUNDED reservation without exactly one REFUND of its price",
        "SELECT r.id AS id FROM reservations r LEFT JOIN wallet_transactions t \
           ON t.reservation_id = r.id AND t.kind = 'REFUND' \
         WHERE r.status = 'REFUNDED' GROUP BY r.id, r.price \
         HAVING COUNT(t.id) <> 1 OR MAX(t.amount) <> r.price",
    ),
    (
        "HELD seat whose reservation is not a HELD reservation of that seat",
        "SELECT CONCAT(s.concert_id, '/', s.date, '/', s.number) AS id FROM seats s \
         LEFT JOIN reservations r ON r.id = s.reservation_id AND r.status = 'HELD' \
           AND r.concert_id = s.concert_id AND r.date = s.date AND r.seat_number = s.number \
         WHERE s.status = 'HELD' AND r.id IS NULL",
    ),
];

#[derive(QueryableByName)]
struct Offender {
    #[diesel(sql_type = Text)]
    id: String,
}

/// The rules broken now, each with (up to 10 of) its offending rows; empty when all hold.
pub async fn broken(conn: &mut Conn) -> Result<Vec<(&'static str, Vec<String>)>, DieselError> {
    let mut broken = Vec::new();
    for (rule, sql) in CHECKS {
        let offenders: Vec<Offender> = diesel::sql_query(sql).load(conn).await?;
        if !offenders.is_empty() {
            broken.push((rule, offenders.into_iter().take(10).map(|o| o.id).collect()));
        }
    }
    Ok(broken)
}
