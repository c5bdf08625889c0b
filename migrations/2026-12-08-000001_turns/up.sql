-- What an admission step saw of the turns running, for the estimated wait: how many tickets
-- were ACTIVE after the step, and the earliest and the latest of their deadlines (expires_at).
-- With the turn length and the active limit they say when places free up next, which the
-- admission rate alone cannot: in a cold room every turn began together, so places free up
-- together, a turn length from now.
ALTER TABLE queue_rooms
  ADD COLUMN active_count INT NOT NULL DEFAULT 0,
  ADD COLUMN first_deadline DATETIME(6) NULL,
  ADD COLUMN last_deadline DATETIME(6) NULL;

-- Admission keeps active_count from here on (only an admission step makes a ticket ACTIVE); the
-- turns running now are counted once.
UPDATE queue_rooms r SET
  active_count = (SELECT COUNT(*) FROM queue_tickets t
                  WHERE t.concert_id = r.concert_id AND t.status = 'ACTIVE'),
  first_deadline = (SELECT MIN(t.expires_at) FROM queue_tickets t
                    WHERE t.concert_id = r.concert_id AND t.status = 'ACTIVE'),
  last_deadline = (SELECT MAX(t.expires_at) FROM queue_tickets t
                   WHERE t.concert_id = r.concert_id AND t.status = 'ACTIVE');
