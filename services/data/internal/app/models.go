package app

import (
	"context"
	"errors"
	"slices"

	"google.golang.org/protobuf/proto"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
)

// ListModels lists device models by id.
func (a *App) ListModels(ctx context.Context, p PageRequest) ([]DeviceModel, string, error) {
	after, limit, err := parsePage(p)
	if err != nil {
		return nil, "", err
	}
	rows, err := a.store.ListModels(ctx, after, limit)
	if err != nil {
		return nil, "", err
	}
	models, next := page(rows, limit, func(m DeviceModel) Cursor { return Cursor{ID: m.ID} })
	return models, next, nil
}

// GetModel returns a device model.
func (a *App) GetModel(ctx context.Context, id string) (DeviceModel, error) {
	m, err := a.store.GetModel(ctx, id)
	if isNotFound(err) {
		return DeviceModel{}, notFound("device model")
	}
	return m, err
}

// PutModel creates a device model or replaces it whole. Putting the same
// model again changes nothing (not even its update time); validateOnly
// reports what would happen and stores nothing.
func (a *App) PutModel(ctx context.Context, m DeviceModel, validateOnly bool) (stored DeviceModel, created, changed bool, err error) {
	err = a.inTx(ctx, func(tx Tx) error {
		now := a.clock()
		old, err := tx.GetModel(ctx, m.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			created, changed = true, true
			m.CreatedAt, m.UpdatedAt = now, now
		case err != nil:
			return err
		case sameModel(old, m):
			stored = old
			return nil
		default:
			changed = true
			m.CreatedAt, m.UpdatedAt = old.CreatedAt, now
		}
		stored = m
		if validateOnly {
			return nil
		}
		return tx.PutModel(ctx, m)
	})
	return stored, created, changed, err
}

// sameModel compares the fields a client sets.
func sameModel(a, b DeviceModel) bool {
	return a.Title == b.Title && a.Description == b.Description &&
		slices.Equal(a.Metrics, b.Metrics) && slices.Equal(a.Commands, b.Commands) &&
		slices.EqualFunc(a.DefaultAlertRules, b.DefaultAlertRules, func(x, y *datav1.AlertRuleTemplate) bool {
			return proto.Equal(x, y)
		})
}

// DeleteModel deletes a device model; ErrPrecondition while devices of
// the model are registered.
func (a *App) DeleteModel(ctx context.Context, id string) error {
	return a.inTx(ctx, func(tx Tx) error {
		if _, err := tx.GetModel(ctx, id); err != nil {
			if isNotFound(err) {
				return notFound("device model")
			}
			return err
		}
		n, err := tx.CountDevicesOfModel(ctx, id)
		if err != nil {
			return err
		}
		if n > 0 {
			return precondition("devices of this model are registered")
		}
		return tx.DeleteModel(ctx, id)
	})
}
