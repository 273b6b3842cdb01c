// Package authgw is the identity gateway (the original Pyrador): registration, login, tokens, one-time codes and account management, all through Keycloak.
//
// Run serves the gateway's REST API (AuthService and UserAdminService of
// comfortech.auth.v1, in-process through grpc-gateway), its OpenAPI
// document at /docs/openapi.json and its ops listener, and applies the
// data service's account suspensions (account.events) to the identity
// provider's users; it returns when ctx ends after a graceful drain.
//
// Registration, login, refresh, logout and the one-time-code endpoints are
// public; everything else needs a bearer token of the realm, and
// /v1/admin/... the admin role.
package authgw

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/gateways/auth/devsink"
	"github.com/comfortech/platform/gateways/auth/internal/accountevents"
	"github.com/comfortech/platform/gateways/auth/internal/app"
	"github.com/comfortech/platform/gateways/auth/internal/clientip"
	"github.com/comfortech/platform/gateways/auth/internal/grpcapi"
	"github.com/comfortech/platform/gateways/auth/internal/keycloak"
	"github.com/comfortech/platform/gateways/auth/internal/notifysms"
	"github.com/comfortech/platform/gateways/auth/internal/otpstore"
	"github.com/comfortech/platform/gateways/auth/internal/ratelimit"
	"github.com/comfortech/platform/libs/audit"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/libs/rpc"
	"github.com/comfortech/platform/libs/web"
	authv1 "github.com/comfortech/platform/proto/comfortech/auth/v1"
	"github.com/comfortech/platform/proto/openapi"
)

// publicPaths need no token: a caller who has none yet must be able to get
// one, and the API documentation is public.
func publicPaths() []string {
	return []string{
		"/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout",
		"/v1/auth/otp/send", "/v1/auth/otp/verify", "/docs",
	}
}

// Run serves the gateway until ctx ends.
func Run(ctx context.Context, cfg Config, log *zap.Logger, opts ...process.Option) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("auth gateway: config: %w", err)
	}
	cfg = cfg.withDefaults()
	ls := process.Apply(opts)
	p, err := process.New("auth-gateway", log, process.Config{OpsAddr: cfg.OpsAddr, HTTP: cfg.HTTP,
		Tracing: cfg.Tracing, TracerProvider: ls.TracerProvider})
	if err != nil {
		return err
	}

	idp, err := keycloak.New(keycloak.Config{
		BaseURL: cfg.KeycloakURL, Realm: cfg.KeycloakRealm, AppClient: cfg.KeycloakAppClient,
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret.Reveal(), Timeout: cfg.KeycloakTimeout,
	})
	if err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	p.Health.Add("keycloak", idp.Ping)

	verifier, err := auth.NewVerifier(ctx, auth.Config{
		Issuer:         cfg.KeycloakIssuer,
		AllowedClients: []string{cfg.KeycloakAppClient, cfg.KeycloakAdminClient},
		AppClient:      cfg.KeycloakAppClient,
		Logger:         log,
	})
	if err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	p.Health.Add("identity-keys", verifier.Ready)

	kcfg := kafka.Config{Brokers: cfg.KafkaBrokers, ClientID: "auth-gateway", DialTimeout: 5 * time.Second, TracerProvider: p.Tracer}
	km, err := kafka.NewMetrics(p.Metrics)
	if err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	producer, err := kafka.NewProducer(kcfg, log, km)
	if err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	// Closed after every server has drained, so no request in flight loses
	// its event.
	defer func() { _ = producer.Close() }()
	pinger, err := kafka.NewPinger(kcfg)
	if err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	defer func() { _ = pinger.Close() }()
	p.Health.Add("kafka", pinger.Check)

	perPhone, perIP, err := limiters(cfg)
	if err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	sender, closeSender, err := codeSender(cfg, p, log)
	if err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	defer closeSender()
	svc, err := app.New(app.Deps{
		IdP: idp, Events: accountevents.New(producer, cfg.KafkaPublishTimeout),
		PerPhone: perPhone, PerIP: perIP, Codes: otpstore.New(0, nil), Sender: sender, Log: log,
	}, app.Config{OTPTTL: cfg.OTPTTL, OTPMaxAttempts: cfg.OTPMaxAttempts, OTPResendInterval: cfg.OTPResendInterval})
	if err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	// Operators suspend accounts in the data service; its events disable
	// and enable the users here.
	suspensions, err := accountevents.NewRunner(kcfg, svc, producer, log, km)
	if err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	p.Go("account.events consumer", suspensions.Run)
	api, err := grpcapi.New(svc, log)
	if err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	gw := web.NewGateway(openapi.Auth)
	if err := authv1.RegisterAuthServiceHandlerServer(ctx, gw.API, api.Auth()); err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	rec, err := audit.NewRecorder(producer, "/gateways/auth", log.Named("audit"), p.Metrics)
	if err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	p.Go("audit backlog", rec.Run)
	if err := authv1.RegisterUserAdminServiceHandlerServer(ctx, gw.API, api.UserAdmin(rec)); err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	ips, err := clientip.New(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}

	l, err := process.Listen(cfg.HTTPAddr, ls.HTTP)
	if err != nil {
		return fmt.Errorf("auth gateway: %w", err)
	}
	p.ServeHTTP("auth", l, gw.Handler(log, cfg.BodyLimit,
		ips.Middleware,
		auth.Middleware(verifier, web.WriteError, auth.WithPublicPaths(publicPaths()...)),
	))
	log.Info("auth gateway configured",
		zap.String("keycloak", cfg.KeycloakURL), zap.String("realm", cfg.KeycloakRealm),
		zap.String("issuer", cfg.KeycloakIssuer), zap.String("client_id", cfg.ClientID),
		zap.Stringer("client_secret", cfg.ClientSecret), zap.Strings("kafka", cfg.KafkaBrokers),
		zap.String("rate_limit_per_phone", cfg.RateLimitPerPhone), zap.String("rate_limit_per_ip", cfg.RateLimitPerIP))
	return p.Run(ctx, ls.Ops)
}

// limiters builds the per-phone and per-IP limiters of cfg.
func limiters(cfg Config) (perPhone, perIP *ratelimit.Limiter, err error) {
	phone, err := ratelimit.ParseLimit(cfg.RateLimitPerPhone)
	if err != nil {
		return nil, nil, fmt.Errorf("RATE_LIMIT_PER_PHONE: %w", err)
	}
	ip, err := ratelimit.ParseLimit(cfg.RateLimitPerIP)
	if err != nil {
		return nil, nil, fmt.Errorf("RATE_LIMIT_PER_IP: %w", err)
	}
	if perPhone, err = ratelimit.New(phone, 0); err != nil {
		return nil, nil, err
	}
	if perIP, err = ratelimit.New(ip, 0); err != nil {
		return nil, nil, err
	}
	return perPhone, perIP, nil
}

// codeSender picks how one-time codes go out: the configured CodeSender,
// else the notify service, else nowhere (kept in memory, with a warning).
// The notify service is not a readiness check: login and registration
// must go on while it is away; only sending a code fails then.
func codeSender(cfg Config, p *process.Process, log *zap.Logger) (app.CodeSender, func(), error) {
	switch {
	case cfg.CodeSender != nil:
		return cfg.CodeSender, func() {}, nil
	case cfg.NotifyAddr == "":
		log.Warn("one-time codes are kept in memory, not sent: NOTIFY_ADDR is empty")
		return devsink.New(0), func() {}, nil
	}
	ts, err := auth.NewTokenSource(auth.ClientCredentialsConfig{
		Issuer:   cfg.KeycloakURL + "/realms/" + cfg.KeycloakRealm,
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret.Reveal(),
	})
	if err != nil {
		return nil, nil, err
	}
	conn, err := p.Connect(cfg.NotifyAddr, rpc.WithPerRPCCredentials(ts), rpc.WithCallTimeout(cfg.NotifyTimeout))
	if err != nil {
		return nil, nil, fmt.Errorf("NOTIFY_ADDR: %w", err)
	}
	return notifysms.New(conn), func() { _ = conn.Close() }, nil
}
