// Package admingw is the admin panel's and operations scripts' REST API (the original Zoo): fleet, accounts, notifications, subscriptions, audit and environment configuration.
//
// Run serves the gateway's REST API — administrators only, the caller's
// token forwarded to the services, which check the role again — its API
// reference at /docs and its ops listener, and returns when ctx ends after
// a graceful drain. Routed today: the device service's operator API
// (comfortech.device.v1.DeviceAdminService: provisioning, secrets,
// decommissioning, operator commands, presence), the data service's
// fleet registry, account administration (suspension), audit log and
// device models, and the notify service's (catalog, templates, delivery
// log, dead letters, dev inbox, event subscriptions); and its own
// environment configuration (POST /v1/config:apply, GET /v1/config) and
// event catalog (GET /v1/events/asyncapi).
package admingw

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/gateways/admin/internal/envconfig"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/libs/rpc"
	"github.com/comfortech/platform/libs/tracing"
	"github.com/comfortech/platform/libs/web"
	adminv1 "github.com/comfortech/platform/proto/comfortech/admin/v1"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
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
	// Tracing says where spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT, ...).
	Tracing tracing.Config
	// DataAddr is the data service's gRPC address (fleet registry,
	// accounts, audit log, device models).
	DataAddr string `env:"DATA_ADDR" envDefault:"localhost:7001"`
	// DeviceAddr is the device service's gRPC address (provisioning,
	// device secrets, operator commands, presence).
	DeviceAddr string `env:"DEVICE_ADDR" envDefault:"localhost:7002"`
	// NotifyAddr is the notify service's gRPC address (notification
	// catalog, templates, delivery log, dead letters, dev inbox, event
	// subscriptions).
	NotifyAddr string `env:"NOTIFY_ADDR" envDefault:"localhost:7003"`
	// CallTimeout bounds each call to a service.
	CallTimeout time.Duration `env:"CALL_TIMEOUT" envDefault:"10s"`
	// Auth locates the identity provider and lists the accepted clients.
	Auth auth.Settings
	// Log selects the log level and format.
	Log logging.Config
}

// Run serves the gateway until ctx ends.
func Run(ctx context.Context, cfg Config, log *zap.Logger, opts ...process.Option) error {
	ls := process.Apply(opts)
	p, err := process.New("admin-gateway", log, process.Config{OpsAddr: cfg.OpsAddr, HTTP: cfg.HTTP,
		Tracing: cfg.Tracing, TracerProvider: ls.TracerProvider})
	if err != nil {
		return err
	}
	v, err := p.Verifier(ctx, cfg.Auth)
	if err != nil {
		return err
	}
	creds, err := cfg.Auth.ForwardingCredentials()
	if err != nil {
		return fmt.Errorf("admin gateway: %w", err)
	}
	// An operator command may wait up to devicev1's 30 s for its result,
	// on top of the ordinary call time.
	deviceConn, err := p.Dial("device", cfg.DeviceAddr, rpc.WithCallTimeout(cfg.CallTimeout+maxCommandWait),
		rpc.WithPerRPCCredentials(creds))
	if err != nil {
		return err
	}
	defer func() { _ = deviceConn.Close() }()
	dataConn, err := p.Dial("data", cfg.DataAddr, rpc.WithCallTimeout(cfg.CallTimeout), rpc.WithPerRPCCredentials(creds))
	if err != nil {
		return err
	}
	defer func() { _ = dataConn.Close() }()
	notifyConn, err := p.Dial("notify", cfg.NotifyAddr, rpc.WithCallTimeout(cfg.CallTimeout), rpc.WithPerRPCCredentials(creds))
	if err != nil {
		return err
	}
	defer func() { _ = notifyConn.Close() }()

	gw := web.NewGateway(openapi.Admin)
	if err := gw.Route(ctx, deviceConn, devicev1.RegisterDeviceAdminServiceHandler); err != nil {
		return fmt.Errorf("admin gateway: %w", err)
	}
	if err := gw.Route(ctx, dataConn, datav1.RegisterFleetServiceHandler, datav1.RegisterAccountAdminServiceHandler,
		datav1.RegisterAuditServiceHandler, datav1.RegisterDeviceModelServiceHandler); err != nil {
		return fmt.Errorf("admin gateway: %w", err)
	}
	// The environment configuration is the gateway's own: it applies a
	// document through the services' Put RPCs, as the operator.
	env := envconfig.New(envconfig.DeviceModels(dataConn), envconfig.Applications(notifyConn), envconfig.Subscriptions(notifyConn))
	if err := adminv1.RegisterConfigServiceHandlerServer(ctx, gw.API, env); err != nil {
		return fmt.Errorf("admin gateway: %w", err)
	}
	if err := gw.Route(ctx, notifyConn,
		notifyv1.RegisterCatalogServiceHandler, notifyv1.RegisterTemplateServiceHandler,
		notifyv1.RegisterDeliveryServiceHandler, notifyv1.RegisterDeadLetterServiceHandler,
		notifyv1.RegisterDevSinkServiceHandler, notifyv1.RegisterSubscriptionServiceHandler); err != nil {
		return fmt.Errorf("admin gateway: %w", err)
	}
	if err := serveEventCatalog(gw); err != nil {
		return fmt.Errorf("admin gateway: %w", err)
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
	p.ServeHTTP("admin", l, gw.Handler(log, cfg.BodyLimit, guard...))
	return p.Run(ctx, ls.Ops)
}

// maxCommandWait is the longest SendOperatorCommand may wait for a result
// (comfortech.device.v1.SendOperatorCommandRequest.wait_timeout).
const maxCommandWait = 30 * time.Second
