-- +goose Up
-- Messages written in the same transaction as the state change they
-- describe; the relay sends them to Kafka in id order and deletes them.
CREATE TABLE outbox (
    id         BIGSERIAL   PRIMARY KEY,
    topic      TEXT        NOT NULL,
    key        BYTEA,
    headers    JSONB       NOT NULL DEFAULT '[]',
    value      BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE outbox;
