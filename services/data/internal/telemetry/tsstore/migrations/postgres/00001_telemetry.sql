-- +goose Up
-- One row per metric value. The primary key makes AppendTelemetry
-- idempotent on (device, seq); the range index serves raw queries with
-- index-only scans; the BRIN index lets retention find old rows without a
-- sequential scan (rows arrive roughly in time order, so it stays tiny).
CREATE TABLE telemetry_points (
    device_id UUID             NOT NULL,
    seq       BIGINT           NOT NULL,
    metric    TEXT             NOT NULL,
    ts        BIGINT           NOT NULL, -- ms since the Unix epoch
    value     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (device_id, seq, metric)
);
CREATE INDEX telemetry_points_range ON telemetry_points (device_id, ts) INCLUDE (metric, value);
CREATE INDEX telemetry_points_ts_brin ON telemetry_points USING brin (ts);

-- Per-minute aggregates maintained on append, so that bucketed queries at
-- whole-minute widths read 1,440 rows per metric and day instead of every
-- point (a day of one device at 1M points: ~230 ms raw, 9-17 ms here, see
-- BenchmarkAggregate24hPostgres).
CREATE TABLE telemetry_rollup_1m (
    device_id UUID             NOT NULL,
    metric    TEXT             NOT NULL,
    bucket    BIGINT           NOT NULL, -- start of the minute, ms
    min       DOUBLE PRECISION NOT NULL,
    max       DOUBLE PRECISION NOT NULL,
    sum       DOUBLE PRECISION NOT NULL,
    count     BIGINT           NOT NULL,
    PRIMARY KEY (device_id, bucket, metric)
);

-- Latest value of each metric of each device, updated on append.
CREATE TABLE telemetry_latest (
    device_id UUID             NOT NULL,
    metric    TEXT             NOT NULL,
    ts        BIGINT           NOT NULL,
    value     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (device_id, metric)
);

-- Devices with an owner, for alert notifications.
CREATE TABLE telemetry_devices (
    device_id        UUID   PRIMARY KEY,
    owner_account_id TEXT   NOT NULL,
    claim_time       BIGINT NOT NULL
);

-- Alert rules with the state of their state machine.
CREATE TABLE alert_rules (
    id                 UUID             PRIMARY KEY,
    device_id          UUID             NOT NULL,
    name               TEXT             NOT NULL,
    metric             TEXT             NOT NULL,
    operator           TEXT             NOT NULL,
    threshold          DOUBLE PRECISION NOT NULL,
    hysteresis         DOUBLE PRECISION NOT NULL,
    min_duration_ms    BIGINT           NOT NULL,
    level              TEXT             NOT NULL,
    enabled            BOOLEAN          NOT NULL,
    from_model_default BOOLEAN          NOT NULL,
    create_time        BIGINT           NOT NULL,
    update_time        BIGINT           NOT NULL,
    phase              TEXT             NOT NULL DEFAULT 'ok',
    phase_since        BIGINT           NOT NULL DEFAULT 0,
    phase_value        DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_ts            BIGINT           NOT NULL DEFAULT 0,
    alert_id           UUID
);
CREATE INDEX alert_rules_device ON alert_rules (device_id, create_time, id);

-- Alerts raised by rules, with the rule as it was at raise time.
CREATE TABLE alerts (
    id              UUID             PRIMARY KEY,
    rule_id         UUID             NOT NULL,
    device_id       UUID             NOT NULL,
    rule_name       TEXT             NOT NULL,
    metric          TEXT             NOT NULL,
    operator        TEXT             NOT NULL,
    threshold       DOUBLE PRECISION NOT NULL,
    hysteresis      DOUBLE PRECISION NOT NULL,
    min_duration_ms BIGINT           NOT NULL,
    level           TEXT             NOT NULL,
    active          BOOLEAN          NOT NULL,
    raise_value     DOUBLE PRECISION NOT NULL,
    raise_time      BIGINT           NOT NULL,
    clear_value     DOUBLE PRECISION NOT NULL DEFAULT 0,
    clear_time      BIGINT           NOT NULL DEFAULT 0
);
CREATE INDEX alerts_device ON alerts (device_id, raise_time DESC, id DESC);

-- +goose Down
DROP TABLE alerts;
DROP TABLE alert_rules;
DROP TABLE telemetry_devices;
DROP TABLE telemetry_latest;
DROP TABLE telemetry_rollup_1m;
DROP TABLE telemetry_points;
