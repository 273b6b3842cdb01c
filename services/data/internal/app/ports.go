package app

import (
	"context"
	"time"

	"github.com/comfortech/platform/libs/kafka"
)

// Store is the service's database. Reads outside a transaction go through
// its Queries; every change runs in InTx, together with the events it
// emits (Tx.Enqueue), so a change and its events commit together.
type Store interface {
	Queries
	// InTx runs fn in one transaction, committed when fn returns nil and
	// rolled back otherwise. On PostgreSQL the single-row getters of Tx
	// (GetAccount, GetDevice, GetState) lock the row until the end of the
	// transaction, so read-modify-write sequences do not lose updates;
	// SQLite serialises write transactions anyway.
	InTx(ctx context.Context, fn func(tx Tx) error) error
}

// Queries are the reads. Getters return an error wrapping ErrNotFound when
// the row does not exist; list methods return up to limit rows after the
// cursor, in the order their doc names.
type Queries interface {
	GetAccount(ctx context.Context, id string) (Account, error)
	// AccountByPhone finds a live (not deleted) account.
	AccountByPhone(ctx context.Context, phone string) (Account, error)
	// ListAccounts lists the live accounts matching f, newest first: by
	// (creation time, id), both descending, continuing before the cursor.
	ListAccounts(ctx context.Context, f AccountFilter, after Cursor, limit int) ([]Account, error)

	GetHome(ctx context.Context, id string) (Home, error)
	// ListHomes lists an owner's homes by (creation time, id).
	ListHomes(ctx context.Context, ownerID string, after Cursor, limit int) ([]Home, error)
	GetRoom(ctx context.Context, homeID, roomID string) (Room, error)
	// ListRooms lists a home's rooms by (creation time, id).
	ListRooms(ctx context.Context, homeID string, after Cursor, limit int) ([]Room, error)

	GetDevice(ctx context.Context, id string) (Device, error)
	GetDeviceBySerial(ctx context.Context, serial string) (Device, error)
	// ListAccessibleDevices lists the devices accountID owns or that are
	// shared with it, by (claim time, id), with the account's role.
	ListAccessibleDevices(ctx context.Context, accountID string, f DeviceFilter, after Cursor, limit int) ([]DeviceView, error)
	// ListOwnedDevices lists every device accountID owns, by id.
	ListOwnedDevices(ctx context.Context, accountID string) ([]Device, error)
	// CountDevicesOfModel counts the registry entries of a model.
	CountDevicesOfModel(ctx context.Context, modelID string) (int, error)
	// ListFleetDevices lists the registry entries matching f, by serial;
	// the cursor's ID is the last serial of the previous page.
	ListFleetDevices(ctx context.Context, f FleetFilter, after Cursor, limit int) ([]Device, error)
	// CountFleetDevices counts the registry entries matching f: exactly
	// when there are at most exactUpTo, and above that exactly or by the
	// database's estimate (never below exactUpTo+1).
	CountFleetDevices(ctx context.Context, f FleetFilter, exactUpTo int) (int64, error)

	GetShare(ctx context.Context, deviceID, accountID string) (Share, error)
	// ListShares lists a device's shares by (creation time, account id).
	ListShares(ctx context.Context, deviceID string, after Cursor, limit int) ([]Share, error)
	// ListReceivedShares lists every share of which accountID is the member.
	ListReceivedShares(ctx context.Context, accountID string) ([]Share, error)

	// GetState returns a device's state; a registered device without
	// state rows yet has empty documents.
	GetState(ctx context.Context, deviceID string) (DeviceState, error)

	GetModel(ctx context.Context, id string) (DeviceModel, error)
	// ListModels lists device models by id.
	ListModels(ctx context.Context, after Cursor, limit int) ([]DeviceModel, error)
}

// DeviceFilter narrows ListAccessibleDevices.
type DeviceFilter struct {
	HomeID string
	RoomID string
}

// FleetFilter narrows ListFleetDevices and CountFleetDevices; zero fields
// do not filter, set ones combine with AND.
type FleetFilter struct {
	Model           string
	FirmwareVersion string
	// Online and Claimed select devices that are (true) or are not
	// (false) connected, or claimed.
	Online, Claimed *bool
	OwnerID, HomeID string
	// LastSeenAfter keeps devices last seen at or after it;
	// LastSeenBefore those last seen before it or never.
	LastSeenAfter, LastSeenBefore time.Time
	// SerialPrefix keeps serials that start with it, compared byte by
	// byte (case-sensitively).
	SerialPrefix string
}

// AccountFilter narrows ListAccounts; zero fields do not filter, set ones
// combine with AND.
type AccountFilter struct {
	// Phone is an exact phone number.
	Phone string
	// Query is a case-insensitive substring of the name, e-mail or phone.
	Query string
	// Suspended keeps suspended (true) or active (false) accounts.
	Suspended *bool
}

// Tx is one transaction: the reads plus the writes.
type Tx interface {
	Queries

	// InsertAccount inserts a; it reports false (and changes nothing) when
	// the id or the phone is taken.
	InsertAccount(ctx context.Context, a Account) (bool, error)
	// UpdateAccount writes a's profile fields, suspension and update time.
	UpdateAccount(ctx context.Context, a Account) error
	// TombstoneAccount erases an account's personal data and marks it
	// deleted at the given time.
	TombstoneAccount(ctx context.Context, id string, at time.Time) error

	InsertHome(ctx context.Context, h Home) error
	UpdateHome(ctx context.Context, h Home) error
	// DeleteHome deletes a home and its rooms.
	DeleteHome(ctx context.Context, id string) error
	// DeleteHomesOf deletes every home (and room) of an owner.
	DeleteHomesOf(ctx context.Context, ownerID string) error
	// InsertRoom inserts r; ErrConflict when the home has a room of that name.
	InsertRoom(ctx context.Context, r Room) error
	// UpdateRoom renames r; ErrConflict when the name is taken in the home.
	UpdateRoom(ctx context.Context, r Room) error
	// DeleteRoom deletes a room; its devices stay in the home without one.
	DeleteRoom(ctx context.Context, id string) error
	// MoveHomeDevices moves every device of home from into home to, out of
	// their rooms.
	MoveHomeDevices(ctx context.Context, from, to string, at time.Time) error

	// InsertDevice inserts d; it reports false (and changes nothing) when
	// the id or the serial is taken.
	InsertDevice(ctx context.Context, d Device) (bool, error)
	// UpdateDevice writes d's ownership, placement, name and presence.
	UpdateDevice(ctx context.Context, d Device) error
	// ClaimDevice sets d's owner, name, placement and claim time, only if
	// the device is still unclaimed; it reports whether it was.
	ClaimDevice(ctx context.Context, d Device) (bool, error)
	// DeleteDevice removes a device with its shares and state.
	DeleteDevice(ctx context.Context, id string) error

	// InsertShare inserts s; ErrConflict when it exists.
	InsertShare(ctx context.Context, s Share) error
	// DeleteShare deletes a share and reports whether it existed.
	DeleteShare(ctx context.Context, deviceID, accountID string) (bool, error)
	// DeleteSharesOfDevice deletes every share of a device and returns the
	// former members.
	DeleteSharesOfDevice(ctx context.Context, deviceID string) ([]string, error)

	// PutState stores both documents of a device's state.
	PutState(ctx context.Context, s DeviceState) error

	// PutModel creates or replaces a device model.
	PutModel(ctx context.Context, m DeviceModel) error
	// DeleteModel deletes a device model.
	DeleteModel(ctx context.Context, id string) error

	// Enqueue adds messages to the transactional outbox.
	Enqueue(ctx context.Context, msgs ...kafka.Message) error
}
