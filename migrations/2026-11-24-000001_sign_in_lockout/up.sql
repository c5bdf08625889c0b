-- Per-account sign-in backoff: wrong passwords in a row, and until when sign-in is refused.
-- Kept in the database so every instance enforces the same lockout.
ALTER TABLE users
  ADD COLUMN failed_sign_ins INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN sign_in_locked_until DATETIME(6) NULL;
