-- Proof-of-work for entering a waiting room. A room may require more work than the instance
-- default (raised live while a sale runs); each solved challenge can be used once.
ALTER TABLE queue_rooms ADD COLUMN pow_difficulty TINYINT UNSIGNED NULL;

CREATE TABLE queue_challenges_used (
  id CHAR(32) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  expires_at DATETIME(6) NOT NULL,
  KEY queue_challenges_used_expiry (expires_at)
) ENGINE=InnoDB;
