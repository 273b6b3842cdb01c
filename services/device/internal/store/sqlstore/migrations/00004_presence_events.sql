-- +goose Up
-- Each debounced connection change of a device, as the presence tracker
-- commits it; the latest one is the device's current presence.

CREATE TABLE presence_events (
    id         TEXT    PRIMARY KEY,   -- UUID v7: time-ordered, the page cursor
    device_id  TEXT    NOT NULL,
    online     BOOLEAN NOT NULL,
    reason     TEXT    NOT NULL,      -- CONNECTED, DISCONNECTED, ...
    at_us      BIGINT  NOT NULL
);

CREATE INDEX presence_events_device ON presence_events (device_id, id);

-- +goose Down
DROP TABLE presence_events;
