package app

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// CreateShare shares a device with the account registered with phone.
// Owner only; an unknown phone is ErrNotFound, an existing share
// ErrConflict.
func (a *App) CreateShare(ctx context.Context, accountID, deviceID, phone string) (Share, error) {
	var s Share
	err := a.inTx(ctx, func(tx Tx) error {
		if _, err := ownerOnly(ctx, tx, accountID, deviceID, "share it"); err != nil {
			return err
		}
		member, err := tx.AccountByPhone(ctx, phone)
		if errors.Is(err, ErrNotFound) {
			return notFound("account")
		}
		if err != nil {
			return err
		}
		if member.ID == accountID {
			return invalid("phone", "the owner already has the device")
		}
		now := a.clock()
		s = Share{DeviceID: deviceID, AccountID: member.ID, MemberPhone: member.Phone, MemberName: member.Name, CreatedAt: now}
		if err := tx.InsertShare(ctx, s); err != nil {
			if errors.Is(err, ErrConflict) {
				return conflict("the device is already shared with that account")
			}
			return err
		}
		return a.emit(ctx, tx, TopicDeviceLifecycle, TypeDeviceShared, deviceID, &eventsv1.DeviceShared{
			DeviceId: deviceID, OwnerAccountId: accountID, MemberAccountId: member.ID, Time: timestamppb.New(now)})
	})
	return s, err
}

// ListShares lists whom a device is shared with; the owner and members
// may read it.
func (a *App) ListShares(ctx context.Context, accountID, deviceID string, p PageRequest) ([]Share, string, error) {
	after, limit, err := parsePage(p)
	if err != nil {
		return nil, "", err
	}
	if _, err := access(ctx, a.store, accountID, deviceID); err != nil {
		return nil, "", err
	}
	rows, err := a.store.ListShares(ctx, deviceID, after, limit)
	if err != nil {
		return nil, "", err
	}
	shares, next := page(rows, limit, func(s Share) Cursor { return Cursor{Time: s.CreatedAt.UnixMicro(), ID: s.AccountID} })
	return shares, next, nil
}

// DeleteShare ends a share: the owner may remove anyone, a member only
// themself (leaving the device).
func (a *App) DeleteShare(ctx context.Context, accountID, deviceID, memberID string) error {
	return a.inTx(ctx, func(tx Tx) error {
		v, err := access(ctx, tx, accountID, deviceID)
		if err != nil {
			return err
		}
		if v.Role != AccessOwner && memberID != accountID {
			return forbidden("only the device's owner can remove other members")
		}
		ok, err := a.unshare(ctx, tx, v.Device, memberID, a.clock())
		if err != nil {
			return err
		}
		if !ok {
			return notFound("share")
		}
		return nil
	})
}

// unshare deletes the share of d with memberID and emits DeviceUnshared;
// it reports whether the share existed.
func (a *App) unshare(ctx context.Context, tx Tx, d Device, memberID string, now time.Time) (bool, error) {
	ok, err := tx.DeleteShare(ctx, d.ID, memberID)
	if err != nil || !ok {
		return false, err
	}
	return true, a.emit(ctx, tx, TopicDeviceLifecycle, TypeDeviceUnshared, d.ID, &eventsv1.DeviceUnshared{
		DeviceId: d.ID, OwnerAccountId: d.OwnerID, MemberAccountId: memberID, Time: timestamppb.New(now)})
}
