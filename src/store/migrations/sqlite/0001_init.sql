-- carebot schema, SQLite flavour. Times are UTC epoch milliseconds (BIGINT); flags are 0/1.
CREATE TABLE mentions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT    NOT NULL,
    external_id   TEXT    NOT NULL,
    url           TEXT,
    author        TEXT,
    text          TEXT,
    rating        DOUBLE PRECISION,
    posted_at     BIGINT  NOT NULL,
    received_at   BIGINT  NOT NULL,
    location_hint TEXT,
    visibility    TEXT    NOT NULL,
    forwarded_by  TEXT,
    confidential  BIGINT  NOT NULL DEFAULT 0,
    case_id       BIGINT,
    revision      BIGINT  NOT NULL DEFAULT 0,
    purged_at     BIGINT,
    UNIQUE (source, external_id)
);

CREATE TABLE cases (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    mention_id        BIGINT  NOT NULL REFERENCES mentions (id),
    state             TEXT    NOT NULL,
    owner             TEXT,
    outcome           TEXT,
    situation         TEXT    NOT NULL,
    priority          TEXT    NOT NULL,
    channel           TEXT    NOT NULL,
    site              TEXT,
    categories        TEXT    NOT NULL DEFAULT '',
    sentiment         TEXT    NOT NULL,
    sentiment_score   DOUBLE PRECISION NOT NULL DEFAULT 0,
    risk              BIGINT  NOT NULL DEFAULT 0,
    urgent            BIGINT  NOT NULL DEFAULT 0,
    spam              BIGINT  NOT NULL DEFAULT 0,
    positive          BIGINT  NOT NULL DEFAULT 0,
    confidential      BIGINT  NOT NULL DEFAULT 0,
    escalation_level  BIGINT  NOT NULL DEFAULT 0,
    reasons           TEXT    NOT NULL DEFAULT '[]',
    opened_at         BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    claimed_at        BIGINT,
    first_response_at BIGINT,
    resolved_at       BIGINT,
    ack_due           BIGINT,
    response_due      BIGINT,
    follow_up_due     BIGINT,
    resolve_due       BIGINT,
    version           BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX cases_state_opened ON cases (state, opened_at);
CREATE INDEX cases_owner ON cases (owner, state);
CREATE INDEX cases_opened ON cases (opened_at);

CREATE TABLE case_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id BIGINT NOT NULL REFERENCES cases (id),
    at      BIGINT NOT NULL,
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    detail  TEXT   NOT NULL DEFAULT '{}'
);
CREATE INDEX case_events_case ON case_events (case_id, id);

-- Chat messages that show a case (its card in each channel), per chat surface.
CREATE TABLE case_messages (
    case_id     BIGINT NOT NULL REFERENCES cases (id),
    surface     TEXT   NOT NULL,
    channel     TEXT   NOT NULL,
    message_ref TEXT   NOT NULL,
    posted_at   BIGINT NOT NULL,
    PRIMARY KEY (case_id, surface, channel)
);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id         BIGINT,
    op              TEXT   NOT NULL,
    payload         TEXT   NOT NULL,
    status          TEXT   NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE job_runs (
    job          TEXT   NOT NULL,
    scheduled_at BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    status       TEXT   NOT NULL,
    detail       TEXT,
    PRIMARY KEY (job, scheduled_at)
);

CREATE TABLE source_cursors (
    source          TEXT PRIMARY KEY,
    cursor          TEXT,
    last_success_at BIGINT,
    last_error      TEXT,
    last_error_at   BIGINT,
    updated_at      BIGINT NOT NULL
);
