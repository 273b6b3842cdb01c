package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// PresenceReason says why a device's connection state changed.
type PresenceReason string

// The presence reasons the tracker can tell apart.
const (
	// ReasonConnected: the device published `online`.
	ReasonConnected PresenceReason = "CONNECTED"
	// ReasonDisconnected: `offline` arrived (a clean disconnect or the last
	// will: the payload cannot tell them apart).
	ReasonDisconnected PresenceReason = "DISCONNECTED"
)

// PresenceEvent is one committed connection change of a device.
type PresenceEvent struct {
	// ID is the event id (UUID v7).
	ID string
	// DeviceID is the device.
	DeviceID string
	// Online is the new state, Reason why.
	Online bool
	Reason PresenceReason
	// At is when the status message arrived.
	At time.Time
}

// Presence is a device's current connection state.
type Presence struct {
	// DeviceID is the device.
	DeviceID string
	// Online is the state; Reason and Since tell why and since when (zero
	// when no change was ever seen).
	Online bool
	Reason PresenceReason
	Since  time.Time
	// LastSeen is when the device was last heard from: now when it is
	// connected (the broker holds its keepalive), Since otherwise.
	LastSeen time.Time
}

// PresenceStore keeps the presence history.
type PresenceStore interface {
	// InsertPresenceEvent stores a change.
	InsertPresenceEvent(ctx context.Context, e PresenceEvent) error
	// LatestPresenceEvent returns a device's newest change; false if none.
	LatestPresenceEvent(ctx context.Context, deviceID string) (PresenceEvent, bool, error)
	// ListPresenceEvents returns up to limit changes of a device, newest
	// first, at or after start and before end (each when not zero), with
	// ids below beforeID when it is set.
	ListPresenceEvents(ctx context.Context, deviceID string, start, end time.Time, beforeID string, limit int) ([]PresenceEvent, error)
}

// Presence page sizes (the API's).
const (
	DefaultPresencePage = 100
	MaxPresencePage     = 1000
)

// PresenceHistory is the presence use cases.
type PresenceHistory struct {
	store   PresenceStore
	devices Store
	access  Access
}

// NewPresenceHistory returns the presence use cases.
func NewPresenceHistory(store PresenceStore, devices Store, access Access) *PresenceHistory {
	return &PresenceHistory{store: store, devices: devices, access: access}
}

// Record stores a committed change (the presence tracker's hook).
func (p *PresenceHistory) Record(ctx context.Context, deviceID string, online bool, reason PresenceReason, at time.Time) error {
	return p.store.InsertPresenceEvent(ctx, PresenceEvent{ID: uuid.Must(uuid.NewV7()).String(), DeviceID: deviceID,
		Online: online, Reason: reason, At: at.UTC()})
}

// Get returns the current presence of a device the caller may see.
func (p *PresenceHistory) Get(ctx context.Context, caller Caller, deviceID string) (Presence, error) {
	if err := authorize(ctx, p.devices, p.access, caller, deviceID); err != nil {
		return Presence{}, err
	}
	e, ok, err := p.store.LatestPresenceEvent(ctx, deviceID)
	if err != nil || !ok {
		return Presence{DeviceID: deviceID}, err
	}
	out := Presence{DeviceID: deviceID, Online: e.Online, Reason: e.Reason, Since: e.At, LastSeen: e.At}
	if e.Online {
		out.LastSeen = time.Now().UTC()
	}
	return out, nil
}

// List returns a page of a device's changes, newest first, and the token
// of the next page ("" on the last).
func (p *PresenceHistory) List(ctx context.Context, caller Caller, deviceID string, start, end time.Time, pageSize int, pageToken string) ([]PresenceEvent, string, error) {
	switch {
	case pageSize < 0 || pageSize > MaxPresencePage:
		return nil, "", invalid("page_size", fmt.Sprintf("must be between 0 and %d", MaxPresencePage))
	case pageToken != "" && uuid.Validate(pageToken) != nil:
		return nil, "", invalid("page_token", "invalid")
	case !start.IsZero() && !end.IsZero() && !end.After(start):
		return nil, "", invalid("end_time", "must be after start_time")
	}
	if err := authorize(ctx, p.devices, p.access, caller, deviceID); err != nil {
		return nil, "", err
	}
	if pageSize == 0 {
		pageSize = DefaultPresencePage
	}
	es, err := p.store.ListPresenceEvents(ctx, deviceID, start, end, pageToken, pageSize+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(es) > pageSize {
		es = es[:pageSize]
		next = es[pageSize-1].ID
	}
	return es, next, nil
}

// authorize checks that caller may reach deviceID: an operator any
// provisioned device, a user a device they own or are a member of. Any
// other device is NOT_FOUND, so its existence is not revealed.
func authorize(ctx context.Context, devices Store, access Access, caller Caller, deviceID string) error {
	if caller.Operator {
		if _, err := devices.GetCredential(ctx, deviceID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return notFound("device")
			}
			return err
		}
		return nil
	}
	role, err := access.DeviceAccess(ctx, deviceID, caller.AccountID)
	if err != nil {
		return err
	}
	if role != AccessOwner && role != AccessMember {
		return notFound("device")
	}
	return nil
}
