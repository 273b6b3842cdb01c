package app

import (
	"context"
	"errors"
	"regexp"
	"time"
)

// FleetExactTotal is how many matches the fleet list counts exactly; above
// it the total may be the database's estimate (the proto allows it), so
// the count's cost does not grow with the fleet.
const FleetExactTotal = 10_000

// serialChars are the characters a serial may contain (the protos'
// serial pattern without its length).
var serialChars = regexp.MustCompile(`^[A-Za-z0-9-]*$`)

// FleetPage is one page of the fleet list.
type FleetPage struct {
	Devices []Device
	// Next is the token of the next page, "" on the last one.
	Next string
	// Total is the number of matching devices: exact up to
	// FleetExactTotal, possibly an estimate above.
	Total int64
}

// ListFleetDevices lists the registry for operators: every device
// matching f, by serial, with the number of matches.
func (a *App) ListFleetDevices(ctx context.Context, f FleetFilter, p PageRequest) (FleetPage, error) {
	after, limit, err := ParsePage(p, DefaultFleetPageSize, MaxFleetPageSize)
	if err != nil {
		return FleetPage{}, err
	}
	if !serialChars.MatchString(f.SerialPrefix) {
		return FleetPage{}, invalid("serial_prefix", "may contain only letters, digits and hyphens")
	}
	// Stored times are whole microseconds: rounding the bounds up keeps
	// "at or after" and "before" exact.
	f.LastSeenAfter, f.LastSeenBefore = ceilMicro(f.LastSeenAfter), ceilMicro(f.LastSeenBefore)
	if !f.LastSeenAfter.IsZero() && !f.LastSeenBefore.IsZero() && !f.LastSeenAfter.Before(f.LastSeenBefore) {
		return FleetPage{}, invalid("last_seen_before", "must be later than last_seen_after")
	}
	rows, err := a.store.ListFleetDevices(ctx, f, after, limit)
	if err != nil {
		return FleetPage{}, err
	}
	devices, next := page(rows, limit, func(d Device) Cursor { return Cursor{ID: d.Serial} })
	if after.IsZero() && next == "" {
		// The first page holds every match: nothing more to count.
		return FleetPage{Devices: devices, Total: int64(len(devices))}, nil
	}
	total, err := a.store.CountFleetDevices(ctx, f, FleetExactTotal)
	if err != nil {
		return FleetPage{}, err
	}
	return FleetPage{Devices: devices, Next: next, Total: total}, nil
}

// ceilMicro rounds t up to a whole microsecond; the zero time stays zero.
func ceilMicro(t time.Time) time.Time {
	if c := t.Truncate(time.Microsecond); !c.Equal(t) {
		return c.Add(time.Microsecond)
	}
	return t
}

// FleetDevice is a device's registry picture for operators.
type FleetDevice struct {
	Device Device
	// Owner is nil while the device is unclaimed.
	Owner *Account
	// Members are the accounts the device is shared with.
	Members []Share
	// Home is nil when the device is in no home.
	Home  *Home
	State DeviceState
}

// GetFleetDevice returns any device, with its owner, members, home and
// state, for operators.
func (a *App) GetFleetDevice(ctx context.Context, deviceID string) (FleetDevice, error) {
	d, err := a.store.GetDevice(ctx, deviceID)
	if errors.Is(err, ErrNotFound) {
		return FleetDevice{}, notFound("device")
	}
	if err != nil {
		return FleetDevice{}, err
	}
	fd := FleetDevice{Device: d}
	if d.OwnerID != "" {
		owner, err := a.store.GetAccount(ctx, d.OwnerID)
		if err != nil {
			return FleetDevice{}, err
		}
		fd.Owner = &owner
	}
	fd.Members, err = all(func(after Cursor, limit int) ([]Share, error) {
		return a.store.ListShares(ctx, d.ID, after, limit)
	}, func(s Share) Cursor { return Cursor{Time: s.CreatedAt.UnixMicro(), ID: s.AccountID} })
	if err != nil {
		return FleetDevice{}, err
	}
	if d.HomeID != "" {
		h, err := a.store.GetHome(ctx, d.HomeID)
		if err != nil {
			return FleetDevice{}, err
		}
		fd.Home = &h
	}
	if fd.State, err = a.store.GetState(ctx, d.ID); err != nil {
		return FleetDevice{}, err
	}
	return fd, nil
}

// all reads every page of a keyset-paginated list, MaxPageSize rows at a
// time, for the views that show a list whole.
func all[T any](list func(after Cursor, limit int) ([]T, error), key func(T) Cursor) ([]T, error) {
	var (
		out   []T
		after Cursor
	)
	for {
		rows, err := list(after, MaxPageSize)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
		if len(rows) < MaxPageSize {
			return out, nil
		}
		after = key(rows[len(rows)-1])
	}
}
