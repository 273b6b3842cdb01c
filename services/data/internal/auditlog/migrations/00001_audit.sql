-- +goose Up
-- The audit log: one row per AuditEvent from the `audit` topic, the whole
-- event kept as its protojson (event), the columns the filters use beside
-- it. Times are Unix microseconds, as in the core schema; the id makes
-- storing idempotent under at-least-once delivery.
CREATE TABLE audit_events (
    id            TEXT   PRIMARY KEY,
    time_us       BIGINT NOT NULL,
    actor_id      TEXT   NOT NULL,
    action        TEXT   NOT NULL,
    resource_type TEXT   NOT NULL,
    resource_id   TEXT   NOT NULL,
    event         TEXT   NOT NULL
);
-- Newest first, the whole log and by each filter.
CREATE INDEX audit_events_by_time ON audit_events (time_us, id);
CREATE INDEX audit_events_by_actor ON audit_events (actor_id, time_us, id);
CREATE INDEX audit_events_by_resource ON audit_events (resource_type, resource_id, time_us, id);
CREATE INDEX audit_events_by_action ON audit_events (action, time_us, id);

-- +goose Down
DROP TABLE audit_events;
