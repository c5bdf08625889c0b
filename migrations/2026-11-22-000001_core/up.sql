-- Core tables. No foreign keys on purpose: they take shared locks on parent rows (a source of
-- deadlocks under on-sale load) and several MySQL-compatible distributed engines restrict them.
-- The domain layer guarantees referential integrity; ids are UUIDs made by the application.
-- All DATETIME(6) columns hold UTC written from the database clock (UTC_TIMESTAMP(6)).

CREATE TABLE users (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  username VARCHAR(32) NOT NULL,
  email VARCHAR(254) NOT NULL,
  password_hash VARCHAR(255) NOT NULL,
  balance DECIMAL(14,2) NOT NULL DEFAULT 0.00,
  created_at DATETIME(6) NOT NULL,
  UNIQUE KEY users_username (username),
  UNIQUE KEY users_email (email),
  CONSTRAINT users_balance_not_negative CHECK (balance >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE concerts (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  title VARCHAR(200) NOT NULL,
  venue VARCHAR(200) NOT NULL,
  price DECIMAL(12,2) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  CONSTRAINT concerts_price_positive CHECK (price > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE concert_dates (
  concert_id CHAR(36) CHARACTER SET ascii NOT NULL,
  date DATE NOT NULL,
  PRIMARY KEY (concert_id, date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per seat and date. The row is the unit of contention: a conditional UPDATE on it decides
-- who holds the seat. An expired hold (HELD with held_until in the past) counts as AVAILABLE.
CREATE TABLE seats (
  concert_id CHAR(36) CHARACTER SET ascii NOT NULL,
  date DATE NOT NULL,
  number SMALLINT NOT NULL,
  price DECIMAL(12,2) NOT NULL,
  status VARCHAR(16) CHARACTER SET ascii NOT NULL DEFAULT 'AVAILABLE',
  held_by CHAR(36) CHARACTER SET ascii NULL,
  held_until DATETIME(6) NULL,
  reservation_id CHAR(36) CHARACTER SET ascii NULL,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (concert_id, date, number),
  KEY seats_expiry (status, held_until),
  KEY seats_changes (concert_id, date, updated_at),
  CONSTRAINT seats_status CHECK (status IN ('AVAILABLE', 'HELD', 'SOLD'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- History of every hold; rows are never deleted. HELD past held_until reads as EXPIRED.
CREATE TABLE reservations (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  user_id CHAR(36) CHARACTER SET ascii NOT NULL,
  concert_id CHAR(36) CHARACTER SET ascii NOT NULL,
  date DATE NOT NULL,
  seat_number SMALLINT NOT NULL,
  price DECIMAL(12,2) NOT NULL,
  status VARCHAR(16) CHARACTER SET ascii NOT NULL,
  held_until DATETIME(6) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  KEY reservations_user (user_id, created_at),
  KEY reservations_user_date (user_id, concert_id, date, status),
  KEY reservations_expiry (status, held_until),
  KEY reservations_seat (concert_id, date, seat_number),
  CONSTRAINT reservations_status CHECK (status IN ('HELD', 'PAID', 'EXPIRED', 'CANCELLED'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The wallet ledger: every balance change is one row, written in the transaction that changes
-- users.balance, so balance = SUM(amount) per user at every commit.
CREATE TABLE wallet_transactions (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  user_id CHAR(36) CHARACTER SET ascii NOT NULL,
  kind VARCHAR(16) CHARACTER SET ascii NOT NULL,
  amount DECIMAL(14,2) NOT NULL,
  balance_after DECIMAL(14,2) NOT NULL,
  reservation_id CHAR(36) CHARACTER SET ascii NULL,
  created_at DATETIME(6) NOT NULL,
  KEY wallet_transactions_user (user_id, created_at),
  CONSTRAINT wallet_transactions_kind CHECK (kind IN ('CHARGE', 'PAYMENT')),
  CONSTRAINT wallet_transactions_balance CHECK (balance_after >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE payments (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  user_id CHAR(36) CHARACTER SET ascii NOT NULL,
  reservation_id CHAR(36) CHARACTER SET ascii NOT NULL,
  wallet_transaction_id CHAR(36) CHARACTER SET ascii NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  paid_at DATETIME(6) NOT NULL,
  UNIQUE KEY payments_reservation (reservation_id),
  KEY payments_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- First result of each (user, key): a repeat returns result_id, a different request is refused.
CREATE TABLE idempotency_keys (
  user_id CHAR(36) CHARACTER SET ascii NOT NULL,
  idem_key VARCHAR(128) NOT NULL,
  operation VARCHAR(16) CHARACTER SET ascii NOT NULL,
  fingerprint VARCHAR(255) NOT NULL,
  result_id CHAR(36) CHARACTER SET ascii NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (user_id, idem_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One waiting room per concert. issued = last sequence number handed out; admitted_seq = how far
-- admission has walked (every ticket at or below it is no longer WAITING). A waiting ticket's
-- position is seq - admitted_seq - 1: O(1) and never increasing.
-- admit_clock drives the global admission rate (a GCRA/token bucket on the database clock);
-- last_tick_at lets one instance per tick do the work.
CREATE TABLE queue_rooms (
  concert_id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  issued BIGINT NOT NULL DEFAULT 0,
  admitted_seq BIGINT NOT NULL DEFAULT 0,
  admit_clock DATETIME(6) NULL,
  last_tick_at DATETIME(6) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE queue_tickets (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  token CHAR(43) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id CHAR(36) CHARACTER SET ascii NOT NULL,
  concert_id CHAR(36) CHARACTER SET ascii NOT NULL,
  seq BIGINT NOT NULL,
  status VARCHAR(16) CHARACTER SET ascii NOT NULL,
  last_seen_at DATETIME(6) NOT NULL,
  activated_at DATETIME(6) NULL,
  expires_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  UNIQUE KEY queue_tickets_token (token),
  UNIQUE KEY queue_tickets_seq (concert_id, seq),
  KEY queue_tickets_active (concert_id, status, expires_at),
  KEY queue_tickets_user (user_id, concert_id, status),
  CONSTRAINT queue_tickets_status
    CHECK (status IN ('WAITING', 'ACTIVE', 'EXPIRED', 'COMPLETED', 'ABANDONED'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
