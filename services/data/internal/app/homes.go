package app

import (
	"context"
	"errors"

	"github.com/google/uuid"
)

// newID returns a new entity id: a UUIDv7, so ids sort by creation time.
func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// ownedHome returns a home of accountID; another account's home is
// ErrNotFound, never ErrForbidden, so ids of other homes reveal nothing.
func ownedHome(ctx context.Context, q Queries, accountID, homeID string) (Home, error) {
	h, err := q.GetHome(ctx, homeID)
	if errors.Is(err, ErrNotFound) || (err == nil && h.OwnerID != accountID) {
		return Home{}, notFound("home")
	}
	return h, err
}

// ownedRoom returns a room of a home of accountID.
func ownedRoom(ctx context.Context, q Queries, accountID, homeID, roomID string) (Room, error) {
	if _, err := ownedHome(ctx, q, accountID, homeID); err != nil {
		return Room{}, err
	}
	r, err := q.GetRoom(ctx, homeID, roomID)
	if errors.Is(err, ErrNotFound) {
		return Room{}, notFound("room")
	}
	return r, err
}

// CreateHome creates a home owned by accountID.
func (a *App) CreateHome(ctx context.Context, accountID, name, timezone string) (Home, error) {
	id, err := newID()
	if err != nil {
		return Home{}, err
	}
	now := a.clock()
	h := Home{ID: id, OwnerID: accountID, Name: name, Timezone: timezone, CreatedAt: now, UpdatedAt: now}
	err = a.inTx(ctx, func(tx Tx) error {
		if _, err := liveAccount(ctx, tx, accountID); err != nil {
			return err
		}
		return tx.InsertHome(ctx, h)
	})
	return h, err
}

// ListHomes lists accountID's homes, oldest first.
func (a *App) ListHomes(ctx context.Context, accountID string, p PageRequest) ([]Home, string, error) {
	after, limit, err := parsePage(p)
	if err != nil {
		return nil, "", err
	}
	rows, err := a.store.ListHomes(ctx, accountID, after, limit)
	if err != nil {
		return nil, "", err
	}
	homes, next := page(rows, limit, func(h Home) Cursor { return Cursor{Time: h.CreatedAt.UnixMicro(), ID: h.ID} })
	return homes, next, nil
}

// GetHome returns a home of accountID.
func (a *App) GetHome(ctx context.Context, accountID, homeID string) (Home, error) {
	return ownedHome(ctx, a.store, accountID, homeID)
}

// HomePatch changes a home; nil fields stay as they are.
type HomePatch struct {
	Name, Timezone *string
}

// UpdateHome renames a home or changes its time zone.
func (a *App) UpdateHome(ctx context.Context, accountID, homeID string, p HomePatch) (Home, error) {
	var h Home
	err := a.inTx(ctx, func(tx Tx) error {
		var err error
		if h, err = ownedHome(ctx, tx, accountID, homeID); err != nil {
			return err
		}
		if p.Name != nil {
			h.Name = *p.Name
		}
		if p.Timezone != nil {
			h.Timezone = *p.Timezone
		}
		h.UpdatedAt = a.clock()
		return tx.UpdateHome(ctx, h)
	})
	return h, err
}

// DeleteHome deletes a home and its rooms. A home with devices is
// ErrPrecondition unless moveTo names another home of the caller; the
// devices then move there (out of their rooms) in the same transaction.
func (a *App) DeleteHome(ctx context.Context, accountID, homeID, moveTo string) error {
	return a.inTx(ctx, func(tx Tx) error {
		h, err := ownedHome(ctx, tx, accountID, homeID)
		if err != nil {
			return err
		}
		if h.DeviceCount > 0 {
			switch {
			case moveTo == "":
				return precondition("home still has devices: move them first or give move_devices_to_home_id")
			case moveTo == homeID:
				return invalid("move_devices_to_home_id", "must name another home")
			}
			if _, err := ownedHome(ctx, tx, accountID, moveTo); err != nil {
				return err
			}
			if err := tx.MoveHomeDevices(ctx, homeID, moveTo, a.clock()); err != nil {
				return err
			}
		}
		return tx.DeleteHome(ctx, homeID)
	})
}

// CreateRoom creates a room in a home of accountID; ErrConflict when the
// home has a room of that name.
func (a *App) CreateRoom(ctx context.Context, accountID, homeID, name string) (Room, error) {
	id, err := newID()
	if err != nil {
		return Room{}, err
	}
	now := a.clock()
	r := Room{ID: id, HomeID: homeID, Name: name, CreatedAt: now, UpdatedAt: now}
	err = a.inTx(ctx, func(tx Tx) error {
		if _, err := ownedHome(ctx, tx, accountID, homeID); err != nil {
			return err
		}
		return roomNameTaken(tx.InsertRoom(ctx, r))
	})
	return r, err
}

// ListRooms lists the rooms of a home of accountID, oldest first.
func (a *App) ListRooms(ctx context.Context, accountID, homeID string, p PageRequest) ([]Room, string, error) {
	after, limit, err := parsePage(p)
	if err != nil {
		return nil, "", err
	}
	if _, err := ownedHome(ctx, a.store, accountID, homeID); err != nil {
		return nil, "", err
	}
	rows, err := a.store.ListRooms(ctx, homeID, after, limit)
	if err != nil {
		return nil, "", err
	}
	rooms, next := page(rows, limit, func(r Room) Cursor { return Cursor{Time: r.CreatedAt.UnixMicro(), ID: r.ID} })
	return rooms, next, nil
}

// UpdateRoom renames a room (nil name: no change).
func (a *App) UpdateRoom(ctx context.Context, accountID, homeID, roomID string, name *string) (Room, error) {
	var r Room
	err := a.inTx(ctx, func(tx Tx) error {
		var err error
		if r, err = ownedRoom(ctx, tx, accountID, homeID, roomID); err != nil {
			return err
		}
		if name == nil || *name == r.Name {
			return nil
		}
		r.Name = *name
		r.UpdatedAt = a.clock()
		return roomNameTaken(tx.UpdateRoom(ctx, r))
	})
	return r, err
}

// DeleteRoom deletes a room; its devices stay in the home without a room.
func (a *App) DeleteRoom(ctx context.Context, accountID, homeID, roomID string) error {
	return a.inTx(ctx, func(tx Tx) error {
		if _, err := ownedRoom(ctx, tx, accountID, homeID, roomID); err != nil {
			return err
		}
		return tx.DeleteRoom(ctx, roomID)
	})
}

// roomNameTaken gives the store's ErrConflict for rooms its client message.
func roomNameTaken(err error) error {
	if errors.Is(err, ErrConflict) {
		return conflict("the home already has a room with that name")
	}
	return err
}
