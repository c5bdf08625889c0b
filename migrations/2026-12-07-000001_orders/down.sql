ALTER TABLE seats DROP COLUMN seat_row;
ALTER TABLE concerts
  DROP CONSTRAINT concerts_seats_per_row,
  DROP CONSTRAINT concerts_max_tickets,
  DROP COLUMN seats_per_row,
  DROP COLUMN max_tickets_per_fan;
UPDATE wallet_transactions SET reservation_id = order_id WHERE kind = 'PAYMENT';
ALTER TABLE wallet_transactions DROP COLUMN order_id;
-- Orders of several seats have no single reservation to name: their payments go back to the
-- first seat (down migrations are for development databases).
ALTER TABLE payments ADD COLUMN reservation_id CHAR(36) CHARACTER SET ascii NULL AFTER user_id;
UPDATE payments p SET reservation_id = (SELECT MIN(r.id) FROM reservations r WHERE r.order_id = p.order_id);
ALTER TABLE payments
  DROP KEY payments_order,
  DROP COLUMN order_id,
  MODIFY reservation_id CHAR(36) CHARACTER SET ascii NOT NULL,
  ADD UNIQUE KEY payments_reservation (reservation_id);
ALTER TABLE reservations DROP KEY reservations_order, DROP COLUMN order_id, DROP COLUMN tier;
DROP TABLE orders;
