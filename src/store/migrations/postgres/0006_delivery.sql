-- Delivery lanes: each destination (a channel, a person's DMs) is its own lane, paced on
-- its own; inside a lane, higher priority first (1 = P1 … 4 = P4, 5 = reports).
ALTER TABLE outbox ADD COLUMN lane TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN priority BIGINT NOT NULL DEFAULT 5;
CREATE INDEX outbox_lane_pending ON outbox (lane, priority, id) WHERE status = 'pending';
CREATE INDEX outbox_case_pending ON outbox (case_id, id) WHERE status = 'pending';
-- One replica at a time sends on a lane (lease), and the lane's pacing budget (the
-- theoretical arrival time of a GCRA limiter, ms) lives here, so N replicas together keep
-- the per-channel rate.
CREATE TABLE outbox_lanes (
    lane        TEXT PRIMARY KEY,
    holder      TEXT,
    lease_until BIGINT,
    tat         BIGINT NOT NULL DEFAULT 0
);
-- A fingerprint of the card each message last showed: an update that would show the same
-- card (e.g. one a Discord click already answered with) is not sent again.
ALTER TABLE case_messages ADD COLUMN rendered TEXT;
