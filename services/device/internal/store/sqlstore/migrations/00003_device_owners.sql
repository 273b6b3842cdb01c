-- +goose Up
-- Who owns each claimed device, projected from the data service's
-- DeviceClaimed / DeviceUnclaimed events: device alarms notify the owner.

CREATE TABLE device_owners (
    device_id         TEXT   PRIMARY KEY,
    owner_account_id  TEXT   NOT NULL,
    updated_us        BIGINT NOT NULL
);

-- +goose Down
DROP TABLE device_owners;
