-- Reports read events by time (digest: recoveries and responses of a day).
CREATE INDEX case_events_action_at ON case_events (action, at);
