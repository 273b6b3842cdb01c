-- +goose Up
-- One row per metric value. The primary key makes AppendTelemetry
-- idempotent on (device, seq); the covering range index serves raw queries.
-- Retention scans the table: SQLite is the single-process dev store.
CREATE TABLE telemetry_points (
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    metric TEXT NOT NULL,
    ts INTEGER NOT NULL, -- ms since the Unix epoch
    value REAL NOT NULL,
    PRIMARY KEY (device_id, seq, metric)
);
CREATE INDEX telemetry_points_range ON telemetry_points (device_id, ts, metric, value);

-- Per-minute aggregates maintained on append, so that bucketed queries at
-- whole-minute widths read 1,440 rows per metric and day instead of every
-- point.
CREATE TABLE telemetry_rollup_1m (
    device_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    bucket INTEGER NOT NULL, -- start of the minute, ms
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (device_id, bucket, metric)
);

-- Latest value of each metric of each device, updated on append.
CREATE TABLE telemetry_latest (
    device_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    ts INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (device_id, metric)
);

-- Devices with an owner, for alert notifications.
CREATE TABLE telemetry_devices (
    device_id TEXT PRIMARY KEY,
    owner_account_id TEXT NOT NULL,
    claim_time INTEGER NOT NULL
);

-- Alert rules with the state of their state machine.
CREATE TABLE alert_rules (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    name TEXT NOT NULL,
    metric TEXT NOT NULL,
    operator TEXT NOT NULL,
    threshold REAL NOT NULL,
    hysteresis REAL NOT NULL,
    min_duration_ms INTEGER NOT NULL,
    level TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    from_model_default INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    phase TEXT NOT NULL DEFAULT 'ok',
    phase_since INTEGER NOT NULL DEFAULT 0,
    phase_value REAL NOT NULL DEFAULT 0,
    last_ts INTEGER NOT NULL DEFAULT 0,
    alert_id           TEXT
);
CREATE INDEX alert_rules_device ON alert_rules (device_id, create_time, id);

-- Alerts raised by rules, with the rule as it was at raise time.
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    rule_name TEXT NOT NULL,
    metric TEXT NOT NULL,
    operator TEXT NOT NULL,
    threshold REAL NOT NULL,
    hysteresis REAL NOT NULL,
    min_duration_ms INTEGER NOT NULL,
    level TEXT NOT NULL,
    active INTEGER NOT NULL,
    raise_value REAL NOT NULL,
    raise_time INTEGER NOT NULL,
    clear_value REAL NOT NULL DEFAULT 0,
    clear_time INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX alerts_device ON alerts (device_id, raise_time DESC, id DESC);

-- +goose Down
DROP TABLE alerts;
DROP TABLE alert_rules;
DROP TABLE telemetry_devices;
DROP TABLE telemetry_latest;
DROP TABLE telemetry_rollup_1m;
DROP TABLE telemetry_points;
