// Package app holds the data service's use cases: accounts, homes and
// rooms, the device registry with claiming and sharing, device state and
// device models. It owns the ownership rules — another account's home or
// device is ErrNotFound, an owner-only operation by a member ErrForbidden —
// and emits the service's events through the store's transactional outbox.
//
// Adapters live elsewhere: grpcapi serves the use cases over gRPC, the
// stores implement Store, accountevents feeds account.events into them.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/libs/kafka"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
)

// Topics, source and CloudEvents types of the events this service emits
// (proto/comfortech/events/v1 documents each).
const (
	TopicAccountEvents   = "account.events"
	TopicDeviceLifecycle = "device.lifecycle"
	// Source is the ce_source of every event of this service.
	Source = "/services/data"

	TypeAccountCreated      = "comfortech.account.created.v1"
	TypeAccountUpdated      = "comfortech.account.updated.v1"
	TypeAccountDeleted      = "comfortech.account.deleted.v1"
	TypeAccountRegistered   = "comfortech.account.registered.v1"
	TypeAccountSuspended    = "comfortech.account.suspended.v1"
	TypeAccountReinstated   = "comfortech.account.reinstated.v1"
	TypeDeviceClaimed       = "comfortech.device.claimed.v1"
	TypeDeviceUnclaimed     = "comfortech.device.unclaimed.v1"
	TypeDeviceShared        = "comfortech.device.shared.v1"
	TypeDeviceUnshared      = "comfortech.device.unshared.v1"
	TypeDeviceStateReported = "comfortech.device.state.reported.v1"
	TypeDesiredStateChanged = "comfortech.device.state.desired.v1"
)

// DeviceHooks are told about claims and unclaims (after commit); telemetry
// creates the model's default alert rules and removes a device's data.
// Errors are logged and retried a few times; they never fail the claim or
// unclaim that caused the call.
type DeviceHooks interface {
	DeviceClaimed(ctx context.Context, deviceID, ownerAccountID string, defaults []*datav1.AlertRuleTemplate) error
	DeviceUnclaimed(ctx context.Context, deviceID string) error
}

// TelemetryAppender stores telemetry for DataInternalService.AppendTelemetry.
type TelemetryAppender interface {
	AppendTelemetry(ctx context.Context, req *datav1.AppendTelemetryRequest) (*datav1.AppendTelemetryResponse, error)
}

// Config holds the App's collaborators and knobs; zero values select the
// documented defaults.
type Config struct {
	// Hooks is told about claims and unclaims; nil means nobody listens.
	Hooks DeviceHooks
	// ClaimLimit bounds claim attempts per account; the zero Limit selects
	// DefaultClaimLimit.
	ClaimLimit Limit
	// ClaimLimiterSize is how many accounts the claim limiter remembers;
	// default 100,000.
	ClaimLimiterSize int
	// Notify is called after every committed change that may have enqueued
	// events (the outbox relay's Notify); nil means no one is woken.
	Notify func()
	// Log receives hook failures; nil means no logging.
	Log *zap.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// App is the set of use cases. It is safe for concurrent use once
// configured (SetDeviceHooks must happen before serving).
type App struct {
	store   Store
	hooks   DeviceHooks
	claims  *limiter
	notify  func()
	log     *zap.Logger
	now     func() time.Time
	hookTry int
}

// New returns the use cases over store.
func New(store Store, cfg Config) (*App, error) {
	if store == nil {
		return nil, errors.New("app: nil store")
	}
	if cfg.ClaimLimit == (Limit{}) {
		cfg.ClaimLimit = DefaultClaimLimit()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	claims, err := newLimiter(cfg.ClaimLimit, cfg.ClaimLimiterSize, cfg.Now)
	if err != nil {
		return nil, err
	}
	if cfg.Notify == nil {
		cfg.Notify = func() {}
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &App{store: store, hooks: cfg.Hooks, claims: claims, notify: cfg.Notify,
		log: cfg.Log.Named("app"), now: cfg.Now, hookTry: 3}, nil
}

// SetDeviceHooks replaces the hooks. Call it before the App serves
// requests: the telemetry engine needs the App (for DeviceAccess) before
// it can be the App's hooks, so it is set this way.
func (a *App) SetDeviceHooks(h DeviceHooks) { a.hooks = h }

// clock returns the current time, UTC and truncated to the microseconds
// the stores keep, so a value read back equals the value written.
func (a *App) clock() time.Time { return a.now().UTC().Truncate(time.Microsecond) }

// inTx runs fn in a transaction and wakes the outbox relay after a commit.
func (a *App) inTx(ctx context.Context, fn func(tx Tx) error) error {
	if err := a.store.InTx(ctx, fn); err != nil {
		return err
	}
	a.notify()
	return nil
}

// emit enqueues an event in tx's outbox.
func (a *App) emit(ctx context.Context, tx Tx, topic, typ, key string, data proto.Message) error {
	m, err := kafka.EncodeEvent(ctx, topic, kafka.Event{Source: Source, Type: typ, Key: key, Data: data, Time: a.now()})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	return tx.Enqueue(ctx, m)
}

// runHook calls a device hook after the commit of the change it reports,
// retrying a few times; failures are logged, never returned: the change
// already happened. It outlives the caller's cancellation, which a client
// that hangs up right after its claim would otherwise cause.
func (a *App) runHook(ctx context.Context, name, deviceID string, call func(ctx context.Context, h DeviceHooks) error) {
	h := a.hooks
	if h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 50 * time.Millisecond
	_, err := backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, call(ctx, h) },
		backoff.WithBackOff(bo), backoff.WithMaxTries(uint(a.hookTry)))
	if err != nil {
		a.log.Error("device hook failed", zap.String("hook", name), zap.String("device_id", deviceID), zap.Error(err))
	}
}
