-- Each escalation step fires once per case and round (a repeating step has rounds 0, 1, …):
-- the row is inserted in the same transaction as the nudges, so a step never fires twice.
CREATE TABLE escalation_fires (
    case_id  BIGINT NOT NULL REFERENCES cases (id),
    step     BIGINT NOT NULL,
    round    BIGINT NOT NULL,
    fired_at BIGINT NOT NULL,
    PRIMARY KEY (case_id, step, round)
);

-- Temporary on-call overrides ("Priya covers until Friday 17:00").
CREATE TABLE oncall_overrides (
    rotation TEXT   NOT NULL,
    person   TEXT   NOT NULL,
    until_at BIGINT NOT NULL,
    set_by   TEXT   NOT NULL,
    set_at   BIGINT NOT NULL
);
CREATE INDEX oncall_overrides_rotation ON oncall_overrides (rotation, until_at);

-- The sweep reads only unresolved cases; with a million closed ones this keeps it small.
CREATE INDEX cases_unresolved ON cases (id) WHERE state <> 'resolved';
