package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// DefaultEarlyRefresh is how long before its expiry a service token is
// replaced, so that a token never expires in flight between services.
const DefaultEarlyRefresh = 30 * time.Second

// tokenPath is Keycloak's token endpoint relative to the issuer.
const tokenPath = "/protocol/openid-connect/token"

// ClientCredentialsConfig configures a TokenSource for a confidential
// service-account client.
type ClientCredentialsConfig struct {
	// Issuer is the realm URL; the token endpoint is derived from it unless
	// TokenURL is set.
	Issuer string
	// TokenURL overrides Issuer + "/protocol/openid-connect/token".
	TokenURL string
	// ClientID and ClientSecret are the service's client credentials, sent
	// with HTTP Basic authentication.
	ClientID     string
	ClientSecret string
	// Scopes are optional extra scopes.
	Scopes []string
	// HTTPClient calls the token endpoint; default a client with a 10 s timeout.
	HTTPClient *http.Client
	// EarlyRefresh is how long before expiry the token is replaced; default
	// DefaultEarlyRefresh. A token whose lifetime is shorter is fetched anew
	// on every call, so keep it well below the realm's access-token lifespan.
	EarlyRefresh time.Duration
}

// TokenSource issues service-account access tokens with the OAuth 2
// client-credentials grant. Tokens are cached and shared by concurrent callers
// and refreshed EarlyRefresh before they expire. It is an oauth2.TokenSource
// and, for outgoing gRPC calls, a credentials.PerRPCCredentials.
type TokenSource struct {
	src oauth2.TokenSource
}

var (
	_ oauth2.TokenSource            = (*TokenSource)(nil)
	_ credentials.PerRPCCredentials = (*TokenSource)(nil)
)

// NewTokenSource validates cfg and returns a TokenSource. No token is fetched
// until the first call.
func NewTokenSource(cfg ClientCredentialsConfig) (*TokenSource, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("auth: ClientCredentialsConfig needs ClientID and ClientSecret")
	}
	if cfg.TokenURL == "" {
		if cfg.Issuer == "" {
			return nil, errors.New("auth: ClientCredentialsConfig needs Issuer or TokenURL")
		}
		cfg.TokenURL = strings.TrimSuffix(cfg.Issuer, "/") + tokenPath
	}
	if _, err := url.ParseRequestURI(cfg.TokenURL); err != nil {
		return nil, fmt.Errorf("auth: ClientCredentialsConfig.TokenURL: %w", err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if cfg.EarlyRefresh <= 0 {
		cfg.EarlyRefresh = DefaultEarlyRefresh
	}
	cc := &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     cfg.TokenURL,
		Scopes:       cfg.Scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	// oauth2 takes its HTTP client from the context; this context lives as
	// long as the TokenSource, and each fetch is bounded by the client's timeout.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, cfg.HTTPClient)
	// cc.Token fetches a fresh token on every call (cc.TokenSource would add a
	// second cache with its own fixed 10 s margin); ReuseTokenSourceWithExpiry
	// is the one cache, with our margin.
	fetch := tokenFunc(func() (*oauth2.Token, error) { return cc.Token(ctx) })
	return &TokenSource{src: oauth2.ReuseTokenSourceWithExpiry(nil, fetch, cfg.EarlyRefresh)}, nil
}

// Token returns a valid service token, fetching one when the cached token is
// missing or about to expire.
func (s *TokenSource) Token() (*oauth2.Token, error) {
	t, err := s.src.Token()
	if err != nil {
		return nil, fmt.Errorf("auth: client-credentials token: %w", err)
	}
	return t, nil
}

// GetRequestMetadata implements credentials.PerRPCCredentials: it sets the
// authorization metadata to the service token. A failure to obtain a token
// fails the call with codes.Unavailable.
func (s *TokenSource) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	t, err := s.Token()
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return map[string]string{authorizationKey: "Bearer " + t.AccessToken}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials. It is
// false because in-cluster gRPC is plaintext (the network, or a mesh doing
// mTLS, protects it); true would make gRPC refuse to send the token at all.
func (s *TokenSource) RequireTransportSecurity() bool { return false }

// tokenFunc adapts a function to oauth2.TokenSource.
type tokenFunc func() (*oauth2.Token, error)

// Token implements oauth2.TokenSource.
func (f tokenFunc) Token() (*oauth2.Token, error) { return f() }
