package app

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// hashClaimCode returns the stored form of a claim code. Claim codes are
// random and printed on the box, so a fast hash suffices (no password
// stretching); the serial in the input keeps equal codes of two devices
// from having equal hashes. Codes compare case-insensitively: people type
// them from a label.
func hashClaimCode(serial, code string) []byte {
	h := sha256.Sum256([]byte("comfortech-claim-v1\x00" + serial + "\x00" + strings.ToUpper(code)))
	return h[:]
}

// NewDevice describes a provisioned device for the registry.
type NewDevice struct {
	ID, Serial, Model, FirmwareVersion, ClaimCode string
}

// RegisterDevice adds a provisioned device to the registry. It is
// idempotent on the id; another device with the serial is ErrConflict.
func (a *App) RegisterDevice(ctx context.Context, n NewDevice) (Device, error) {
	now := a.clock()
	d := Device{ID: n.ID, Serial: n.Serial, Model: n.Model, FirmwareVersion: n.FirmwareVersion,
		ClaimCodeHash: hashClaimCode(n.Serial, n.ClaimCode), CreatedAt: now, UpdatedAt: now}
	err := a.inTx(ctx, func(tx Tx) error {
		ok, err := tx.InsertDevice(ctx, d)
		if err != nil || ok {
			return err
		}
		existing, err := tx.GetDevice(ctx, n.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			return conflict("serial already registered to another device")
		case err != nil:
			return err
		case existing.Serial != n.Serial:
			return conflict("device id registered with another serial")
		}
		d = existing
		return nil
	})
	return d, err
}

// UnregisterDevice removes a decommissioned device with its shares and
// state, and tells the hooks so they remove its rules and telemetry.
func (a *App) UnregisterDevice(ctx context.Context, deviceID string) error {
	err := a.inTx(ctx, func(tx Tx) error {
		d, err := tx.GetDevice(ctx, deviceID)
		if errors.Is(err, ErrNotFound) {
			return notFound("device")
		}
		if err != nil {
			return err
		}
		if d.OwnerID != "" {
			if err := a.emit(ctx, tx, TopicDeviceLifecycle, TypeDeviceUnclaimed, d.ID, &eventsv1.DeviceUnclaimed{
				DeviceId: d.ID, OwnerAccountId: d.OwnerID, Time: timestamppb.New(a.now())}); err != nil {
				return err
			}
		}
		return tx.DeleteDevice(ctx, deviceID)
	})
	if err != nil {
		return err
	}
	a.runHook(ctx, "DeviceUnclaimed", deviceID, func(ctx context.Context, h DeviceHooks) error {
		return h.DeviceUnclaimed(ctx, deviceID)
	})
	return nil
}

// RecordPresence stores a device's connection state; a last-seen time
// older than the stored one is ignored (reports may arrive out of order).
func (a *App) RecordPresence(ctx context.Context, deviceID string, online bool, lastSeen time.Time, firmware string) error {
	return a.inTx(ctx, func(tx Tx) error {
		d, err := tx.GetDevice(ctx, deviceID)
		if errors.Is(err, ErrNotFound) {
			return notFound("device")
		}
		if err != nil {
			return err
		}
		lastSeen = lastSeen.UTC().Truncate(time.Microsecond)
		if lastSeen.Before(d.LastSeen) {
			return nil
		}
		d.Online, d.LastSeen = online, lastSeen
		if firmware != "" && firmware != d.FirmwareVersion {
			d.FirmwareVersion = firmware
			d.UpdatedAt = a.clock()
		}
		return tx.UpdateDevice(ctx, d)
	})
}

// access returns deviceID as accountID sees it: the owner, a member, or
// ErrNotFound for everybody else (never revealing that it exists).
func access(ctx context.Context, q Queries, accountID, deviceID string) (DeviceView, error) {
	d, err := q.GetDevice(ctx, deviceID)
	if errors.Is(err, ErrNotFound) {
		return DeviceView{}, notFound("device")
	}
	if err != nil {
		return DeviceView{}, err
	}
	role, err := roleOf(ctx, q, d, accountID)
	if err != nil {
		return DeviceView{}, err
	}
	if role == AccessNone {
		return DeviceView{}, notFound("device")
	}
	return view(d, role), nil
}

// roleOf tells how accountID reaches d.
func roleOf(ctx context.Context, q Queries, d Device, accountID string) (AccessRole, error) {
	switch {
	case d.OwnerID == "" || accountID == "":
		return AccessNone, nil
	case d.OwnerID == accountID:
		return AccessOwner, nil
	}
	_, err := q.GetShare(ctx, d.ID, accountID)
	switch {
	case errors.Is(err, ErrNotFound):
		return AccessNone, nil
	case err != nil:
		return AccessNone, err
	}
	return AccessMember, nil
}

// view is d as seen with role. Members do not see where the device is:
// homes and rooms are the owner's.
func view(d Device, role AccessRole) DeviceView {
	if role == AccessMember {
		d.HomeID, d.RoomID = "", ""
	}
	return DeviceView{Device: d, Role: role}
}

// ownerOnly returns the device if accountID owns it: ErrNotFound when it
// cannot reach it, ErrForbidden when it is only a member.
func ownerOnly(ctx context.Context, q Queries, accountID, deviceID, what string) (Device, error) {
	v, err := access(ctx, q, accountID, deviceID)
	if err != nil {
		return Device{}, err
	}
	if v.Role != AccessOwner {
		return Device{}, forbidden("only the device's owner can " + what)
	}
	return v.Device, nil
}

// DeviceAccess reports how accountID reaches deviceID; ErrNotFound when it cannot.
func (a *App) DeviceAccess(ctx context.Context, accountID, deviceID string) (AccessRole, error) {
	v, err := access(ctx, a.store, accountID, deviceID)
	if err != nil {
		return AccessNone, err
	}
	return v.Role, nil
}

// CheckDeviceAccess answers the device service: the account's role
// (AccessNone when it cannot reach the device or the device is unknown)
// and the device's model ("" when unknown).
func (a *App) CheckDeviceAccess(ctx context.Context, accountID, deviceID string) (AccessRole, string, error) {
	d, err := a.store.GetDevice(ctx, deviceID)
	if errors.Is(err, ErrNotFound) {
		return AccessNone, "", nil
	}
	if err != nil {
		return AccessNone, "", err
	}
	role, err := roleOf(ctx, a.store, d, accountID)
	return role, d.Model, err
}

// ListDevices lists the devices accountID owns or that are shared with
// it, in claim order. The home and room filters select owned devices.
func (a *App) ListDevices(ctx context.Context, accountID string, f DeviceFilter, p PageRequest) ([]DeviceView, string, error) {
	after, limit, err := parsePage(p)
	if err != nil {
		return nil, "", err
	}
	rows, err := a.store.ListAccessibleDevices(ctx, accountID, f, after, limit)
	if err != nil {
		return nil, "", err
	}
	for i := range rows {
		rows[i] = view(rows[i].Device, rows[i].Role)
	}
	devices, next := page(rows, limit, func(v DeviceView) Cursor { return Cursor{Time: v.ClaimedAt.UnixMicro(), ID: v.ID} })
	return devices, next, nil
}

// GetDevice returns a device accountID reaches.
func (a *App) GetDevice(ctx context.Context, accountID, deviceID string) (DeviceView, error) {
	return access(ctx, a.store, accountID, deviceID)
}

// Claim is a claim request: the proof (serial and code) and where to put
// the device.
type Claim struct {
	Serial, Code, Name, HomeID, RoomID string
}

// ClaimDevice makes accountID the owner of an unclaimed device. A wrong
// serial/code pair is ErrNotFound (the same for an unknown serial) and
// every attempt counts against the account's claim limit (ErrRateLimited
// with the time to wait); a device already claimed is ErrConflict. After
// the commit the hooks receive the model's default alert rules.
func (a *App) ClaimDevice(ctx context.Context, accountID string, c Claim) (DeviceView, error) {
	if ok, wait := a.claims.allow(accountID); !ok {
		return DeviceView{}, &Error{Kind: ErrRateLimited, Msg: "too many claim attempts, try again later", RetryAfter: wait}
	}
	if c.RoomID != "" && c.HomeID == "" {
		return DeviceView{}, invalid("room_id", "needs home_id")
	}
	var (
		d        Device
		defaults []*datav1.AlertRuleTemplate
	)
	err := a.inTx(ctx, func(tx Tx) error {
		if _, err := liveAccount(ctx, tx, accountID); err != nil {
			return err
		}
		hash := hashClaimCode(c.Serial, c.Code)
		var err error
		d, err = tx.GetDeviceBySerial(ctx, c.Serial)
		if errors.Is(err, ErrNotFound) {
			// Compare anyway so an unknown serial takes as long as a wrong code.
			subtle.ConstantTimeCompare(hash, hash)
			return notFound("device")
		}
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(d.ClaimCodeHash, hash) != 1 {
			return notFound("device")
		}
		if d.OwnerID != "" {
			return conflict("device already claimed")
		}
		if c.HomeID != "" {
			if _, err := ownedHome(ctx, tx, accountID, c.HomeID); err != nil {
				return err
			}
		}
		if c.RoomID != "" {
			if _, err := ownedRoom(ctx, tx, accountID, c.HomeID, c.RoomID); err != nil {
				return err
			}
		}
		name := c.Name
		m, err := tx.GetModel(ctx, d.Model)
		switch {
		case err == nil:
			defaults = m.DefaultAlertRules
			name = cmp.Or(name, m.Title)
		case !errors.Is(err, ErrNotFound):
			return err
		}
		now := a.clock()
		d.OwnerID, d.Name, d.HomeID, d.RoomID = accountID, cmp.Or(name, d.Serial), c.HomeID, c.RoomID
		d.ClaimedAt, d.UpdatedAt = now, now
		ok, err := tx.ClaimDevice(ctx, d)
		if err != nil {
			return err
		}
		if !ok {
			return conflict("device already claimed")
		}
		return a.emit(ctx, tx, TopicDeviceLifecycle, TypeDeviceClaimed, d.ID, &eventsv1.DeviceClaimed{
			DeviceId: d.ID, OwnerAccountId: accountID, Model: d.Model, Time: timestamppb.New(now)})
	})
	if err != nil {
		return DeviceView{}, err
	}
	a.runHook(ctx, "DeviceClaimed", d.ID, func(ctx context.Context, h DeviceHooks) error {
		return h.DeviceClaimed(ctx, d.ID, accountID, defaults)
	})
	return view(d, AccessOwner), nil
}

// DevicePatch changes a device; nil fields stay as they are. An empty
// HomeID takes the device out of its home and room; a new home clears the
// room unless RoomID names one of the new home; an empty RoomID takes it
// out of its room.
type DevicePatch struct {
	Name, HomeID, RoomID *string
}

// UpdateDevice renames or moves a device. Owner only.
func (a *App) UpdateDevice(ctx context.Context, accountID, deviceID string, p DevicePatch) (DeviceView, error) {
	var d Device
	err := a.inTx(ctx, func(tx Tx) error {
		var err error
		if d, err = ownerOnly(ctx, tx, accountID, deviceID, "change it"); err != nil {
			return err
		}
		if p.Name != nil {
			d.Name = *p.Name
		}
		if p.HomeID != nil && *p.HomeID != d.HomeID {
			if *p.HomeID != "" {
				if _, err := ownedHome(ctx, tx, accountID, *p.HomeID); err != nil {
					return err
				}
			}
			d.HomeID, d.RoomID = *p.HomeID, ""
		}
		if p.RoomID != nil && *p.RoomID != d.RoomID {
			if *p.RoomID != "" {
				if d.HomeID == "" {
					return invalid("room_id", "the device is in no home")
				}
				if _, err := ownedRoom(ctx, tx, accountID, d.HomeID, *p.RoomID); err != nil {
					return err
				}
			}
			d.RoomID = *p.RoomID
		}
		d.UpdatedAt = a.clock()
		return tx.UpdateDevice(ctx, d)
	})
	if err != nil {
		return DeviceView{}, err
	}
	return view(d, AccessOwner), nil
}

// UnclaimDevice releases a device (owner only): its shares end, its
// desired state is cleared and it can be claimed again; the hooks then
// remove its alert rules and telemetry.
func (a *App) UnclaimDevice(ctx context.Context, accountID, deviceID string) error {
	err := a.inTx(ctx, func(tx Tx) error {
		d, err := ownerOnly(ctx, tx, accountID, deviceID, "unclaim it")
		if err != nil {
			return err
		}
		return a.release(ctx, tx, d, accountID, a.clock())
	})
	if err != nil {
		return err
	}
	a.runHook(ctx, "DeviceUnclaimed", deviceID, func(ctx context.Context, h DeviceHooks) error {
		return h.DeviceUnclaimed(ctx, deviceID)
	})
	return nil
}

// release unclaims d in tx: shares end, ownership and placement go, the
// desired document is emptied (with a new version, so a client's stale
// expected_version cannot match), and the events say so.
func (a *App) release(ctx context.Context, tx Tx, d Device, ownerID string, now time.Time) error {
	members, err := tx.DeleteSharesOfDevice(ctx, d.ID)
	if err != nil {
		return err
	}
	for _, m := range members {
		if err := a.emit(ctx, tx, TopicDeviceLifecycle, TypeDeviceUnshared, d.ID, &eventsv1.DeviceUnshared{
			DeviceId: d.ID, OwnerAccountId: ownerID, MemberAccountId: m, Time: timestamppb.New(now)}); err != nil {
			return err
		}
	}
	d.OwnerID, d.Name, d.HomeID, d.RoomID = "", "", "", ""
	d.ClaimedAt, d.UpdatedAt = time.Time{}, now
	if err := tx.UpdateDevice(ctx, d); err != nil {
		return err
	}
	st, err := tx.GetState(ctx, d.ID)
	if err != nil {
		return err
	}
	if len(st.Desired.Values) > 0 {
		st.Desired = Document{Values: map[string]any{}, Version: st.Desired.Version + 1,
			FieldTimes: map[string]time.Time{}, UpdatedAt: now}
		if err := tx.PutState(ctx, st); err != nil {
			return err
		}
		if err := a.emitDesired(ctx, tx, st, ownerID, now); err != nil {
			return err
		}
	}
	return a.emit(ctx, tx, TopicDeviceLifecycle, TypeDeviceUnclaimed, d.ID, &eventsv1.DeviceUnclaimed{
		DeviceId: d.ID, OwnerAccountId: ownerID, Time: timestamppb.New(now)})
}

// emitDesired enqueues DesiredStateChanged for st.
func (a *App) emitDesired(ctx context.Context, tx Tx, st DeviceState, actorID string, now time.Time) error {
	desired, err := structpb.NewStruct(st.Desired.Values)
	if err != nil {
		return err
	}
	delta, err := structpb.NewStruct(st.Delta())
	if err != nil {
		return err
	}
	return a.emit(ctx, tx, TopicDeviceLifecycle, TypeDesiredStateChanged, st.DeviceID, &eventsv1.DesiredStateChanged{
		DeviceId: st.DeviceID, Desired: desired, Version: st.Desired.Version, Delta: delta,
		ActorId: actorID, Time: timestamppb.New(now)})
}
