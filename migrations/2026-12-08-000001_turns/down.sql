ALTER TABLE queue_rooms
  DROP COLUMN active_count,
  DROP COLUMN first_deadline,
  DROP COLUMN last_deadline;
