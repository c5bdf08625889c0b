-- The waitlist of a sold-out date: fans join in order; seats that free up (a lapsed hold, a
-- release, a refund) are offered to the first entry they can fill, as an order HELD until
-- offer_expires_at; only when no entry waits do freed seats go back on sale.
CREATE TABLE waitlist_entries (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  concert_id CHAR(36) CHARACTER SET ascii NOT NULL,
  date DATE NOT NULL,
  user_id CHAR(36) CHARACTER SET ascii NOT NULL,
  -- Join order within the date.
  seq BIGINT NOT NULL,
  seat_count SMALLINT NOT NULL,
  -- OFFERED past offer_expires_at reads EXPIRED (database clock).
  status VARCHAR(16) CHARACTER SET ascii NOT NULL,
  order_id CHAR(36) CHARACTER SET ascii NULL,
  offer_expires_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  UNIQUE KEY waitlist_seq (concert_id, date, seq),
  KEY waitlist_status (concert_id, date, status, seq),
  KEY waitlist_user (user_id, created_at),
  KEY waitlist_order (order_id),
  KEY waitlist_changes (updated_at),
  CONSTRAINT waitlist_status CHECK (status IN ('WAITING', 'OFFERED', 'ACCEPTED', 'EXPIRED', 'LEFT')),
  CONSTRAINT waitlist_count CHECK (seat_count >= 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Per date: the last seq handed out, how far the line has been served in order (every entry at
-- or below it is no longer WAITING, so a waiting entry's position is seq - served - 1, O(1) and
-- never increasing), and how many entries wait (while any does, freed seats go to them first).
ALTER TABLE concert_dates
  ADD COLUMN waitlist_issued BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN waitlist_served BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN waitlist_waiting INT NOT NULL DEFAULT 0,
  ADD KEY concert_dates_waitlist (waitlist_waiting);
