-- +goose Up
-- Migration 2 is Go (sqlstore.serialBytewise): devices.serial compares
-- byte by byte in both databases.
--
-- The operators' fleet list pages by serial and filters by any
-- combination of model, firmware, presence, claim, last-seen time, owner,
-- home and serial prefix; its total counts the matches up to 10,000.
-- A page is cheap whatever the filters (the serial index in order, or
-- the index of one filter). The count is not: it visits every match, and
-- a match of one filter checked against the others in the table costs a
-- page read each. So each index of a broad filter (model, firmware,
-- presence, last seen) holds the other filters' columns too, and any
-- combination is counted from the index of its narrowest filter without
-- reading the table. Owner and home are narrow (a few devices each) and
-- keep their own indexes, devices_by_owner and devices_by_home; the serial
-- prefix is a range of the serial's unique index. BenchmarkFleetListPostgres
-- measures the result over 100,000 devices.
DROP INDEX devices_by_model;
CREATE INDEX devices_by_model ON devices (model, serial, firmware_version, online, last_seen_us, owner_id);
CREATE INDEX devices_by_firmware ON devices (firmware_version, serial, model, online, last_seen_us, owner_id);
CREATE INDEX devices_by_online ON devices (online, serial, model, firmware_version, last_seen_us, owner_id);
CREATE INDEX devices_by_last_seen ON devices (last_seen_us, serial, model, firmware_version, online, owner_id);

-- The accounts list for operators, newest first.
CREATE INDEX accounts_by_creation ON accounts (created_us, id);

-- +goose Down
DROP INDEX accounts_by_creation;
DROP INDEX devices_by_last_seen;
DROP INDEX devices_by_online;
DROP INDEX devices_by_firmware;
DROP INDEX devices_by_model;
CREATE INDEX devices_by_model ON devices (model);
