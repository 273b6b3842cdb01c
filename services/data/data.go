// Package data is the data service (the original Crow): the system of record for accounts, homes, devices, sharing, device state, telemetry and alert rules.
//
// Run opens and migrates the database, starts the service's gRPC server
// (with grpc.health.v1 and reflection), every call authenticated by its
// bearer token and authorized by role, the outbox relay that delivers the
// service's events to Kafka, the account.events consumer, the
// device.telemetry consumer that stores the devices' telemetry, the
// telemetry retention loop and the ops listener, and returns when ctx ends after a
// graceful drain.
//
// The core (internal/app: accounts, homes, devices, sharing, state) and
// the telemetry and alert-rule engine (internal/telemetry) share the
// database; telemetry asks the core who reaches a device and is told of
// claims and unclaims.
package data

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/audit"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/outbox"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/libs/rpc"
	"github.com/comfortech/platform/libs/sqldb"
	"github.com/comfortech/platform/libs/tracing"
	"github.com/comfortech/platform/libs/web"
	"github.com/comfortech/platform/services/data/internal/accountsync"
	"github.com/comfortech/platform/services/data/internal/app"
	"github.com/comfortech/platform/services/data/internal/auditlog"
	"github.com/comfortech/platform/services/data/internal/grpcapi"
	"github.com/comfortech/platform/services/data/internal/store/sqlstore"
	"github.com/comfortech/platform/services/data/internal/telemetry"
)

// Config is the service's whole configuration, read from the environment once.
type Config struct {
	// GRPCAddr is the address of the gRPC API.
	GRPCAddr string `env:"GRPC_ADDR" envDefault:":7001"`
	// OpsAddr is the address of /healthz, /readyz and /metrics.
	OpsAddr string `env:"OPS_ADDR" envDefault:":9071"`
	// HTTP holds server timeouts and the drain timeout.
	HTTP web.ServerConfig
	// Tracing says where spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT, ...).
	Tracing tracing.Config
	// Auth locates the identity provider and lists the accepted clients.
	Auth auth.Settings
	// Log selects the log level and format.
	Log logging.Config
	// DatabaseURL is postgres://... or sqlite:path (see sqldb.Open). Required.
	DatabaseURL string `env:"DATABASE_URL"`
	// KafkaBrokers lists the bootstrap brokers. Required.
	KafkaBrokers []string `env:"KAFKA_BROKERS" envSeparator:","`
	// ClaimAttempts is how many claim attempts an account may make at once;
	// they refill evenly over ClaimPeriod. Defaults 10 and 10m.
	ClaimAttempts int `env:"CLAIM_ATTEMPTS" envDefault:"10"`
	// ClaimPeriod is the refill period of ClaimAttempts.
	ClaimPeriod time.Duration `env:"CLAIM_PERIOD" envDefault:"10m"`
	// Telemetry sets the retention of telemetry points.
	Telemetry telemetry.Config
}

// Validate reports the first setting that cannot work, naming its variable.
func (c Config) Validate() error {
	switch {
	case c.DatabaseURL == "":
		return errors.New("DATABASE_URL is required (postgres://user@host:5432/db or sqlite:path/data.db)")
	case len(c.KafkaBrokers) == 0:
		return errors.New("KAFKA_BROKERS is required (host:port[,host:port...])")
	case c.ClaimAttempts < 0:
		return errors.New("CLAIM_ATTEMPTS must not be negative")
	case c.ClaimPeriod < 0:
		return errors.New("CLAIM_PERIOD must not be negative")
	}
	return nil
}

// Run serves the service until ctx ends.
func Run(ctx context.Context, cfg Config, log *zap.Logger, opts ...process.Option) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("data: config: %w", err)
	}
	ls := process.Apply(opts)
	p, err := process.New("data", log, process.Config{OpsAddr: cfg.OpsAddr, HTTP: cfg.HTTP,
		Tracing: cfg.Tracing, TracerProvider: ls.TracerProvider})
	if err != nil {
		return err
	}
	v, err := p.Verifier(ctx, cfg.Auth)
	if err != nil {
		return err
	}

	db, err := sqldb.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	// Closed last, after every server and worker has stopped.
	defer func() { _ = db.Close() }()
	p.Health.Add("database", db.Check)
	if err := sqlstore.Migrate(ctx, db); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	auditLog := auditlog.New(db)
	if err := auditLog.Migrate(ctx); err != nil {
		return fmt.Errorf("data: %w", err)
	}

	kcfg := kafka.Config{Brokers: cfg.KafkaBrokers, ClientID: "data-service", DialTimeout: 5 * time.Second, TracerProvider: p.Tracer}
	km, err := kafka.NewMetrics(p.Metrics)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	producer, err := kafka.NewProducer(kcfg, log, km)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	defer func() { _ = producer.Close() }()
	pinger, err := kafka.NewPinger(kcfg)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	defer func() { _ = pinger.Close() }()
	p.Health.Add("kafka", pinger.Check)
	relay, err := outbox.NewRelay(db.DB, producer, outbox.RelayConfig{Dialect: db.Dialect}, log, p.Metrics)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	p.Go("outbox relay", relay.Run)

	a, err := app.New(sqlstore.New(db), app.Config{
		ClaimLimit: app.Limit{Attempts: cfg.ClaimAttempts, Per: cfg.ClaimPeriod},
		Notify:     relay.Notify,
		Log:        log,
	})
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	runner, err := accountsync.NewRunner(kcfg, a, log, km)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	p.Go("account.events consumer", runner.Run)

	rec, err := audit.NewRecorder(producer, "/services/data", log.Named("audit"), p.Metrics)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	p.Go("audit backlog", rec.Run)
	srv, err := p.GRPCServer(cfg.GRPCAddr, ls.GRPC, rpc.WithAuth(v, auth.WithMethodRoles(methodRoles)),
		rpc.WithServerInterceptors(rec.Interceptor(grpcapi.AuditMethods(a, log)), nil))
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	tel, err := telemetry.New(ctx, db, a, cfg.Telemetry, log, telemetry.WithNotify(relay.Notify), telemetry.WithMetrics(p.Metrics))
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	tel.Register(srv)
	p.Go("telemetry retention", tel.Run)
	telemetryRunner, err := tel.NewConsumer(kcfg, producer, log, km)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	p.Go("device.telemetry consumer", telemetryRunner.Run)
	auditRunner, err := auditLog.NewConsumer(kcfg, producer, log, km)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	p.Go("audit consumer", auditRunner.Run)
	a.SetDeviceHooks(tel)
	grpcapi.Register(srv, a, tel, log)
	grpcapi.RegisterAudit(srv, auditLog, log)
	log.Info("data service configured", zap.String("database", string(db.Dialect)),
		zap.Strings("kafka", cfg.KafkaBrokers),
		zap.Int("claim_attempts", cfg.ClaimAttempts), zap.Duration("claim_period", cfg.ClaimPeriod),
		zap.Duration("telemetry_retention", cfg.Telemetry.Retention))
	return p.Run(ctx, ls.Ops)
}
