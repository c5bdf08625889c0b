ALTER TABLE concert_dates
  DROP KEY concert_dates_waitlist,
  DROP COLUMN waitlist_issued,
  DROP COLUMN waitlist_served,
  DROP COLUMN waitlist_waiting;
DROP TABLE waitlist_entries;
