// Package admingw is the admin panel's and operations scripts' REST API (the original Zoo): fleet, accounts, notifications, subscriptions, audit and environment configuration.
//
// Run serves the gateway's REST API, its OpenAPI document at
// /docs/openapi.json and its ops listener, and returns when ctx ends after a
// graceful drain.
package admingw

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/libs/web"
	"github.com/comfortech/platform/proto/openapi"
)

// Config is the gateway's whole configuration, read from the environment once.
type Config struct {
	// HTTPAddr is the address of the public REST API.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8082"`
	// OpsAddr is the address of /healthz, /readyz and /metrics.
	OpsAddr string `env:"OPS_ADDR" envDefault:":9082"`
	// BodyLimit bounds request bodies, in bytes.
	BodyLimit int64 `env:"HTTP_BODY_LIMIT" envDefault:"1048576"`
	// HTTP holds server timeouts and the drain timeout.
	HTTP web.ServerConfig
	// Auth locates the identity provider and lists the accepted clients.
	Auth auth.Settings
	// Log selects the log level and format.
	Log logging.Config
}

// Run serves the gateway until ctx ends.
func Run(ctx context.Context, cfg Config, log *zap.Logger, opts ...process.Option) error {
	ls := process.Apply(opts)
	p := process.New("admin-gateway", log, process.Config{OpsAddr: cfg.OpsAddr, HTTP: cfg.HTTP})
	v, err := p.Verifier(ctx, cfg.Auth)
	if err != nil {
		return err
	}
	l, err := process.Listen(cfg.HTTPAddr, ls.HTTP)
	if err != nil {
		return fmt.Errorf("admin gateway: %w", err)
	}
	docs := auth.WithPublicPaths("/docs")
	// Only administrators pass: the admin panel and the operations scripts.
	guard := []web.Middleware{
		auth.Middleware(v, web.WriteError, docs),
		auth.RequireRole(auth.RoleAdmin, web.WriteError, docs),
	}
	gw := web.NewGateway(openapi.Admin)
	p.ServeHTTP("admin", l, gw.Handler(log, cfg.BodyLimit, guard...))
	return p.Run(ctx, ls.Ops)
}
