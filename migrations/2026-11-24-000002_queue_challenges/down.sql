DROP TABLE queue_challenges_used;
ALTER TABLE queue_rooms DROP COLUMN pow_difficulty;
