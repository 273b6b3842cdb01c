-- +goose Up
-- When a subscription's deliveries last started: its creation, or the
-- operator enabling it again (Unix microseconds; 0: at its creation).
-- It receives the events written from then on.
ALTER TABLE subscriptions ADD COLUMN active_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN active_at;
