-- Orders: the seats a fan holds on one date, held, paid, released or refunded together. A
-- reservation is now one seat of an order; a payment pays a whole order with one ledger row.
-- Concerts get rows (seats_per_row, NULL: the whole date is one row) and a fair share per fan
-- (max_tickets_per_fan, NULL: the configured MAX_TICKETS_PER_FAN).

CREATE TABLE orders (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  user_id CHAR(36) CHARACTER SET ascii NOT NULL,
  concert_id CHAR(36) CHARACTER SET ascii NOT NULL,
  date DATE NOT NULL,
  -- HELD past held_until reads EXPIRED (database clock), as a reservation does.
  status VARCHAR(16) CHARACTER SET ascii NOT NULL,
  -- TURN: taken during a queue turn (paying needs the turn); WAITLIST: a waitlist offer.
  source VARCHAR(16) CHARACTER SET ascii NOT NULL DEFAULT 'TURN',
  -- The sum of the prices of its seats that were not released.
  total DECIMAL(14,2) NOT NULL,
  held_until DATETIME(6) NOT NULL,
  paid_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  KEY orders_user (user_id, created_at),
  KEY orders_expiry (status, held_until),
  CONSTRAINT orders_status CHECK (status IN ('HELD', 'PAID', 'RELEASED', 'EXPIRED', 'REFUNDED')),
  CONSTRAINT orders_source CHECK (source IN ('TURN', 'WAITLIST')),
  CONSTRAINT orders_total CHECK (total >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every reservation made before orders becomes an order of one seat, with the reservation's id.
INSERT INTO orders (id, user_id, concert_id, date, status, source, total, held_until, paid_at,
                    created_at, updated_at)
  SELECT r.id, r.user_id, r.concert_id, r.date,
         CASE r.status WHEN 'CANCELLED' THEN 'RELEASED' ELSE r.status END,
         'TURN', r.price, r.held_until, p.paid_at, r.created_at, r.updated_at
  FROM reservations r LEFT JOIN payments p ON p.reservation_id = r.id;

ALTER TABLE reservations ADD COLUMN order_id CHAR(36) CHARACTER SET ascii NULL AFTER id;
UPDATE reservations SET order_id = id;
ALTER TABLE reservations
  MODIFY order_id CHAR(36) CHARACTER SET ascii NOT NULL,
  ADD KEY reservations_order (order_id),
  ADD COLUMN tier VARCHAR(64) NOT NULL DEFAULT 'General' AFTER price;
-- A seat of an order shows its tier as it was sold.
UPDATE reservations r JOIN seats s
  ON s.concert_id = r.concert_id AND s.date = r.date AND s.number = r.seat_number
  SET r.tier = s.tier;

-- A payment pays an order (for the orders above: the order with the reservation's id).
ALTER TABLE payments ADD COLUMN order_id CHAR(36) CHARACTER SET ascii NULL AFTER user_id;
UPDATE payments SET order_id = reservation_id;
ALTER TABLE payments
  MODIFY order_id CHAR(36) CHARACTER SET ascii NOT NULL,
  DROP KEY payments_reservation,
  DROP COLUMN reservation_id,
  ADD UNIQUE KEY payments_order (order_id);

-- A PAYMENT ledger row names the order it paid; a REFUND row the reservation (seat) refunded.
ALTER TABLE wallet_transactions ADD COLUMN order_id CHAR(36) CHARACTER SET ascii NULL AFTER reservation_id;
UPDATE wallet_transactions SET order_id = reservation_id, reservation_id = NULL
  WHERE kind = 'PAYMENT';

-- A seat's row (from 1, nearest the stage); a concert without rows has every seat in row 1.
ALTER TABLE seats ADD COLUMN seat_row SMALLINT NOT NULL DEFAULT 1 AFTER number;

ALTER TABLE concerts
  ADD COLUMN seats_per_row SMALLINT NULL,
  ADD COLUMN max_tickets_per_fan SMALLINT NULL,
  ADD CONSTRAINT concerts_seats_per_row CHECK (seats_per_row IS NULL OR seats_per_row >= 1),
  ADD CONSTRAINT concerts_max_tickets CHECK (max_tickets_per_fan IS NULL OR max_tickets_per_fan >= 1);
