-- +goose Up
-- Commands sent to devices and their results. Times are Unix
-- microseconds; params and result are JSON objects as text.

CREATE TABLE device_commands (
    id            TEXT   PRIMARY KEY,           -- UUID v7: time-ordered, the page cursor
    device_id     TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    params        TEXT   NOT NULL DEFAULT '{}',
    status        TEXT   NOT NULL,              -- QUEUED, SENT, SUCCEEDED, FAILED, EXPIRED
    result        TEXT   NOT NULL DEFAULT '',   -- '' until the device answers ok
    error         TEXT   NOT NULL DEFAULT '',
    requested_by  TEXT   NOT NULL,
    created_us    BIGINT NOT NULL,
    sent_us       BIGINT,
    completed_us  BIGINT,
    expires_us    BIGINT NOT NULL
);

CREATE INDEX device_commands_device ON device_commands (device_id, id);
-- The sweeper and the online hook look for open commands only.
CREATE INDEX device_commands_open ON device_commands (status, expires_us);

-- +goose Down
DROP TABLE device_commands;
