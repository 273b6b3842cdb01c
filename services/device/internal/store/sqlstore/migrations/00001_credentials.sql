-- +goose Up
-- One schema for PostgreSQL and SQLite: times are Unix microseconds
-- (BIGINT); secret hashes are argon2id PHC strings.

CREATE TABLE device_credentials (
    device_id          TEXT   PRIMARY KEY,          -- UUID v7: MQTT client id and username
    serial             TEXT   NOT NULL UNIQUE,
    model              TEXT   NOT NULL,
    secret_hash        TEXT   NOT NULL DEFAULT '',  -- '' after a revoke
    old_secret_hash    TEXT   NOT NULL DEFAULT '',  -- previous secret during a rotation's grace period
    old_secret_exp_us  BIGINT,
    revoked_us         BIGINT,
    created_us         BIGINT NOT NULL,
    updated_us         BIGINT NOT NULL
);

-- +goose Down
DROP TABLE device_credentials;
