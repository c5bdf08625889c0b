-- Who may run a sale: fans (everyone who signs up) and operators (made with
-- `encore operator grant --email ...`).
ALTER TABLE users
  ADD COLUMN role VARCHAR(16) CHARACTER SET ascii NOT NULL DEFAULT 'FAN',
  ADD CONSTRAINT users_role CHECK (role IN ('FAN', 'OPERATOR'));
