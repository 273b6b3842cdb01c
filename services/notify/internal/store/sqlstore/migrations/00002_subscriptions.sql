-- +goose Up
-- Event subscriptions: an operator's URL receiving the platform's events.
-- auth is the JSON of app.WebhookAuth ('' for none) and holds secrets, as
-- secret and old_secret do: deliveries are signed and authenticated with
-- them, so they cannot be hashed.
CREATE TABLE subscriptions (
    name            TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    topics          TEXT NOT NULL,
    filters         TEXT NOT NULL,
    auth            TEXT NOT NULL,
    enabled         INTEGER NOT NULL,
    disabled_reason TEXT NOT NULL,
    secret          TEXT NOT NULL,
    old_secret      TEXT NOT NULL,
    old_expire      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
-- An event delivery names its subscription and the topic of its event;
-- its log entries name the subscription, so the log tells them apart.
ALTER TABLE deliveries ADD COLUMN subscription TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN topic TEXT NOT NULL DEFAULT '';
ALTER TABLE delivery_log ADD COLUMN subscription TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE delivery_log DROP COLUMN subscription;
ALTER TABLE deliveries DROP COLUMN topic;
ALTER TABLE deliveries DROP COLUMN subscription;
DROP TABLE subscriptions;
