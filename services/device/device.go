// Package device is the device service (the original Goose): the MQTT side of the platform — device credentials, telemetry ingest, presence, commands and desired-state sync.
//
// Run starts the service's gRPC server (with grpc.health.v1 and reflection),
// every call authenticated by its bearer token and authorized by role, and
// its ops listener, and returns when ctx ends after a graceful drain.
package device

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/libs/rpc"
	"github.com/comfortech/platform/libs/web"
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
}

// Run serves the service until ctx ends.
func Run(ctx context.Context, cfg Config, log *zap.Logger, opts ...process.Option) error {
	ls := process.Apply(opts)
	p := process.New("device", log, process.Config{OpsAddr: cfg.OpsAddr, HTTP: cfg.HTTP})
	v, err := p.Verifier(ctx, cfg.Auth)
	if err != nil {
		return err
	}
	if _, err := p.GRPCServer(cfg.GRPCAddr, ls.GRPC, rpc.WithAuth(v, auth.WithMethodRoles(methodRoles))); err != nil {
		return fmt.Errorf("device: %w", err)
	}
	return p.Run(ctx, ls.Ops)
}
