package app

import (
	"time"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
)

// Account is a person using the platform; ID is the identity provider's sub.
type Account struct {
	ID       string
	Phone    string
	Name     string
	Email    string
	Locale   string
	Timezone string
	// Suspended and SuspendReason are set by operators (issue 7).
	Suspended     bool
	SuspendReason string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// DeletedAt is set on the tombstone left by a deletion: the row keeps
	// the id so that a late AccountRegistered cannot bring it back, and
	// nothing else.
	DeletedAt time.Time
}

// Deleted reports whether the account is a deletion tombstone.
func (a Account) Deleted() bool { return !a.DeletedAt.IsZero() }

// Home is a place owned by one account that groups devices.
type Home struct {
	ID          string
	OwnerID     string
	Name        string
	Timezone    string
	DeviceCount int
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Room is a part of a home.
type Room struct {
	ID          string
	HomeID      string
	Name        string
	DeviceCount int
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// AccessRole is how an account reaches a device.
type AccessRole int

// The access roles; AccessNone is the zero value.
const (
	AccessNone AccessRole = iota
	// AccessOwner claimed the device: read, command, rename, share, unclaim.
	AccessOwner
	// AccessMember had the device shared with them: read and command.
	AccessMember
)

// Device is a registry entry.
type Device struct {
	ID              string
	Serial          string
	Model           string
	FirmwareVersion string
	// ClaimCodeHash is the SHA-256 of the claim code (see hashClaimCode);
	// never leaves the service.
	ClaimCodeHash []byte
	Name          string
	// OwnerID is empty while the device is unclaimed.
	OwnerID   string
	HomeID    string
	RoomID    string
	Online    bool
	LastSeen  time.Time
	ClaimedAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DeviceView is a device as one account sees it.
type DeviceView struct {
	Device
	// Role is how the viewing account reaches the device.
	Role AccessRole
}

// Share grants a member access to a device.
type Share struct {
	DeviceID  string
	AccountID string
	// MemberPhone and MemberName describe the member (read only).
	MemberPhone string
	MemberName  string
	CreatedAt   time.Time
}

// Document is one side (desired or reported) of a device's state.
type Document struct {
	// Values is the JSON document (values as encoding/json decodes them).
	Values map[string]any
	// Version counts the changes; 0 when never written.
	Version int64
	// FieldTimes tells when each top-level key last changed.
	FieldTimes map[string]time.Time
	// UpdatedAt is when the document last changed.
	UpdatedAt time.Time
}

// DeviceState is a device's desired and reported documents.
type DeviceState struct {
	DeviceID string
	Desired  Document
	Reported Document
}

// Delta returns the desired keys whose value differs from the reported
// one, with the desired value: what still has to reach the device.
func (s DeviceState) Delta() map[string]any {
	d := map[string]any{}
	for k, v := range s.Desired.Values {
		if r, ok := s.Reported.Values[k]; !ok || !jsonEqual(v, r) {
			d[k] = v
		}
	}
	return d
}

// MetricSpec describes one metric a device model reports.
type MetricSpec struct {
	Name  string `json:"name"`
	Title string `json:"title,omitempty"`
	Unit  string `json:"unit,omitempty"`
}

// DeviceModel is a kind of device.
type DeviceModel struct {
	ID          string
	Title       string
	Description string
	Metrics     []MetricSpec
	Commands    []string
	// DefaultAlertRules are copied to every device of the model when it is
	// claimed (by the telemetry engine through DeviceHooks). They stay
	// protobuf messages: the alert-rule condition belongs to the telemetry engine.
	DefaultAlertRules []*datav1.AlertRuleTemplate
	CreatedAt         time.Time
	UpdatedAt         time.Time
}
