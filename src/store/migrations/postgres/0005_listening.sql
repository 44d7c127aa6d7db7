-- Listening: recovery candidates (a rating that rose after the team replied) and spike alerts.
ALTER TABLE cases ADD COLUMN recovery_at BIGINT;
CREATE TABLE spike_alerts (
    scope TEXT NOT NULL,          -- "site:riverside" or "category:billing"
    raised_at BIGINT NOT NULL,    -- ms
    detail TEXT NOT NULL,         -- JSON: window count, baseline rate, factor
    PRIMARY KEY (scope, raised_at)
);
CREATE INDEX mentions_posted ON mentions (posted_at);
