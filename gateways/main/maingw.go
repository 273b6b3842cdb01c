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

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/libs/rpc"
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
	p := process.New("main-gateway", log, process.Config{OpsAddr: cfg.OpsAddr, HTTP: cfg.HTTP})
	v, err := p.Verifier(ctx, cfg.Auth)
	if err != nil {
		return err
	}
	creds, err := serviceCredentials(cfg.Auth)
	if err != nil {
		return fmt.Errorf("main gateway: %w", err)
	}
	dataConn, err := rpc.Dial(cfg.DataAddr, p.Metrics, rpc.WithCallTimeout(cfg.CallTimeout), rpc.WithPerRPCCredentials(creds))
	if err != nil {
		return fmt.Errorf("main gateway: %w", err)
	}
	defer func() { _ = dataConn.Close() }()
	p.Health.Add("data", rpc.HealthCheck(dataConn))
	// A command may wait up to devicev1's 30 s for its result, on top of
	// the ordinary call time.
	deviceConn, err := rpc.Dial(cfg.DeviceAddr, p.Metrics, rpc.WithCallTimeout(cfg.CallTimeout+maxCommandWait),
		rpc.WithPerRPCCredentials(creds))
	if err != nil {
		return fmt.Errorf("main gateway: %w", err)
	}
	defer func() { _ = deviceConn.Close() }()
	p.Health.Add("device", rpc.HealthCheck(deviceConn))

	notifyConn, err := rpc.Dial(cfg.NotifyAddr, p.Metrics, rpc.WithCallTimeout(cfg.CallTimeout), rpc.WithPerRPCCredentials(creds))
	if err != nil {
		return fmt.Errorf("main gateway: %w", err)
	}
	defer func() { _ = notifyConn.Close() }()
	p.Health.Add("notify", rpc.HealthCheck(notifyConn))

	gw := web.NewGateway(openapi.Main)
	if err := register(ctx, gw.API, dataConn, dataServices); err != nil {
		return fmt.Errorf("main gateway: %w", err)
	}
	if err := register(ctx, gw.API, deviceConn, deviceServices); err != nil {
		return fmt.Errorf("main gateway: %w", err)
	}
	if err := register(ctx, gw.API, notifyConn, notifyServices); err != nil {
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

// serviceCredentials forwards the caller's own token on every call, and
// uses the gateway's service account for calls made without a user.
func serviceCredentials(s auth.Settings) (credentials.PerRPCCredentials, error) {
	ts, err := s.NewTokenSource()
	if err != nil {
		return nil, err
	}
	if ts == nil {
		return auth.ForwardCredentials(nil), nil
	}
	return auth.ForwardCredentials(ts), nil
}

// maxCommandWait is the longest SendCommand may wait for a result
// (comfortech.device.v1.SendCommandRequest.wait_timeout).
const maxCommandWait = 30 * time.Second

// handlerRegistrar registers one service's REST handlers on a connection.
type handlerRegistrar = func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error

// dataServices are the data service's app-facing services.
var dataServices = []handlerRegistrar{
	datav1.RegisterAccountServiceHandler,
	datav1.RegisterHomeServiceHandler,
	datav1.RegisterDeviceServiceHandler,
	datav1.RegisterSharingServiceHandler,
	datav1.RegisterDeviceStateServiceHandler,
	datav1.RegisterTelemetryServiceHandler,
	datav1.RegisterAlertRuleServiceHandler,
}

// deviceServices are the device service's app-facing services.
var deviceServices = []handlerRegistrar{
	devicev1.RegisterCommandServiceHandler,
	devicev1.RegisterPresenceServiceHandler,
}

// notifyServices are the notify service's app-facing services.
var notifyServices = []handlerRegistrar{
	notifyv1.RegisterPreferenceServiceHandler,
	notifyv1.RegisterPushTokenServiceHandler,
	notifyv1.RegisterWebhookEndpointServiceHandler,
}

// register exposes services over conn.
func register(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn, services []handlerRegistrar) error {
	for _, r := range services {
		if err := r(ctx, mux, conn); err != nil {
			return err
		}
	}
	return nil
}
