-- Running a sale without SQL: concerts made by operators (a description, a seat count per date,
-- price tiers over seat ranges), a scheduled sale with a committed seed and a pre-queue, queue
-- controls stored per room (every instance obeys them within a tick) with an audit trail, a room
-- that knows it is sold out, the admission counters the operator view and the ETA read, and
-- refunds.

ALTER TABLE concerts
  ADD COLUMN description TEXT NULL,
  ADD COLUMN seats_per_date SMALLINT NOT NULL DEFAULT 50;

-- A concert's tiers cover seats 1..seats_per_date without gap or overlap (checked on creation).
CREATE TABLE price_tiers (
  concert_id CHAR(36) CHARACTER SET ascii NOT NULL,
  from_seat SMALLINT NOT NULL,
  to_seat SMALLINT NOT NULL,
  name VARCHAR(64) NOT NULL,
  price DECIMAL(12,2) NOT NULL,
  PRIMARY KEY (concert_id, from_seat),
  CONSTRAINT price_tiers_range CHECK (from_seat >= 1 AND to_seat >= from_seat),
  CONSTRAINT price_tiers_price_positive CHECK (price > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Concerts made before tiers: one tier over all their seats.
INSERT INTO price_tiers (concert_id, from_seat, to_seat, name, price)
  SELECT id, 1, seats_per_date, 'General', price FROM concerts;

ALTER TABLE seats ADD COLUMN tier VARCHAR(64) NOT NULL DEFAULT 'General';

-- A concert's sale: entries before prequeue_opens_at are refused; from it until opens_at they
-- join a pre-queue (`prequeued` counts them); at opens_at one instance draws the pre-queue's
-- order from the seed, committed to by its SHA-256 when the sale was scheduled and published
-- once it opens. A concert an operator made has a row with no opens_at until its sale is
-- scheduled (not on sale); a concert without a row (demo data, older rows) is on sale.
CREATE TABLE sales (
  concert_id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  prequeue_opens_at DATETIME(6) NULL,
  opens_at DATETIME(6) NULL,
  seed CHAR(64) CHARACTER SET ascii NOT NULL,
  seed_commitment CHAR(64) CHARACTER SET ascii NOT NULL,
  prequeued BIGINT NOT NULL DEFAULT 0,
  drawn_at DATETIME(6) NULL,
  scheduled_by CHAR(36) CHARACTER SET ascii NOT NULL,
  scheduled_at DATETIME(6) NOT NULL,
  KEY sales_due (drawn_at, opens_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The room's live controls (NULL: the instance default), whether it closed because every seat is
-- sold, and counters for the operator view and the observed admission rate (the ETA).
ALTER TABLE queue_rooms
  ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE,
  ADD COLUMN admit_per_sec INT UNSIGNED NULL,
  ADD COLUMN active_limit INT UNSIGNED NULL,
  ADD COLUMN sold_out BOOLEAN NOT NULL DEFAULT FALSE,
  ADD COLUMN admitted_total BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN abandoned_total BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN rate_sample_at DATETIME(6) NULL,
  ADD COLUMN rate_sample_total BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN rate_prior DOUBLE NULL,
  ADD COLUMN observed_rate DOUBLE NULL;

-- Who changed a room's controls, when, and to what (NULL: left as it was).
CREATE TABLE queue_control_changes (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  concert_id CHAR(36) CHARACTER SET ascii NOT NULL,
  changed_by CHAR(36) CHARACTER SET ascii NOT NULL,
  changed_at DATETIME(6) NOT NULL,
  paused BOOLEAN NULL,
  admit_per_sec INT UNSIGNED NULL,
  active_limit INT UNSIGNED NULL,
  KEY queue_control_changes_room (concert_id, changed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A pre-queue entry has no place until the draw: it waits as PREQUEUED with a negative
-- placeholder sequence number.
ALTER TABLE queue_tickets DROP CONSTRAINT queue_tickets_status;
ALTER TABLE queue_tickets ADD CONSTRAINT queue_tickets_status
  CHECK (status IN ('PREQUEUED', 'WAITING', 'ACTIVE', 'EXPIRED', 'COMPLETED', 'ABANDONED'));

ALTER TABLE reservations DROP CONSTRAINT reservations_status;
ALTER TABLE reservations ADD CONSTRAINT reservations_status
  CHECK (status IN ('HELD', 'PAID', 'EXPIRED', 'CANCELLED', 'REFUNDED'));

ALTER TABLE wallet_transactions DROP CONSTRAINT wallet_transactions_kind;
ALTER TABLE wallet_transactions ADD CONSTRAINT wallet_transactions_kind
  CHECK (kind IN ('CHARGE', 'PAYMENT', 'REFUND'));
