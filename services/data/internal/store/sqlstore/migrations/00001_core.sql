-- +goose Up
-- One schema for PostgreSQL and SQLite: times are Unix microseconds
-- (BIGINT) so both sort and compare them identically and keyset
-- pagination needs no dialect-specific casts; JSON documents are TEXT the
-- service reads whole; hashes are hex TEXT.

CREATE TABLE accounts (
    id             TEXT    PRIMARY KEY,       -- identity provider sub
    phone          TEXT    UNIQUE,            -- E.164; NULL on tombstones
    name           TEXT    NOT NULL DEFAULT '',
    email          TEXT    NOT NULL DEFAULT '',
    locale         TEXT    NOT NULL DEFAULT 'en',
    timezone       TEXT    NOT NULL DEFAULT 'UTC',
    suspended      BOOLEAN NOT NULL DEFAULT FALSE,
    suspend_reason TEXT    NOT NULL DEFAULT '',
    created_us     BIGINT  NOT NULL,
    updated_us     BIGINT  NOT NULL,
    deleted_us     BIGINT                     -- set on the tombstone of a deleted account
);

CREATE TABLE homes (
    id         TEXT   PRIMARY KEY,
    owner_id   TEXT   NOT NULL REFERENCES accounts (id),
    name       TEXT   NOT NULL,
    timezone   TEXT   NOT NULL DEFAULT '',
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);
CREATE INDEX homes_by_owner ON homes (owner_id, created_us, id);

CREATE TABLE rooms (
    id         TEXT   PRIMARY KEY,
    home_id    TEXT   NOT NULL REFERENCES homes (id) ON DELETE CASCADE,
    name       TEXT   NOT NULL,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL,
    UNIQUE (home_id, name)
);
CREATE INDEX rooms_by_home ON rooms (home_id, created_us, id);

CREATE TABLE device_models (
    id                  TEXT   PRIMARY KEY,
    title               TEXT   NOT NULL,
    description         TEXT   NOT NULL DEFAULT '',
    metrics             TEXT   NOT NULL DEFAULT '[]', -- JSON [{name,title,unit}]
    commands            TEXT   NOT NULL DEFAULT '[]', -- JSON [name]
    default_alert_rules TEXT   NOT NULL DEFAULT '[]', -- JSON [protojson AlertRuleTemplate]
    created_us          BIGINT NOT NULL,
    updated_us          BIGINT NOT NULL
);

-- devices.model is deliberately no foreign key: the device service may
-- provision a device before its model is configured.
CREATE TABLE devices (
    id               TEXT    PRIMARY KEY,
    serial           TEXT    NOT NULL UNIQUE,
    model            TEXT    NOT NULL,
    firmware_version TEXT    NOT NULL DEFAULT '',
    claim_code_hash  TEXT    NOT NULL,         -- hex SHA-256, see app.hashClaimCode
    name             TEXT    NOT NULL DEFAULT '',
    owner_id         TEXT    REFERENCES accounts (id),
    home_id          TEXT    REFERENCES homes (id),
    room_id          TEXT    REFERENCES rooms (id) ON DELETE SET NULL,
    online           BOOLEAN NOT NULL DEFAULT FALSE,
    last_seen_us     BIGINT,
    claimed_us       BIGINT,
    created_us       BIGINT  NOT NULL,
    updated_us       BIGINT  NOT NULL
);
CREATE INDEX devices_by_owner ON devices (owner_id, claimed_us, id);
CREATE INDEX devices_by_home ON devices (home_id);
CREATE INDEX devices_by_room ON devices (room_id);
CREATE INDEX devices_by_model ON devices (model);

CREATE TABLE shares (
    device_id  TEXT   NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    account_id TEXT   NOT NULL REFERENCES accounts (id),
    created_us BIGINT NOT NULL,
    PRIMARY KEY (device_id, account_id)
);
CREATE INDEX shares_by_account ON shares (account_id);

CREATE TABLE device_states (
    device_id        TEXT   PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    desired          TEXT   NOT NULL DEFAULT '{}', -- JSON document
    desired_times    TEXT   NOT NULL DEFAULT '{}', -- JSON {key: unix micros}
    desired_version  BIGINT NOT NULL DEFAULT 0,
    desired_us       BIGINT,
    reported         TEXT   NOT NULL DEFAULT '{}',
    reported_times   TEXT   NOT NULL DEFAULT '{}',
    reported_version BIGINT NOT NULL DEFAULT 0,
    reported_us      BIGINT
);

-- +goose Down
DROP TABLE device_states;
DROP TABLE shares;
DROP TABLE devices;
DROP TABLE device_models;
DROP TABLE rooms;
DROP TABLE homes;
DROP TABLE accounts;
