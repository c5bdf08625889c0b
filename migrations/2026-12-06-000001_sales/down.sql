ALTER TABLE wallet_transactions DROP CONSTRAINT wallet_transactions_kind;
ALTER TABLE wallet_transactions ADD CONSTRAINT wallet_transactions_kind CHECK (kind IN ('CHARGE', 'PAYMENT'));
ALTER TABLE reservations DROP CONSTRAINT reservations_status;
ALTER TABLE reservations ADD CONSTRAINT reservations_status CHECK (status IN ('HELD', 'PAID', 'EXPIRED', 'CANCELLED'));
ALTER TABLE queue_tickets DROP CONSTRAINT queue_tickets_status;
ALTER TABLE queue_tickets ADD CONSTRAINT queue_tickets_status CHECK (status IN ('WAITING', 'ACTIVE', 'EXPIRED', 'COMPLETED', 'ABANDONED'));
DROP TABLE queue_control_changes;
DROP TABLE sales;
ALTER TABLE queue_rooms
  DROP COLUMN paused, DROP COLUMN admit_per_sec, DROP COLUMN active_limit,
  DROP COLUMN sold_out, DROP COLUMN admitted_total, DROP COLUMN abandoned_total,
  DROP COLUMN rate_sample_at, DROP COLUMN rate_sample_total, DROP COLUMN rate_prior, DROP COLUMN observed_rate;
ALTER TABLE seats DROP COLUMN tier;
DROP TABLE price_tiers;
ALTER TABLE concerts DROP COLUMN description, DROP COLUMN seats_per_date;
