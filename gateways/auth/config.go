package authgw

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/comfortech/platform/gateways/auth/internal/clientip"
	"github.com/comfortech/platform/gateways/auth/internal/ratelimit"
	"github.com/comfortech/platform/libs/config"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/tracing"
	"github.com/comfortech/platform/libs/web"
)

// Config is the gateway's whole configuration, read from the environment once.
//
// A Config built in code (the all-in-one binary, tests) gets the same
// defaults as the environment for every zero field, except the ones marked
// required.
type Config struct {
	// HTTPAddr is the address of the public REST API.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8081"`
	// OpsAddr is the address of /healthz, /readyz and /metrics.
	OpsAddr string `env:"OPS_ADDR" envDefault:":9081"`
	// BodyLimit bounds request bodies, in bytes.
	BodyLimit int64 `env:"HTTP_BODY_LIMIT" envDefault:"1048576"`
	// HTTP holds server timeouts and the drain timeout.
	HTTP web.ServerConfig
	// Tracing says where spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT, ...).
	Tracing tracing.Config
	// Log selects the log level and format.
	Log logging.Config

	// KeycloakURL is the identity provider's base URL, without /auth
	// (Keycloak's Quarkus layout), e.g. https://id.example.com. Required.
	KeycloakURL string `env:"KEYCLOAK_URL"`
	// KeycloakRealm is the realm of the platform's users.
	KeycloakRealm string `env:"KEYCLOAK_REALM" envDefault:"comfortech"`
	// KeycloakIssuer overrides the iss that access tokens must carry,
	// KeycloakURL/realms/KeycloakRealm by default; set it when Keycloak has
	// a public hostname (KC_HOSTNAME) other than the URL the gateway uses.
	KeycloakIssuer string `env:"KEYCLOAK_ISSUER"`
	// KeycloakAppClient is the public client users log in through; its
	// client roles (user, admin) are the application roles.
	KeycloakAppClient string `env:"KEYCLOAK_APP_CLIENT" envDefault:"comfortech"`
	// KeycloakAdminClient is the admin panel's client, whose tokens are
	// accepted too.
	KeycloakAdminClient string `env:"KEYCLOAK_ADMIN_CLIENT" envDefault:"comfortech-admin"`
	// KeycloakTimeout bounds every call to the identity provider.
	KeycloakTimeout time.Duration `env:"KEYCLOAK_TIMEOUT" envDefault:"10s"`
	// ClientID and ClientSecret are the gateway's confidential client; its
	// service account manages users (realm-management manage-users,
	// view-users, query-users, view-clients, query-clients). The secret is
	// required.
	ClientID     string        `env:"AUTH_CLIENT_ID" envDefault:"comfortech-auth-gateway"`
	ClientSecret config.Secret `env:"AUTH_CLIENT_SECRET"`

	// KafkaBrokers lists the bootstrap brokers for account.events. Required.
	KafkaBrokers []string `env:"KAFKA_BROKERS" envSeparator:","`
	// KafkaPublishTimeout bounds the wait for an event's acknowledgement.
	KafkaPublishTimeout time.Duration `env:"KAFKA_PUBLISH_TIMEOUT" envDefault:"10s"`

	// RateLimitPerPhone and RateLimitPerIP limit login, registration and
	// one-time-code attempts, each action on its own budget, as
	// "<attempts>/<period>" (a token bucket: that many at once, refilled
	// evenly over the period) or "off".
	RateLimitPerPhone string `env:"RATE_LIMIT_PER_PHONE" envDefault:"5/1m"`
	RateLimitPerIP    string `env:"RATE_LIMIT_PER_IP" envDefault:"30/1m"`
	// TrustedProxies are the addresses or CIDR ranges of the reverse
	// proxies whose X-Forwarded-For is believed; empty means none, and the
	// client address is the connection's.
	TrustedProxies []string `env:"TRUSTED_PROXIES" envSeparator:","`

	// OTPTTL is how long a one-time code is accepted.
	OTPTTL time.Duration `env:"OTP_TTL" envDefault:"5m"`
	// OTPMaxAttempts is how many wrong codes burn a code.
	OTPMaxAttempts int `env:"OTP_MAX_ATTEMPTS" envDefault:"5"`
	// OTPResendInterval is the least time between two codes to one phone.
	OTPResendInterval time.Duration `env:"OTP_RESEND_INTERVAL" envDefault:"30s"`

	// NotifyAddr is the notify service's gRPC address, through which
	// one-time codes go out by SMS (its DirectService, called with the
	// gateway's service account). Empty: codes are kept in memory and not
	// delivered (a devsink.Sink), for tests of the gateway alone.
	NotifyAddr string `env:"NOTIFY_ADDR"`
	// NotifyTimeout bounds a one-time code's delivery through the notify
	// service, which waits for the SMS provider's answer.
	NotifyTimeout time.Duration `env:"NOTIFY_TIMEOUT" envDefault:"15s"`

	// CodeSender, when set, delivers one-time codes instead of the notify
	// service. Not read from the environment.
	CodeSender CodeSender `env:"-"`
}

// CodeSender delivers a one-time code to a phone. Implementations must
// never log the code. devsink.Sink is the development implementation.
type CodeSender interface {
	SendCode(ctx context.Context, phone, code string, ttl time.Duration) error
}

// withDefaults fills the zero fields that have a default.
func (c Config) withDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.HTTPAddr, ":8081")
	def(&c.OpsAddr, ":9081")
	def(&c.KeycloakRealm, "comfortech")
	def(&c.KeycloakAppClient, "comfortech")
	def(&c.KeycloakAdminClient, "comfortech-admin")
	def(&c.ClientID, "comfortech-auth-gateway")
	def(&c.RateLimitPerPhone, "5/1m")
	def(&c.RateLimitPerIP, "30/1m")
	if c.BodyLimit <= 0 {
		c.BodyLimit = web.DefaultBodyLimit
	}
	if c.KeycloakTimeout <= 0 {
		c.KeycloakTimeout = 10 * time.Second
	}
	if c.KafkaPublishTimeout <= 0 {
		c.KafkaPublishTimeout = 10 * time.Second
	}
	if c.NotifyTimeout <= 0 {
		c.NotifyTimeout = 15 * time.Second
	}
	if c.OTPTTL <= 0 {
		c.OTPTTL = 5 * time.Minute
	}
	if c.OTPMaxAttempts <= 0 {
		c.OTPMaxAttempts = 5
	}
	if c.OTPResendInterval <= 0 {
		c.OTPResendInterval = 30 * time.Second
	}
	c.KeycloakURL = strings.TrimSuffix(c.KeycloakURL, "/")
	def(&c.KeycloakIssuer, c.KeycloakURL+"/realms/"+c.KeycloakRealm)
	return c
}

// Validate reports the first setting that cannot work, naming its variable.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.KeycloakURL == "" {
		return errors.New("KEYCLOAK_URL is required (the identity provider's base URL, e.g. https://id.example.com)")
	}
	// In this order: the issuer defaults to one built from KEYCLOAK_URL, so
	// a bad KEYCLOAK_URL must be named as the cause.
	for _, v := range []struct{ name, value string }{{"KEYCLOAK_URL", c.KeycloakURL}, {"KEYCLOAK_ISSUER", c.KeycloakIssuer}} {
		if u, err := url.Parse(v.value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s: %q is not an absolute http(s) URL", v.name, v.value)
		}
	}
	if strings.HasSuffix(c.KeycloakURL, "/auth") {
		return fmt.Errorf("KEYCLOAK_URL: %q ends in /auth; give the base URL of Keycloak's Quarkus layout", c.KeycloakURL)
	}
	if c.ClientSecret == "" {
		return errors.New("AUTH_CLIENT_SECRET is required (the secret of the gateway's service-account client)")
	}
	if len(c.KafkaBrokers) == 0 {
		return errors.New("KAFKA_BROKERS is required (comma-separated host:port list)")
	}
	if _, err := ratelimit.ParseLimit(c.RateLimitPerPhone); err != nil {
		return fmt.Errorf("RATE_LIMIT_PER_PHONE: %w", err)
	}
	if _, err := ratelimit.ParseLimit(c.RateLimitPerIP); err != nil {
		return fmt.Errorf("RATE_LIMIT_PER_IP: %w", err)
	}
	if _, err := clientip.New(c.TrustedProxies); err != nil {
		return fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	return nil
}
