-- +goose Up
-- Migration 2 is Go (sqlstore.serialBytewise): devices.serial compares
-- byte by byte in both databases.
--
-- The operators' fleet list pages by serial and filters by any
-- combination of model, firmware, presence, owner, home, claim, last-seen
-- time and serial prefix. Each index below serves one filter in serial
-- order, so a page is a range scan that stops after the page, and its
-- total (counted up to 10,000) reads the index rather than the table.
-- Owner (and claimed/unclaimed: owner_id IS [NOT] NULL) and home use
-- devices_by_owner and devices_by_home; the serial prefix the serial's
-- own unique index.
DROP INDEX devices_by_model;
CREATE INDEX devices_by_model ON devices (model, serial);
CREATE INDEX devices_by_firmware ON devices (firmware_version, serial);
CREATE INDEX devices_by_online ON devices (online, serial);
CREATE INDEX devices_by_last_seen ON devices (last_seen_us);

-- The accounts list for operators, newest first.
CREATE INDEX accounts_by_creation ON accounts (created_us, id);

-- +goose Down
DROP INDEX accounts_by_creation;
DROP INDEX devices_by_last_seen;
DROP INDEX devices_by_online;
DROP INDEX devices_by_firmware;
DROP INDEX devices_by_model;
CREATE INDEX devices_by_model ON devices (model);
