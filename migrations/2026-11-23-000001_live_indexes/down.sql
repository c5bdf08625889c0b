DROP INDEX queue_tickets_changes ON queue_tickets;
