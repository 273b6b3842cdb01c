// Package telemetry is the data service's telemetry history and alert
// rules: the samples the device service publishes on `device.telemetry`
// are stored in batches (idempotent on device and seq; internal callers
// may also append through DataInternalService), app users query them raw,
// bucketed or latest, and manage per-device alert rules whose state
// machines run on every append and emit `alerts` events and
// `notifications.outbox` messages through the transactional outbox.
//
// It serves datav1.TelemetryService and datav1.AlertRuleService, and
// offers AppendTelemetry to the core's DataInternalService and the
// app.DeviceHooks (DeviceClaimed, DeviceUnclaimed) to the core's claims.
// Who reaches which device is the core's business, asked through
// DeviceAccess; this package never imports the core's store.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/sqldb"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore"
)

// DeviceAccess tells how an account reaches a device; *app.App implements it.
type DeviceAccess interface {
	// DeviceAccess reports how accountID reaches deviceID; an error
	// wrapping app.ErrNotFound when it cannot.
	DeviceAccess(ctx context.Context, accountID, deviceID string) (app.AccessRole, error)
}

var (
	_ DeviceAccess    = (*app.App)(nil)
	_ app.DeviceHooks = (*Service)(nil)
)

// Config tunes the service; zero values select the documented defaults.
type Config struct {
	// Retention is how long points are kept; 0 keeps them forever.
	Retention time.Duration `env:"TELEMETRY_RETENTION" envDefault:"2160h"`
	// RetentionInterval is the pause between retention passes; default 1h.
	RetentionInterval time.Duration `env:"TELEMETRY_RETENTION_INTERVAL" envDefault:"1h"`
}

// Option configures New.
type Option func(*Service)

// WithNotify sets a function called after every commit that enqueued
// events, typically the outbox relay's Notify, so they leave at once.
func WithNotify(notify func()) Option { return func(s *Service) { s.notify = notify } }

// WithMetrics registers the service's counters on reg.
func WithMetrics(reg prometheus.Registerer) Option { return func(s *Service) { s.registry = reg } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// Service is the telemetry and alert-rule part of the data service.
type Service struct {
	store  *tsstore.Store
	access DeviceAccess
	cfg    Config
	log    *zap.Logger
	notify func()
	now    func() time.Time

	registry prometheus.Registerer
	// points counts appended records by result (stored, duplicate).
	points *prometheus.CounterVec
}

// New migrates the telemetry tables (and the outbox table) in db and
// returns the service. log may be nil.
func New(ctx context.Context, db *sqldb.DB, access DeviceAccess, cfg Config, log *zap.Logger, opts ...Option) (*Service, error) {
	if db == nil || access == nil {
		return nil, errors.New("telemetry: needs a database and a DeviceAccess")
	}
	if cfg.Retention < 0 || cfg.RetentionInterval < 0 {
		return nil, errors.New("telemetry: negative retention")
	}
	if cfg.RetentionInterval == 0 {
		cfg.RetentionInterval = time.Hour
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Service{store: tsstore.New(db), access: access, cfg: cfg, log: log, notify: func() {}, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.points = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "comfort_data_telemetry_records_total",
		Help: "Telemetry records appended, by result (stored, duplicate)."}, []string{"result"})
	s.points.WithLabelValues("stored")
	s.points.WithLabelValues("duplicate")
	if s.registry != nil {
		if err := s.registry.Register(s.points); err != nil {
			return nil, fmt.Errorf("telemetry: metrics: %w", err)
		}
	}
	if err := s.store.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	return s, nil
}

// Register registers the TelemetryService and AlertRuleService on srv.
// Their calls must already be authenticated (libs/rpc.WithAuth puts the
// principal in the context).
func (s *Service) Register(srv grpc.ServiceRegistrar) {
	datav1.RegisterTelemetryServiceServer(srv, &telemetryServer{s: s})
	datav1.RegisterAlertRuleServiceServer(srv, &alertServer{s: s})
}

// Check reports whether the database answers, for /readyz.
func (s *Service) Check(ctx context.Context) error { return s.store.Check(ctx) }

// retentionBatch is how many points one retention statement deletes, so
// that no transaction holds many row locks or a long WAL record.
const retentionBatch = 10_000

// Run deletes points older than the retention every RetentionInterval,
// starting at once, until ctx ends; it returns nil then. A failed pass is
// logged and retried at the next interval.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.Retention == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(s.cfg.RetentionInterval)
	defer t.Stop()
	for {
		n, err := s.DeleteExpired(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.log.Error("telemetry retention failed", zap.Error(err))
		case n > 0:
			s.log.Info("telemetry retention", zap.Int64("deleted_points", n))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// DeleteExpired deletes the points older than the retention now and
// returns how many it deleted; Run calls it periodically.
func (s *Service) DeleteExpired(ctx context.Context) (int64, error) {
	if s.cfg.Retention == 0 {
		return 0, nil
	}
	cutoff := s.now().Add(-s.cfg.Retention).UnixMilli()
	var total int64
	for {
		n, err := s.store.DeleteBefore(ctx, cutoff, retentionBatch)
		total += n
		if err != nil || n < retentionBatch {
			return total, err
		}
	}
}

// role is what a caller may do with a device.
type role int

const (
	readRole  role = iota // owner or member
	ownerRole             // owner only
)

// authorize checks that the caller reaches deviceID with at least need and
// returns the caller's account id. Unreachable and unknown devices look
// the same (app.ErrNotFound), so nobody learns another account's device
// exists.
func (s *Service) authorize(ctx context.Context, deviceID string, need role) (string, error) {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok || p.Subject == "" {
		return "", fmt.Errorf("%w: no principal", auth.ErrUnauthenticated)
	}
	got, err := s.access.DeviceAccess(ctx, p.Subject, deviceID)
	if errors.Is(err, app.ErrNotFound) || (err == nil && got != app.AccessOwner && got != app.AccessMember) {
		return "", &app.Error{Kind: app.ErrNotFound, Msg: "device not found"}
	}
	if err != nil {
		return "", fmt.Errorf("telemetry: device access: %w", err)
	}
	if need == ownerRole && got != app.AccessOwner {
		return "", &app.Error{Kind: app.ErrForbidden, Msg: "only the device's owner can change its alert rules"}
	}
	return p.Subject, nil
}

// invalid reports a broken rule on a request field.
func invalid(field, reason string) error {
	return &app.Error{Kind: app.ErrInvalid, Field: field, Msg: field + ": " + reason}
}
