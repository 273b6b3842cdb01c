// Package maingw is the mobile app's REST API (the original Iguana): it translates REST into gRPC calls on the data, device and notify services.
//
// Run serves the gateway's REST API — every call authenticated, the
// caller's token forwarded to the services, POSTs idempotent under an
// Idempotency-Key — its API reference at /docs and its ops listener, and
// returns when ctx ends after a graceful drain.
package maingw

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/libs/rpc"
	"github.com/comfortech/platform/libs/tracing"
	"github.com/comfortech/platform/libs/web"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/proto/openapi"
)

// Config is the gateway's whole configuration, read from the environment once.
type Config struct {
	// HTTPAddr is the address of the public REST API.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8080"`
	// OpsAddr is the address of /healthz, /readyz and /metrics.
	OpsAddr string `env:"OPS_ADDR" envDefault:":9080"`
	// BodyLimit bounds request bodies, in bytes.
	BodyLimit int64 `env:"HTTP_BODY_LIMIT" envDefault:"1048576"`
	// HTTP holds server timeouts and the drain timeout.
	HTTP web.ServerConfig
	// Tracing says where spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT, ...).
	Tracing tracing.Config
	// DataAddr is the data service's gRPC address.
	DataAddr string `env:"DATA_ADDR" envDefault:"localhost:7001"`
	// DeviceAddr is the device service's gRPC address (commands, presence).
	DeviceAddr string `env:"DEVICE_ADDR" envDefault:"localhost:7002"`
	// NotifyAddr is the notify service's gRPC address (preferences, push
	// tokens, webhooks).
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
	p, err := process.New("main-gateway", log, process.Config{OpsAddr: cfg.OpsAddr, HTTP: cfg.HTTP,
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
		return fmt.Errorf("main gateway: %w", err)
	}
	dataConn, err := p.Dial("data", cfg.DataAddr, rpc.WithCallTimeout(cfg.CallTimeout), rpc.WithPerRPCCredentials(creds))
	if err != nil {
		return err
	}
	defer func() { _ = dataConn.Close() }()
	// A command may wait up to devicev1's 30 s for its result, on top of
	// the ordinary call time.
	deviceConn, err := p.Dial("device", cfg.DeviceAddr, rpc.WithCallTimeout(cfg.CallTimeout+maxCommandWait),
		rpc.WithPerRPCCredentials(creds))
	if err != nil {
		return err
	}
	defer func() { _ = deviceConn.Close() }()
	notifyConn, err := p.Dial("notify", cfg.NotifyAddr, rpc.WithCallTimeout(cfg.CallTimeout), rpc.WithPerRPCCredentials(creds))
	if err != nil {
		return err
	}
	defer func() { _ = notifyConn.Close() }()

	gw := web.NewGateway(openapi.Main)
	if err := gw.Route(ctx, dataConn, dataServices...); err != nil {
		return fmt.Errorf("main gateway: %w", err)
	}
	if err := gw.Route(ctx, deviceConn, deviceServices...); err != nil {
		return fmt.Errorf("main gateway: %w", err)
	}
	if err := gw.Route(ctx, notifyConn, notifyServices...); err != nil {
		return fmt.Errorf("main gateway: %w", err)
	}
	guard := []web.Middleware{
		auth.Middleware(v, web.WriteError, auth.WithPublicPaths("/docs")),
		web.Idempotency(web.IdempotencyConfig{}),
	}
	l, err := process.Listen(cfg.HTTPAddr, ls.HTTP)
	if err != nil {
		return fmt.Errorf("main gateway: %w", err)
	}
	p.ServeHTTP("main", l, gw.Handler(log, cfg.BodyLimit, guard...))
	return p.Run(ctx, ls.Ops)
}

// maxCommandWait is the longest SendCommand may wait for a result
// (comfortech.device.v1.SendCommandRequest.wait_timeout).
const maxCommandWait = 30 * time.Second

// dataServices are the data service's app-facing services.
var dataServices = []web.HandlerRegistrar{
	datav1.RegisterAccountServiceHandler,
	datav1.RegisterHomeServiceHandler,
	datav1.RegisterDeviceServiceHandler,
	datav1.RegisterSharingServiceHandler,
	datav1.RegisterDeviceStateServiceHandler,
	datav1.RegisterTelemetryServiceHandler,
	datav1.RegisterAlertRuleServiceHandler,
}

// deviceServices are the device service's app-facing services.
var deviceServices = []web.HandlerRegistrar{
	devicev1.RegisterCommandServiceHandler,
	devicev1.RegisterPresenceServiceHandler,
}

// notifyServices are the notify service's app-facing services.
var notifyServices = []web.HandlerRegistrar{
	notifyv1.RegisterPreferenceServiceHandler,
	notifyv1.RegisterPushTokenServiceHandler,
	notifyv1.RegisterWebhookEndpointServiceHandler,
}
