-- Snooze: escalation steps and nudges of a case pause until this time (ms). SLA due
-- times never move; snoozes are recorded as events.
ALTER TABLE cases ADD COLUMN snoozed_until BIGINT;
