ALTER TABLE users DROP COLUMN sign_in_locked_until, DROP COLUMN failed_sign_ins;
