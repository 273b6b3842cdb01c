package app

import (
	"cmp"
	"context"
	"errors"
	"regexp"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// phonePattern is E.164, as the protos validate it. The Kafka consumer
// path has no protovalidate in front, so account creation checks again.
var phonePattern = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// Defaults of a new account's preferences.
const (
	defaultLocale   = "en"
	defaultTimezone = "UTC"
)

// NewAccount is what registration tells about a new account.
type NewAccount struct {
	ID, Phone, Name, Email, Locale, Timezone string
}

// CreateAccount creates the account of a newly registered user, from
// DataInternalService.CreateAccount or an AccountRegistered event. It is
// idempotent: the same id with the same phone returns the existing account
// and false. Another account holding the phone, or the id holding another
// phone, is ErrConflict; a deleted id is ErrDeleted.
func (a *App) CreateAccount(ctx context.Context, n NewAccount) (Account, bool, error) {
	if _, err := uuid.Parse(n.ID); err != nil {
		return Account{}, false, invalid("account_id", "must be a UUID")
	}
	if !phonePattern.MatchString(n.Phone) {
		return Account{}, false, invalid("phone", "must be in E.164 format")
	}
	now := a.clock()
	acc := Account{ID: n.ID, Phone: n.Phone, Name: n.Name, Email: n.Email,
		Locale: cmp.Or(n.Locale, defaultLocale), Timezone: cmp.Or(n.Timezone, defaultTimezone),
		CreatedAt: now, UpdatedAt: now}
	created := false
	err := a.inTx(ctx, func(tx Tx) error {
		ok, err := tx.InsertAccount(ctx, acc)
		if err != nil {
			return err
		}
		if !ok {
			existing, err := tx.GetAccount(ctx, n.ID)
			switch {
			case errors.Is(err, ErrNotFound):
				return conflict("phone already registered to another account")
			case err != nil:
				return err
			case existing.Deleted():
				return &Error{Kind: ErrDeleted, Msg: "account was deleted"}
			case existing.Phone != n.Phone:
				return conflict("account exists with another phone")
			}
			acc = existing
			return nil
		}
		created = true
		return a.emit(ctx, tx, TopicAccountEvents, TypeAccountCreated, acc.ID, &eventsv1.AccountCreated{
			AccountId: acc.ID, Phone: acc.Phone, Name: acc.Name, Email: acc.Email,
			Locale: acc.Locale, Timezone: acc.Timezone, Time: timestamppb.New(now)})
	})
	if err != nil {
		return Account{}, false, err
	}
	return acc, created, nil
}

// GetAccount returns a live account: the caller's own (GetMe) or any, for
// internal callers.
func (a *App) GetAccount(ctx context.Context, id string) (Account, error) {
	return liveAccount(ctx, a.store, id)
}

// liveAccount reads an account that exists and is not deleted.
func liveAccount(ctx context.Context, q Queries, id string) (Account, error) {
	acc, err := q.GetAccount(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && acc.Deleted()) {
		return Account{}, notFound("account")
	}
	return acc, err
}

// AccountPatch changes a profile; nil fields stay as they are.
type AccountPatch struct {
	Name, Email, Locale, Timezone *string
}

// UpdateAccount changes the caller's profile and emits AccountUpdated with
// the names of the fields that changed (nothing when none did).
func (a *App) UpdateAccount(ctx context.Context, id string, p AccountPatch) (Account, error) {
	var acc Account
	err := a.inTx(ctx, func(tx Tx) error {
		var err error
		if acc, err = liveAccount(ctx, tx, id); err != nil {
			return err
		}
		var changed []string
		set := func(field string, dst *string, v *string) {
			if v != nil && *v != *dst {
				*dst = *v
				changed = append(changed, field)
			}
		}
		set("name", &acc.Name, p.Name)
		set("email", &acc.Email, p.Email)
		set("locale", &acc.Locale, p.Locale)
		set("timezone", &acc.Timezone, p.Timezone)
		if len(changed) == 0 {
			return nil
		}
		acc.UpdatedAt = a.clock()
		if err := tx.UpdateAccount(ctx, acc); err != nil {
			return err
		}
		return a.emit(ctx, tx, TopicAccountEvents, TypeAccountUpdated, acc.ID, &eventsv1.AccountUpdated{
			AccountId: acc.ID, ChangedFields: changed, Name: acc.Name, Email: acc.Email,
			Locale: acc.Locale, Timezone: acc.Timezone, Time: timestamppb.New(acc.UpdatedAt)})
	})
	return acc, err
}

// DeleteAccount removes everything of an account in one transaction: its
// owned devices are unclaimed (shares ended, desired state cleared), the
// shares it received end, its homes and rooms go, and the account row
// becomes a tombstone without personal data. It emits AccountDeleted and
// the device events, then tells the hooks about each unclaimed device.
//
// It is idempotent — an unknown or already deleted account is a no-op
// without events — because it also runs for AccountDeleted events, which
// may be redelivered and include this service's own.
func (a *App) DeleteAccount(ctx context.Context, id string) error {
	var released []string
	err := a.inTx(ctx, func(tx Tx) error {
		released = nil
		acc, err := tx.GetAccount(ctx, id)
		if errors.Is(err, ErrNotFound) || (err == nil && acc.Deleted()) {
			return nil
		}
		if err != nil {
			return err
		}
		now := a.clock()
		owned, err := tx.ListOwnedDevices(ctx, id)
		if err != nil {
			return err
		}
		for _, d := range owned {
			if err := a.release(ctx, tx, d, id, now); err != nil {
				return err
			}
			released = append(released, d.ID)
		}
		received, err := tx.ListReceivedShares(ctx, id)
		if err != nil {
			return err
		}
		for _, s := range received {
			d, err := tx.GetDevice(ctx, s.DeviceID)
			if err != nil {
				return err
			}
			if _, err := a.unshare(ctx, tx, d, id, now); err != nil {
				return err
			}
		}
		if err := tx.DeleteHomesOf(ctx, id); err != nil {
			return err
		}
		if err := tx.TombstoneAccount(ctx, id, now); err != nil {
			return err
		}
		return a.emit(ctx, tx, TopicAccountEvents, TypeAccountDeleted, id,
			&eventsv1.AccountDeleted{AccountId: id, Time: timestamppb.New(now)})
	})
	if err != nil {
		return err
	}
	for _, deviceID := range released {
		a.runHook(ctx, "DeviceUnclaimed", deviceID, func(ctx context.Context, h DeviceHooks) error {
			return h.DeviceUnclaimed(ctx, deviceID)
		})
	}
	return nil
}
