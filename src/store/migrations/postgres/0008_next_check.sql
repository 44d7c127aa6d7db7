-- The escalation sweep reads only cases with something due: each unresolved case carries
-- the next time the sweep must look at it (0 = as soon as possible: new, or changed since
-- it was last looked at). A change of state, owner, situation or snooze resets it to 0.
ALTER TABLE cases ADD COLUMN next_check_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX cases_next_check ON cases (next_check_at, id) WHERE state <> 'resolved';
-- The playbook version the next checks were worked out with: a sweep under another
-- version (a reload, an edit between runs) looks at every open case again.
CREATE TABLE sweep_state (
    id               BIGINT PRIMARY KEY,
    playbook_version TEXT   NOT NULL
);
-- The digest of a past day counts the cases open at its end: the unresolved ones, and
-- the ones resolved since (a range of this index, not a scan of every case ever opened).
CREATE INDEX cases_resolved_at ON cases (resolved_at) WHERE state = 'resolved';
