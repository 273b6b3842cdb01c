// Package notify is the notification service (the original Pigeons): catalog, preferences and dispatch to push, SMS, email and signed webhooks, and the platform's event subscriptions.
//
// Run opens and migrates the database, registers the built-in and
// configured applications, starts the gRPC server (with grpc.health.v1 and
// reflection; every call authenticated by its bearer token and authorized
// by role), the notifications.outbox consumer, the consumer of the topics
// event subscriptions may name, the dead-letter recorder, the delivery
// workers and scheduler, the outbox relay that emits
// notifications.delivery, and the ops listener, and returns when ctx ends
// after a graceful drain.
//
// The outbox is consumed in batches: the records a partition has ready are
// routed together (preferences, endpoints and templates cached briefly),
// their deliveries inserted in one transaction, the offsets marked after
// it commits, and the new deliveries handed straight to the workers; the
// workers' attempts are logged in group transactions. Retries, and first
// attempts a stopped replica left, go through the scheduler.
//
// Event subscriptions ride the same machinery: each event a subscription
// wants (its topic, its filters) becomes a webhook delivery whose body is
// the event in CloudEvents structured mode, signed with the
// subscription's secret, retried, logged (naming the subscription) and
// dead-lettered like a notification's.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/audit"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/config"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/outbox"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/libs/rpc"
	"github.com/comfortech/platform/libs/sqldb"
	"github.com/comfortech/platform/libs/tracing"
	"github.com/comfortech/platform/libs/web"
	"github.com/comfortech/platform/proto/eventcatalog"
	"github.com/comfortech/platform/services/notify/internal/accounts"
	"github.com/comfortech/platform/services/notify/internal/app"
	"github.com/comfortech/platform/services/notify/internal/grpcapi"
	"github.com/comfortech/platform/services/notify/internal/providers"
	"github.com/comfortech/platform/services/notify/internal/store/sqlstore"
)

// Topics and consumer groups.
const (
	TopicOutbox   = "notifications.outbox"
	TopicDLQ      = TopicOutbox + kafka.DeadLetterSuffix
	TopicDelivery = "notifications.delivery"
	Group         = "notify-service"
	GroupDLQ      = "notify-service-dlq"
)

// Config is the service's whole configuration, read from the environment once.
type Config struct {
	// GRPCAddr is the address of the gRPC API.
	GRPCAddr string `env:"GRPC_ADDR" envDefault:":7003"`
	// OpsAddr is the address of /healthz, /readyz and /metrics.
	OpsAddr string `env:"OPS_ADDR" envDefault:":9073"`
	// HTTP holds server timeouts and the drain timeout.
	HTTP web.ServerConfig
	// Tracing says where spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT, ...).
	Tracing tracing.Config
	// Auth locates the identity provider and lists the accepted clients;
	// AUTH_CLIENT_ID/SECRET are the service account used for DATA_ADDR.
	Auth auth.Settings
	// Log selects the log level and format.
	Log logging.Config
	// DatabaseURL is postgres://... or sqlite:path (see sqldb.Open). Required.
	DatabaseURL string `env:"DATABASE_URL"`
	// KafkaBrokers lists the bootstrap brokers. Required.
	KafkaBrokers []string `env:"KAFKA_BROKERS" envSeparator:","`
	// DataAddr is the data service's gRPC address, for recipients' phone,
	// e-mail, locale and time zone; empty uses only notification payloads.
	DataAddr string `env:"DATA_ADDR"`
	// CatalogDir holds application registrations (*.yaml, *.yml, *.json)
	// registered at start-up.
	CatalogDir string `env:"NOTIFY_CATALOG_DIR"`
	// DevSink captures push, SMS (and e-mail when SMTP_ADDR is empty) in
	// the dev inbox instead of sending them.
	DevSink bool `env:"NOTIFY_DEV_SINK"`
	// MaxAttempts per delivery before it is dead. Zero values of this and
	// the next three fields (a Config built in Go) select the defaults.
	MaxAttempts int `env:"NOTIFY_MAX_ATTEMPTS" envDefault:"8"`
	// MinBackoff and MaxBackoff bound the pause between attempts.
	MinBackoff time.Duration `env:"NOTIFY_MIN_BACKOFF" envDefault:"1s"`
	MaxBackoff time.Duration `env:"NOTIFY_MAX_BACKOFF" envDefault:"10m"`
	// Workers is how many deliveries are attempted at once.
	Workers int `env:"NOTIFY_WORKERS" envDefault:"32"`
	// Webhook settings.
	Webhook WebhookConfig
	// FCM settings (push).
	FCM FCMConfig
	// Twilio settings (SMS).
	Twilio TwilioConfig
	// SMTP settings (e-mail).
	SMTP SMTPConfig
}

// WebhookConfig configures webhook deliveries.
type WebhookConfig struct {
	// AllowPrivate lets webhooks reach private, loopback and link-local
	// addresses (dev and tests only).
	AllowPrivate bool `env:"WEBHOOK_ALLOW_PRIVATE"`
	// Timeout bounds one delivery.
	Timeout time.Duration `env:"WEBHOOK_TIMEOUT" envDefault:"10s"`
}

// FCMConfig configures push; push is off without a project.
type FCMConfig struct {
	BaseURL         string `env:"FCM_BASE_URL" envDefault:"https://fcm.googleapis.com"`
	ProjectID       string `env:"FCM_PROJECT_ID"`
	CredentialsFile string `env:"FCM_CREDENTIALS_FILE"`
	// TokenURL overrides the credentials' token_uri.
	TokenURL string `env:"FCM_TOKEN_URL"`
}

// TwilioConfig configures SMS; SMS is off without an account SID.
type TwilioConfig struct {
	BaseURL    string        `env:"TWILIO_BASE_URL" envDefault:"https://api.twilio.com"`
	AccountSID string        `env:"TWILIO_ACCOUNT_SID"`
	AuthToken  config.Secret `env:"TWILIO_AUTH_TOKEN"`
	From       string        `env:"TWILIO_FROM"`
}

// SMTPConfig configures e-mail; e-mail is off without an address.
type SMTPConfig struct {
	Addr     string        `env:"SMTP_ADDR"`
	Username string        `env:"SMTP_USERNAME"`
	Password config.Secret `env:"SMTP_PASSWORD"`
	From     string        `env:"SMTP_FROM" envDefault:"Comfortech <no-reply@comfortech.local>"`
	TLS      bool          `env:"SMTP_TLS"`
}

// Validate reports the first setting that cannot work, naming its variable.
func (c Config) Validate() error {
	switch {
	case c.DatabaseURL == "":
		return errors.New("DATABASE_URL is required (postgres://user@host:5432/db or sqlite:path/notify.db)")
	case len(c.KafkaBrokers) == 0:
		return errors.New("KAFKA_BROKERS is required (host:port[,host:port...])")
	case c.MaxAttempts < 0 || c.Workers < 0:
		return errors.New("NOTIFY_MAX_ATTEMPTS and NOTIFY_WORKERS must not be negative")
	case c.MinBackoff < 0 || c.MaxBackoff < 0 || (c.MaxBackoff > 0 && c.MaxBackoff < c.MinBackoff):
		return errors.New("NOTIFY_MIN_BACKOFF must not be negative nor above NOTIFY_MAX_BACKOFF")
	case c.FCM.ProjectID != "" && c.FCM.CredentialsFile == "" && !c.DevSink:
		return errors.New("FCM_CREDENTIALS_FILE is required with FCM_PROJECT_ID")
	case c.Twilio.AccountSID != "" && (c.Twilio.AuthToken == "" || c.Twilio.From == ""):
		return errors.New("TWILIO_AUTH_TOKEN and TWILIO_FROM are required with TWILIO_ACCOUNT_SID")
	case c.DataAddr != "" && c.Auth.ClientID == "":
		return errors.New("AUTH_CLIENT_ID and AUTH_CLIENT_SECRET are required with DATA_ADDR (the service account calling the data service)")
	}
	return nil
}

// Run serves the service until ctx ends.
func Run(ctx context.Context, cfg Config, log *zap.Logger, opts ...process.Option) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("notify: config: %w", err)
	}
	ls := process.Apply(opts)
	p, err := process.New("notify", log, process.Config{OpsAddr: cfg.OpsAddr, HTTP: cfg.HTTP,
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
		return fmt.Errorf("notify: %w", err)
	}
	defer func() { _ = db.Close() }()
	p.Health.Add("database", db.Check)
	if err := sqlstore.Migrate(ctx, db); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	store := sqlstore.New(db)

	kcfg := kafka.Config{Brokers: cfg.KafkaBrokers, ClientID: "notify-service", DialTimeout: 5 * time.Second, TracerProvider: p.Tracer}
	km, err := kafka.NewMetrics(p.Metrics)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	producer, err := kafka.NewProducer(kcfg, log, km)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	defer func() { _ = producer.Close() }()
	pinger, err := kafka.NewPinger(kcfg)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	defer func() { _ = pinger.Close() }()
	p.Health.Add("kafka", pinger.Check)
	relay, err := outbox.NewRelay(db.DB, producer, outbox.RelayConfig{Dialect: db.Dialect}, log, p.Metrics)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	p.Go("outbox relay", relay.Run)

	var dir app.Directory
	if cfg.DataAddr != "" {
		ts, err := cfg.Auth.NewTokenSource()
		if err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		conn, err := p.Connect(cfg.DataAddr, rpc.WithPerRPCCredentials(ts))
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		dir = accounts.New(conn)
	}

	dm, err := newDeliveryMetrics(p.Metrics)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	svc := app.New(store, app.Config{
		Directory:   dir,
		Events:      deliveryEvents,
		Observe:     dm.observe,
		Tracer:      p.Tracer.Tracer("github.com/comfortech/platform/services/notify"),
		Republish:   func(ctx context.Context, d *app.DeadLetter) error { return producer.Publish(ctx, replayMessage(d)) },
		CheckHost:   func(h string) error { return providers.CheckHost(h, cfg.Webhook.AllowPrivate) },
		MaxAttempts: cfg.MaxAttempts, MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff, Workers: cfg.Workers,
		DevSink: cfg.DevSink, Log: log.Named("dispatch"),
	})
	senders, err := buildSenders(cfg, svc)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	svc.SetSenders(senders)

	apps := []*app.Application{app.BuiltIn()}
	if cfg.CatalogDir != "" {
		files, err := app.LoadRegistrations(cfg.CatalogDir)
		if err != nil {
			return fmt.Errorf("notify: NOTIFY_CATALOG_DIR: %w", err)
		}
		apps = append(apps, files...)
	}
	if err := svc.RegisterAll(ctx, apps...); err != nil {
		return fmt.Errorf("notify: %w", err)
	}

	outboxRunner, err := kafka.NewRunner(kcfg, kafka.RunnerConfig{Group: Group, Topics: []string{TopicOutbox}, DeadLetter: producer,
		Batch: outboxBatchHandler(svc)}, outboxHandler(svc), log, km)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	p.Go("notifications.outbox consumer", outboxRunner.Run)
	dlqRunner, err := kafka.NewRunner(kcfg, kafka.RunnerConfig{Group: GroupDLQ, Topics: []string{TopicDLQ}, DeadLetter: producer},
		dlqHandler(svc), log, km)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	p.Go("dead-letter recorder", dlqRunner.Run)
	cat, err := eventcatalog.Load()
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	// The group reads only the topics some subscription names, from the
	// creation of the oldest one on: nobody fetches telemetry for nothing.
	// A new subscription's topic joins within a few seconds, from its
	// creation.
	subRunner, err := kafka.NewRunner(kcfg, kafka.RunnerConfig{Group: GroupSubscriptions, Topics: subscribableTopics(), DeadLetter: producer,
		Select:         func(ctx context.Context) (kafka.Selection, error) { return svc.SubscribedTopics(ctx) },
		SelectInterval: 2 * time.Second,
		Batch:          eventsBatchHandler(svc, cat)}, eventHandler(svc, cat), log, km)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	p.Go("event subscriptions consumer", subRunner.Run)
	p.Go("delivery scheduler", svc.Run)

	rec, err := audit.NewRecorder(producer, "/services/notify", log.Named("audit"), p.Metrics)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	p.Go("audit backlog", rec.Run)
	srv, err := p.GRPCServer(cfg.GRPCAddr, ls.GRPC, rpc.WithAuth(v, auth.WithMethodRoles(methodRoles)),
		rpc.WithServerInterceptors(rec.Interceptor(grpcapi.AuditMethods(svc, log)), nil))
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	grpcapi.Register(srv, svc, log)
	chans := make([]string, 0, len(senders))
	for c := range senders {
		chans = append(chans, string(c))
	}
	log.Info("notify service configured", zap.String("database", string(db.Dialect)), zap.Strings("kafka", cfg.KafkaBrokers),
		zap.Strings("channels", chans), zap.Bool("dev_sink", cfg.DevSink), zap.Bool("data_directory", dir != nil),
		zap.Int("applications", len(apps)))
	return p.Run(ctx, ls.Ops)
}

// buildSenders makes a sender per configured channel: the dev sink for
// push and SMS (and e-mail without SMTP) in dev mode.
func buildSenders(cfg Config, svc *app.Service) (map[app.Channel]app.Sender, error) {
	httpc := &http.Client{Timeout: 10 * time.Second}
	s := map[app.Channel]app.Sender{
		app.Webhook: providers.NewWebhook(providers.GuardedClient(cfg.Webhook.AllowPrivate, cfg.Webhook.Timeout)),
	}
	if cfg.DevSink {
		sink := providers.NewSink(svc.SinkStore())
		s[app.Push], s[app.SMS], s[app.Email] = sink, sink, sink
	}
	if cfg.FCM.ProjectID != "" && cfg.FCM.CredentialsFile != "" {
		creds, err := os.ReadFile(cfg.FCM.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("FCM_CREDENTIALS_FILE: %w", err)
		}
		f, err := providers.NewFCM(providers.FCMConfig{BaseURL: cfg.FCM.BaseURL, ProjectID: cfg.FCM.ProjectID, CredentialsJSON: creds, TokenURL: cfg.FCM.TokenURL}, httpc)
		if err != nil {
			return nil, fmt.Errorf("FCM_CREDENTIALS_FILE: %w", err)
		}
		if !cfg.DevSink {
			s[app.Push] = f
		}
	}
	if cfg.Twilio.AccountSID != "" && !cfg.DevSink {
		s[app.SMS] = providers.NewTwilio(providers.TwilioConfig{BaseURL: cfg.Twilio.BaseURL, AccountSID: cfg.Twilio.AccountSID,
			AuthToken: cfg.Twilio.AuthToken.Reveal(), From: cfg.Twilio.From}, httpc)
	}
	if cfg.SMTP.Addr != "" {
		s[app.Email] = providers.NewSMTP(providers.SMTPConfig{Addr: cfg.SMTP.Addr, Username: cfg.SMTP.Username,
			Password: cfg.SMTP.Password.Reveal(), From: cfg.SMTP.From, TLS: cfg.SMTP.TLS})
	}
	return s, nil
}

// replayMessage is a dead letter as it was first received, without the
// dlq_* headers.
func replayMessage(d *app.DeadLetter) kafka.Message {
	m := kafka.Message{Topic: d.Topic, Key: []byte(d.Key), Value: []byte(d.Value)}
	for k, v := range d.Headers {
		if !strings.HasPrefix(k, "dlq_") {
			m.SetHeader(k, v)
		}
	}
	return m
}
