ALTER TABLE users
  ADD COLUMN failed_sign_ins INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN sign_in_locked_until DATETIME(6) NULL;
DROP TABLE sign_in_failures;
ALTER TABLE users MODIFY email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL;
