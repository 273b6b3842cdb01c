// Package device is the device service (the original Goose): the MQTT side of the platform — device credentials, telemetry ingest, presence, commands and desired-state sync.
//
// Run starts the service's gRPC server (with grpc.health.v1 and reflection),
// every call authenticated by its bearer token and authorized by role, and
// its ops listener, and returns when ctx ends after a graceful drain.
package device

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/audit"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/config"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/libs/rpc"
	"github.com/comfortech/platform/libs/sqldb"
	"github.com/comfortech/platform/libs/tracing"
	"github.com/comfortech/platform/libs/web"
	"github.com/comfortech/platform/services/device/dynsec"
	"github.com/comfortech/platform/services/device/internal/app"
	"github.com/comfortech/platform/services/device/internal/dataclient"
	"github.com/comfortech/platform/services/device/internal/grpcapi"
	"github.com/comfortech/platform/services/device/internal/store/sqlstore"
)

// The broker modes (BROKER_MODE).
const (
	// BrokerEmbedded: the broker (mochi-mqtt with package mqttauth) asks
	// BrokerAuthService about every client; nothing is mirrored.
	BrokerEmbedded = "embedded"
	// BrokerMosquitto: credentials are mirrored into Mosquitto 2's
	// dynamic-security plugin (package dynsec).
	BrokerMosquitto = "mosquitto"
)

// Config is the service's whole configuration, read from the environment once.
type Config struct {
	// GRPCAddr is the address of the gRPC API.
	GRPCAddr string `env:"GRPC_ADDR" envDefault:":7002"`
	// OpsAddr is the address of /healthz, /readyz and /metrics.
	OpsAddr string `env:"OPS_ADDR" envDefault:":9072"`
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
	// DataAddr is the data service's gRPC address (host:port). Required:
	// provisioning registers devices there with the service's own token
	// (Auth.ClientID/ClientSecret).
	DataAddr string `env:"DATA_ADDR"`
	// BrokerMode is BrokerEmbedded (default) or BrokerMosquitto.
	BrokerMode string `env:"BROKER_MODE" envDefault:"embedded"`
	// Mosquitto locates the dynamic-security admin account (BrokerMosquitto).
	Mosquitto MosquittoConfig
	// KafkaBrokers lists the bootstrap brokers. Required with MQTT.URL.
	KafkaBrokers []string `env:"KAFKA_BROKERS" envSeparator:","`
	// MQTT is the service's own connection to the broker; without a URL
	// the service serves only its gRPC API (no ingest, presence, commands).
	MQTT MQTTConfig
	// Telemetry tunes the ingest pipeline.
	Telemetry TelemetryConfig
	// PresenceDebounce is how long a device's new status must hold before
	// it counts as a change (shorter flaps are ignored).
	PresenceDebounce time.Duration `env:"PRESENCE_DEBOUNCE" envDefault:"2s"`
	// CommandSweep is how often commands past their TTL are marked EXPIRED.
	CommandSweep time.Duration `env:"COMMAND_SWEEP" envDefault:"1s"`
}

// MQTTConfig is the service account's connection to the broker.
type MQTTConfig struct {
	// URL is the broker, e.g. tcp://127.0.0.1:11883.
	URL string `env:"MQTT_URL"`
	// Username and Password are the service account's credentials.
	Username string        `env:"MQTT_USERNAME"`
	Password config.Secret `env:"MQTT_PASSWORD"`
	// ClientID must be fixed per replica and differ between replicas: the
	// broker keeps the persistent session (and the QoS 1 messages queued
	// while the replica is away) under it. Default: device-service-<host name>.
	ClientID string `env:"MQTT_CLIENT_ID"`
}

// TelemetryConfig tunes telemetry ingest (see package ingest).
type TelemetryConfig struct {
	// MaxPayload is the largest telemetry message accepted, in bytes.
	MaxPayload int `env:"TELEMETRY_MAX_PAYLOAD" envDefault:"65536"`
	// BatchSize is the most MQTT messages published to Kafka at once.
	BatchSize int `env:"TELEMETRY_BATCH_SIZE" envDefault:"500"`
	// BatchWait is how long a batch that is not full waits for more
	// messages; 0 sends at once (messages arriving meanwhile gather into
	// the next batch).
	BatchWait time.Duration `env:"TELEMETRY_BATCH_WAIT" envDefault:"0s"`
	// Buffer is how many messages may wait for Kafka.
	Buffer int `env:"TELEMETRY_BUFFER" envDefault:"4096"`
	// EnqueueWait is how long a message waits for room in a full buffer
	// before it is left unacknowledged for the broker to deliver again.
	EnqueueWait time.Duration `env:"TELEMETRY_ENQUEUE_WAIT" envDefault:"5s"`
}

// MosquittoConfig is the production broker's dynamic-security account.
type MosquittoConfig struct {
	// URL is the broker, e.g. tcp://mosquitto:1883.
	URL string `env:"MOSQUITTO_URL"`
	// Username and Password are the account `mosquitto_ctrl dynsec init`
	// created.
	Username string        `env:"MOSQUITTO_DYNSEC_USERNAME" envDefault:"admin"`
	Password config.Secret `env:"MOSQUITTO_DYNSEC_PASSWORD"`
}

// Validate reports the first setting that cannot work, naming its variable.
func (c Config) Validate() error {
	switch {
	case c.DatabaseURL == "":
		return errors.New("DATABASE_URL is required (postgres://user@host:5432/db or sqlite:path/device.db)")
	case c.DataAddr == "":
		return errors.New("DATA_ADDR is required (the data service's host:port)")
	case c.BrokerMode != BrokerEmbedded && c.BrokerMode != BrokerMosquitto:
		return fmt.Errorf("BROKER_MODE must be %q or %q", BrokerEmbedded, BrokerMosquitto)
	case c.BrokerMode == BrokerMosquitto && (c.Mosquitto.URL == "" || c.Mosquitto.Password == ""):
		return errors.New("BROKER_MODE=mosquitto needs MOSQUITTO_URL and MOSQUITTO_DYNSEC_PASSWORD")
	case c.MQTT.URL != "" && len(c.KafkaBrokers) == 0:
		return errors.New("KAFKA_BROKERS is required with MQTT_URL (host:port[,host:port...])")
	case c.MQTT.URL != "" && c.MQTT.Username == "":
		return errors.New("MQTT_USERNAME is required with MQTT_URL")
	case c.Telemetry.MaxPayload < 0 || c.Telemetry.BatchSize < 0 || c.Telemetry.Buffer < 0:
		return errors.New("TELEMETRY_MAX_PAYLOAD, TELEMETRY_BATCH_SIZE and TELEMETRY_BUFFER must not be negative")
	case c.Telemetry.BatchWait < 0:
		return errors.New("TELEMETRY_BATCH_WAIT must not be negative")
	case c.Telemetry.EnqueueWait < 0 || c.Telemetry.EnqueueWait > 20*time.Second:
		return errors.New("TELEMETRY_ENQUEUE_WAIT must be between 0 and 20s (below the MQTT keepalive)")
	case c.Telemetry.BatchSize > 10000:
		return errors.New("TELEMETRY_BATCH_SIZE must be at most 10000 (one Kafka request per batch)")
	}
	return nil
}

// Run serves the service until ctx ends.
func Run(ctx context.Context, cfg Config, log *zap.Logger, opts ...process.Option) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("device: config: %w", err)
	}
	ls := process.Apply(opts)
	p, err := process.New("device", log, process.Config{OpsAddr: cfg.OpsAddr, HTTP: cfg.HTTP,
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
		return fmt.Errorf("device: %w", err)
	}
	// Closed last, after every server has stopped.
	defer func() { _ = db.Close() }()
	p.Health.Add("database", db.Check)
	if err := sqlstore.Migrate(ctx, db); err != nil {
		return fmt.Errorf("device: %w", err)
	}

	ts, err := cfg.Auth.NewTokenSource()
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	var dataOpts []rpc.ClientOption
	if ts != nil {
		dataOpts = append(dataOpts, rpc.WithPerRPCCredentials(ts))
	}
	dataConn, err := p.Connect(cfg.DataAddr, dataOpts...)
	if err != nil {
		return err
	}
	defer func() { _ = dataConn.Close() }()

	var broker app.Broker = app.NopBroker{}
	if cfg.BrokerMode == BrokerMosquitto {
		ds, err := dynsec.Dial(ctx, dynsec.Config{Broker: cfg.Mosquitto.URL, Username: cfg.Mosquitto.Username,
			Password: cfg.Mosquitto.Password.Reveal()})
		if err != nil {
			return fmt.Errorf("device: %w", err)
		}
		defer ds.Close()
		broker = ds
	}
	a := app.New(sqlstore.New(db), dataclient.New(dataConn), app.Config{Broker: broker, Log: log})

	serverOpts := []rpc.ServerOption{rpc.WithAuth(v, auth.WithMethodRoles(methodRoles))}
	if len(cfg.KafkaBrokers) > 0 {
		// Operator actions go to the audit log through a producer of their
		// own: they never queue behind telemetry.
		producer, err := kafka.NewProducer(kafka.Config{Brokers: cfg.KafkaBrokers, ClientID: "device-service-audit",
			DialTimeout: 5 * time.Second, TracerProvider: p.Tracer}, log.Named("audit"), nil)
		if err != nil {
			return fmt.Errorf("device: %w", err)
		}
		defer func() { _ = producer.Close() }()
		rec, err := audit.NewRecorder(producer, "/services/device", log.Named("audit"), p.Metrics)
		if err != nil {
			return fmt.Errorf("device: %w", err)
		}
		p.Go("audit backlog", rec.Run)
		serverOpts = append(serverOpts, rpc.WithServerInterceptors(rec.Interceptor(grpcapi.AuditMethods(a)), nil))
	} else {
		log.Warn("KAFKA_BROKERS not set: operator actions are not audited")
	}
	srv, err := p.GRPCServer(cfg.GRPCAddr, ls.GRPC, serverOpts...)
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	port := &commandPort{}
	cmds := app.NewCommands(sqlstore.New(db), sqlstore.New(db), dataclient.NewAccess(dataConn), app.CommandsConfig{
		Link: port, Events: port, SweepInterval: cfg.CommandSweep, Log: log.Named("commands")})
	p.Go("command sweeper", cmds.Run)
	history := app.NewPresenceHistory(sqlstore.New(db), sqlstore.New(db), dataclient.NewAccess(dataConn))
	grpcapi.Register(srv, a, cmds, history, log)
	if cfg.MQTT.URL != "" {
		if err := startLink(ctx, cfg, p, sqlstore.New(db), dataConn, sqlstore.New(db), cmds, history, port, log); err != nil {
			return err
		}
	} else {
		log.Warn("MQTT_URL not set: no telemetry ingest or presence; commands stay queued until they expire")
	}
	log.Info("device service configured", zap.String("database", string(db.Dialect)),
		zap.String("data_addr", cfg.DataAddr), zap.String("broker_mode", cfg.BrokerMode))
	return p.Run(ctx, ls.Ops)
}
