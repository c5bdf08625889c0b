-- E-mails are compared byte for byte. The application normalises them once at the edge (NFKC,
-- lower case, invisible characters refused: `Email::parse`); the database must add no
-- equivalences of its own (utf8mb4_unicode_ci made 'áccount@…' and 'account@…' one account
-- while the rate limits counted them apart). Rows distinct under the old collation stay
-- distinct under this one, so the unique index cannot fail here. Rows stored before
-- normalisation existed are rewritten by the application right after this migration
-- (`accounts::normalise_stored_emails`), which reports collisions and merges nothing.
ALTER TABLE users MODIFY email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;

-- Wrong passwords in a row, per e-mail *and* client address (`subject` is the SHA-256 of the
-- two), for known and unknown e-mails alike: the lockout no longer tells whether an account
-- exists, and an attacker elsewhere cannot lock the owner out. Replaces the per-account
-- counters on `users`.
CREATE TABLE sign_in_failures (
  subject CHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  failures INT UNSIGNED NOT NULL,
  locked_until DATETIME(6) NULL,
  updated_at DATETIME(6) NOT NULL,
  KEY sign_in_failures_updated (updated_at)
) ENGINE=InnoDB;

ALTER TABLE users DROP COLUMN sign_in_locked_until, DROP COLUMN failed_sign_ins;
