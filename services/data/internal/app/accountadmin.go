package app

import (
	"context"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// ListAccounts finds live accounts for operators, newest first.
func (a *App) ListAccounts(ctx context.Context, f AccountFilter, p PageRequest) ([]Account, string, error) {
	after, limit, err := parsePage(p)
	if err != nil {
		return nil, "", err
	}
	rows, err := a.store.ListAccounts(ctx, f, after, limit)
	if err != nil {
		return nil, "", err
	}
	accounts, next := page(rows, limit, func(acc Account) Cursor { return Cursor{Time: acc.CreatedAt.UnixMicro(), ID: acc.ID} })
	return accounts, next, nil
}

// AccountOverview is an account with its homes and the devices it owns
// or that are shared with it.
type AccountOverview struct {
	Account Account
	// Homes are the homes the account owns, oldest first.
	Homes []Home
	// Devices are the devices the account reaches, in claim order, with
	// its role. Unlike the account's own view (ListDevices), a shared
	// device keeps its owner's home and room.
	Devices []DeviceView
}

// GetAccountOverview returns a live account with its homes and devices,
// for operators.
func (a *App) GetAccountOverview(ctx context.Context, id string) (AccountOverview, error) {
	acc, err := liveAccount(ctx, a.store, id)
	if err != nil {
		return AccountOverview{}, err
	}
	o := AccountOverview{Account: acc}
	o.Homes, err = all(func(after Cursor, limit int) ([]Home, error) {
		return a.store.ListHomes(ctx, id, after, limit)
	}, func(h Home) Cursor { return Cursor{Time: h.CreatedAt.UnixMicro(), ID: h.ID} })
	if err != nil {
		return AccountOverview{}, err
	}
	o.Devices, err = all(func(after Cursor, limit int) ([]DeviceView, error) {
		return a.store.ListAccessibleDevices(ctx, id, DeviceFilter{}, after, limit)
	}, func(v DeviceView) Cursor { return Cursor{Time: v.ClaimedAt.UnixMicro(), ID: v.ID} })
	if err != nil {
		return AccountOverview{}, err
	}
	return o, nil
}

// SuspendAccount marks a live account suspended for reason, on behalf of
// the operator actorID, and emits AccountSuspended, on which the auth
// gateway disables the account's identity-provider user. An account
// already suspended stays as it is (with its first reason), without
// another event. Operators cannot suspend themselves.
func (a *App) SuspendAccount(ctx context.Context, actorID, id, reason string) (Account, error) {
	if strings.TrimSpace(reason) == "" {
		return Account{}, invalid("reason", "is required")
	}
	if actorID == id {
		return Account{}, precondition("an operator cannot suspend their own account")
	}
	now := a.clock()
	return a.setSuspended(ctx, id, true, reason, now, TypeAccountSuspended,
		&eventsv1.AccountSuspended{AccountId: id, Reason: reason, ActorId: actorID, Time: timestamppb.New(now)})
}

// ReinstateAccount lifts the suspension of a live account on behalf of
// actorID and emits AccountReinstated, on which the auth gateway enables
// the identity-provider user again. An active account stays as it is,
// without an event.
func (a *App) ReinstateAccount(ctx context.Context, actorID, id, reason string) (Account, error) {
	now := a.clock()
	return a.setSuspended(ctx, id, false, "", now, TypeAccountReinstated,
		&eventsv1.AccountReinstated{AccountId: id, Reason: reason, ActorId: actorID, Time: timestamppb.New(now)})
}

// setSuspended sets the suspension of a live account and enqueues the
// event of the change, unless the account already is in that state.
func (a *App) setSuspended(ctx context.Context, id string, suspended bool, reason string, now time.Time, typ string, event proto.Message) (Account, error) {
	var acc Account
	err := a.inTx(ctx, func(tx Tx) error {
		var err error
		if acc, err = liveAccount(ctx, tx, id); err != nil || acc.Suspended == suspended {
			return err
		}
		acc.Suspended, acc.SuspendReason, acc.UpdatedAt = suspended, reason, now
		if err := tx.UpdateAccount(ctx, acc); err != nil {
			return err
		}
		return a.emit(ctx, tx, TopicAccountEvents, typ, id, event)
	})
	return acc, err
}
