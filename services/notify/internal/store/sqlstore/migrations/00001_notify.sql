-- +goose Up
-- Times are Unix microseconds (BIGINT) and flags INTEGER 0/1, so the same
-- schema and SQL serve PostgreSQL and SQLite.
CREATE TABLE applications (
    name       TEXT PRIMARY KEY,
    doc        TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE preferences (
    account_id TEXT PRIMARY KEY,
    doc        TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE push_tokens (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL,
    platform     TEXT NOT NULL,
    token        TEXT NOT NULL UNIQUE,
    app_version  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX push_tokens_account ON push_tokens (account_id, id);
CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL,
    event_types     TEXT NOT NULL,
    enabled         INTEGER NOT NULL,
    disabled_reason TEXT NOT NULL,
    secret          TEXT NOT NULL,
    old_secret      TEXT NOT NULL,
    old_expire      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX webhooks_account ON webhooks (account_id, id);
CREATE TABLE templates (
    id          TEXT PRIMARY KEY,
    application TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    channel     TEXT NOT NULL,
    locale      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    html_body   TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (application, event_type, channel, locale)
);
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    notification_id TEXT NOT NULL,
    account_id      TEXT NOT NULL,
    application     TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    level           TEXT NOT NULL,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    masked          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    fallback        TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    source          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (notification_id, channel, recipient)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE TABLE delivery_log (
    id              TEXT PRIMARY KEY,
    delivery_id     TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    account_id      TEXT NOT NULL,
    application     TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    level           TEXT NOT NULL,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    status          TEXT NOT NULL,
    provider_status INTEGER NOT NULL,
    detail          TEXT NOT NULL,
    latency_us      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX delivery_log_time ON delivery_log (created_at, id);
CREATE INDEX delivery_log_notification ON delivery_log (notification_id);
CREATE TABLE dead_letters (
    id              TEXT PRIMARY KEY,
    topic           TEXT NOT NULL,
    key             TEXT NOT NULL,
    value           TEXT NOT NULL,
    headers         TEXT NOT NULL,
    reason          TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    replay_count    INTEGER NOT NULL,
    last_replay_at  BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX dead_letters_time ON dead_letters (created_at, id);
CREATE TABLE sink_messages (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX sink_messages_time ON sink_messages (created_at, id);

-- +goose Down
DROP TABLE sink_messages;
DROP TABLE dead_letters;
DROP TABLE delivery_log;
DROP TABLE deliveries;
DROP TABLE templates;
DROP TABLE webhooks;
DROP TABLE push_tokens;
DROP TABLE preferences;
DROP TABLE applications;
