-- +goose Up
-- Messages written in the same transaction as the state change they
-- describe; the relay sends them to Kafka in id order and deletes them.
-- AUTOINCREMENT: ids never go backwards, even after the table empties.
CREATE TABLE outbox (
    id         INTEGER  PRIMARY KEY AUTOINCREMENT,
    topic      TEXT     NOT NULL,
    key        BLOB,
    headers    TEXT     NOT NULL DEFAULT '[]',
    value      BLOB,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- +goose Down
DROP TABLE outbox;
