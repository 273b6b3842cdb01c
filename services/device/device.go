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

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/config"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/libs/rpc"
	"github.com/comfortech/platform/libs/sqldb"
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
	}
	return nil
}

// Run serves the service until ctx ends.
func Run(ctx context.Context, cfg Config, log *zap.Logger, opts ...process.Option) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("device: config: %w", err)
	}
	ls := process.Apply(opts)
	p := process.New("device", log, process.Config{OpsAddr: cfg.OpsAddr, HTTP: cfg.HTTP})
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
	dataConn, err := rpc.Dial(cfg.DataAddr, p.Metrics, dataOpts...)
	if err != nil {
		return fmt.Errorf("device: %w", err)
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

	srv, err := p.GRPCServer(cfg.GRPCAddr, ls.GRPC, rpc.WithAuth(v, auth.WithMethodRoles(methodRoles)))
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	grpcapi.Register(srv, a, log)
	log.Info("device service configured", zap.String("database", string(db.Dialect)),
		zap.String("data_addr", cfg.DataAddr), zap.String("broker_mode", cfg.BrokerMode))
	return p.Run(ctx, ls.Ops)
}
