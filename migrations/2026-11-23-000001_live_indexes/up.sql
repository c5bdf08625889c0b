-- Live updates read "tickets of this concert changed since the last tick" once per tick.
CREATE INDEX queue_tickets_changes ON queue_tickets (concert_id, updated_at);
