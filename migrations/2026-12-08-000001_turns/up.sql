-- What an admission step saw of the turns running, for the estimated wait: how many tickets
-- were ACTIVE after the step, and the earliest and the latest of their deadlines (expires_at).
-- With the turn length and the active limit they say when places free up next, which the
-- admission rate alone cannot: in a cold room every turn began together, so places free up
-- together, a turn length from now.
ALTER TABLE queue_rooms
  ADD COLUMN active_count INT NOT NULL DEFAULT 0,
  ADD COLUMN first_deadline DATETIME(6) NULL,
  ADD COLUMN last_deadline DATETIME(6) NULL;
