package auth

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"go.uber.org/zap"
	"google.golang.org/grpc/credentials"

	"github.com/comfortech/platform/libs/config"
)

// RoleService is the client role (of the app client) that the platform's
// service accounts hold: internal RPCs — telemetry append, account
// creation, broker authentication — require it, so no user token can call
// them.
const RoleService = "service"

// DefaultAllowedClients are the clients of the platform's realm whose tokens
// its parts accept: the mobile app, the admin panel, the platform's
// service accounts and the operators' service account (comfortech-ops,
// which comfortctl and scripts log in with).
func DefaultAllowedClients() []string {
	return []string{
		"comfortech", "comfortech-admin",
		"comfortech-auth-gateway", "comfortech-main-gateway", "comfortech-admin-gateway",
		"comfortech-data", "comfortech-device", "comfortech-notify", "comfortech-ops",
	}
}

// Settings is the environment configuration of a part's guard: where the
// realm is, which clients' tokens it accepts, and the part's own service
// account for the calls it makes without a user.
type Settings struct {
	// Issuer is the realm URL and the exact iss of accepted tokens:
	// https://id.example.com/realms/comfortech.
	Issuer string `env:"AUTH_ISSUER"`
	// JWKSURL overrides where the realm's keys are fetched, for an identity
	// provider reached under another name than its public issuer.
	JWKSURL string `env:"AUTH_JWKS_URL"`
	// AllowedClients are the accepted azp values; empty means
	// DefaultAllowedClients.
	AllowedClients []string `env:"AUTH_ALLOWED_CLIENTS" envSeparator:","`
	// ClientID and ClientSecret are the part's confidential service-account
	// client; empty when the part makes no calls of its own.
	ClientID     string        `env:"AUTH_CLIENT_ID"`
	ClientSecret config.Secret `env:"AUTH_CLIENT_SECRET"`
}

// Validate reports the first setting that cannot work, naming its variable.
func (s Settings) Validate() error {
	if s.Issuer == "" {
		return errors.New("AUTH_ISSUER is required (the realm URL, e.g. https://id.example.com/realms/comfortech)")
	}
	if u, err := url.Parse(s.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("AUTH_ISSUER: %q is not an absolute http(s) URL", s.Issuer)
	}
	if (s.ClientID == "") != (s.ClientSecret == "") {
		return errors.New("AUTH_CLIENT_ID and AUTH_CLIENT_SECRET go together")
	}
	return nil
}

// NewVerifier starts a Verifier for these settings; it stops with ctx.
func (s Settings) NewVerifier(ctx context.Context, log *zap.Logger) (*Verifier, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	allowed := s.AllowedClients
	if len(allowed) == 0 {
		allowed = DefaultAllowedClients()
	}
	return NewVerifier(ctx, Config{
		Issuer:         s.Issuer,
		JWKSURL:        s.JWKSURL,
		AllowedClients: allowed,
		Logger:         log,
	})
}

// NewTokenSource returns the part's service-account token source, or nil
// when no client is configured.
func (s Settings) NewTokenSource() (*TokenSource, error) {
	if s.ClientID == "" {
		return nil, nil
	}
	return NewTokenSource(ClientCredentialsConfig{Issuer: s.Issuer, ClientID: s.ClientID, ClientSecret: s.ClientSecret.Reveal()})
}

// ForwardingCredentials returns the per-RPC credentials of a gateway's
// calls to the services: the caller's own token when the call is made for
// a user (see ForwardCredentials), otherwise the part's service account,
// or no token when none is configured.
func (s Settings) ForwardingCredentials() (credentials.PerRPCCredentials, error) {
	ts, err := s.NewTokenSource()
	if err != nil {
		return nil, err
	}
	if ts == nil {
		// A nil *TokenSource in the interface would not be a nil fallback.
		return ForwardCredentials(nil), nil
	}
	return ForwardCredentials(ts), nil
}
