package app

import (
	"context"
	"time"
)

// Credential is what the device service keeps about a provisioned device:
// who it is and the hashes of the secrets that open its MQTT account.
type Credential struct {
	// DeviceID is the device id (UUID v7): MQTT client id and username.
	DeviceID string
	// Serial is the serial number, unique.
	Serial string
	// Model is the device model id.
	Model string
	// SecretHash is the stored hash of the current secret (secret.Hash); empty
	// after a revoke.
	SecretHash string
	// OldSecretHash is the previous secret's hash during a rotation's grace
	// period, and OldSecretExpiresAt when it stops working.
	OldSecretHash      string
	OldSecretExpiresAt time.Time
	// RevokedAt is when the secret was revoked; zero if it is not.
	RevokedAt time.Time
	// CreatedAt and UpdatedAt are the row's times.
	CreatedAt, UpdatedAt time.Time
}

// Store keeps the credentials.
type Store interface {
	// InsertCredentials inserts cs all or nothing; a serial or id already
	// present fails with an *ItemError (naming the first such item)
	// wrapping ErrConflict.
	InsertCredentials(ctx context.Context, cs []Credential) error
	// GetCredential returns a device's credential or an error wrapping
	// ErrNotFound.
	GetCredential(ctx context.Context, deviceID string) (Credential, error)
	// UpdateSecrets writes c's secret fields (SecretHash, OldSecretHash,
	// OldSecretExpiresAt, RevokedAt, UpdatedAt); ErrNotFound if the row is
	// gone.
	UpdateSecrets(ctx context.Context, c Credential) error
	// DeleteCredentials deletes the rows of ids; missing ones are ignored.
	DeleteCredentials(ctx context.Context, ids ...string) error
}

// NewDevice is a device to register in the data service.
type NewDevice struct {
	ID, Serial, Model, FirmwareVersion, ClaimCode string
}

// Registry is the data service's device registry.
type Registry interface {
	// RegisterDevice adds a device; idempotent on its id. A serial taken by
	// another device fails with ErrConflict; an unreachable service with
	// ErrUnavailable.
	RegisterDevice(ctx context.Context, d NewDevice) error
	// UnregisterDevice removes a device with its data; a device that is not
	// registered is not an error.
	UnregisterDevice(ctx context.Context, deviceID string) error
}

// Broker mirrors credential changes into a broker that keeps its own
// accounts (Mosquitto's dynamic security). The embedded broker asks the
// service instead and needs none (NopBroker).
type Broker interface {
	// AddDevice creates the device's account with its secret and ACLs.
	AddDevice(ctx context.Context, deviceID, secret string) error
	// SetSecret replaces the device's password (and enables the account).
	SetSecret(ctx context.Context, deviceID, secret string) error
	// DisableDevice refuses the device's connections and drops its session.
	DisableDevice(ctx context.Context, deviceID string) error
	// RemoveDevice deletes the device's account and ACLs.
	RemoveDevice(ctx context.Context, deviceID string) error
}

// NopBroker is the Broker of brokers that ask BrokerAuthService.
type NopBroker struct{}

// AddDevice implements Broker.
func (NopBroker) AddDevice(context.Context, string, string) error { return nil }

// SetSecret implements Broker.
func (NopBroker) SetSecret(context.Context, string, string) error { return nil }

// DisableDevice implements Broker.
func (NopBroker) DisableDevice(context.Context, string) error { return nil }

// RemoveDevice implements Broker.
func (NopBroker) RemoveDevice(context.Context, string) error { return nil }

// OwnerStore keeps who owns each claimed device, as the data service's
// claim events tell it.
type OwnerStore interface {
	// SetOwner records accountID as the owner of deviceID.
	SetOwner(ctx context.Context, deviceID, accountID string, at time.Time) error
	// ClearOwner forgets the owner of deviceID if it is accountID (a later
	// claim by someone else is kept).
	ClearOwner(ctx context.Context, deviceID, accountID string) error
	// Owner returns the owner of deviceID, "" if it is unclaimed.
	Owner(ctx context.Context, deviceID string) (string, error)
}
