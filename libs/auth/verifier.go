package auth

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/cenkalti/backoff/v5"
	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Defaults applied by NewVerifier to zero Config fields.
const (
	// DefaultLeeway is the clock skew tolerated on exp and nbf.
	DefaultLeeway = 30 * time.Second
	// DefaultRefreshInterval is how often the JWKS is re-fetched in the
	// background, so that removed (revoked) keys stop verifying.
	DefaultRefreshInterval = 15 * time.Minute
	// DefaultUnknownKIDRefreshInterval is the minimum time between two JWKS
	// fetches triggered by tokens with an unknown kid.
	DefaultUnknownKIDRefreshInterval = 30 * time.Second
	// DefaultHTTPTimeout bounds one JWKS request.
	DefaultHTTPTimeout = 10 * time.Second
	// jwksPath is Keycloak's JWKS endpoint relative to the issuer.
	jwksPath = "/protocol/openid-connect/certs"
	// maxTokenBytes caps what is parsed: Keycloak access tokens are a few KiB,
	// and parsing cost should not be attacker-chosen.
	maxTokenBytes = 32 << 10
	// maxLoadBackoff caps the wait between start-up attempts to fetch the JWKS.
	maxLoadBackoff = 30 * time.Second
	// DefaultCacheSize is how many verified tokens are remembered.
	DefaultCacheSize = 10_000
)

// Config configures a Verifier. Issuer and AllowedClients are required; every
// other zero field takes the default documented on it.
type Config struct {
	// Issuer is the exact iss of accepted tokens, e.g.
	// "https://id.example.com/realms/comfortech". No normalisation is applied:
	// Keycloak writes the issuer byte for byte the same in every token.
	Issuer string
	// JWKSURL is where the realm's keys are fetched; default
	// Issuer + "/protocol/openid-connect/certs".
	JWKSURL string
	// AllowedClients are the accepted azp values: the app and admin clients for
	// user tokens, plus the service-account clients allowed to call a service.
	AllowedClients []string
	// AppClient is the client whose client roles count as application roles;
	// default DefaultAppClient ("comfortech").
	AppClient string
	// Leeway is the tolerated clock skew on exp and nbf; default DefaultLeeway.
	Leeway time.Duration
	// HTTPClient fetches the JWKS; default a client with HTTPTimeout.
	HTTPClient *http.Client
	// HTTPTimeout bounds one JWKS fetch (and the wait for a rate-limited
	// unknown-kid refresh); default DefaultHTTPTimeout.
	HTTPTimeout time.Duration
	// RefreshInterval is the period of the background JWKS refresh; default
	// DefaultRefreshInterval.
	RefreshInterval time.Duration
	// UnknownKIDRefreshInterval is the minimum time between two refreshes
	// triggered by an unknown kid; default DefaultUnknownKIDRefreshInterval.
	// Within it, further unknown kids are rejected without a fetch (or wait
	// at most HTTPTimeout for the next permitted one). The trade-off: a token
	// signed with a just-rotated key may be rejected until then, which beats
	// letting forged kids drive traffic to the identity provider.
	UnknownKIDRefreshInterval time.Duration
	// Logger receives JWKS fetch failures; default a no-op logger.
	Logger *zap.Logger
	// CacheSize is how many verified tokens are remembered, so that the
	// same token presented again (an app sends one token for minutes, and
	// the gateway and the service both check it) costs a hash and a lookup
	// instead of an RSA verification. Default DefaultCacheSize; negative
	// disables the cache. A remembered token is still refused once it
	// expires or once the key that signed it leaves the JWKS.
	CacheSize int
}

// Verifier verifies Keycloak access tokens. It is safe for concurrent use.
//
// The JWKS is loaded in the background: NewVerifier never blocks on, or fails
// because of, an unreachable identity provider. Until the first load succeeds,
// Verify fails with ErrUnauthenticated wrapping ErrKeysNotLoaded and Ready
// reports the cause.
type Verifier struct {
	cfg     Config
	parser  *jwt.Parser
	allowed map[string]struct{}
	log     *zap.Logger

	keys    atomic.Pointer[keyfunc.Keyfunc]
	cache   *lru.Cache[[sha256.Size]byte, verified]
	loaded  chan struct{}
	mu      sync.Mutex
	loadErr error
}

// NewVerifier validates cfg, applies defaults and starts loading the JWKS in
// the background. The background loader and refresher stop when ctx ends.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	v := &Verifier{
		cfg: cfg,
		parser: jwt.NewParser(
			// The allow-list is what defeats alg=none and the HS256 key-confusion
			// attack (an HMAC signed with the public key's bytes): only RS256
			// reaches the key function at all.
			jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithExpirationRequired(),
		),
		allowed: make(map[string]struct{}, len(cfg.AllowedClients)),
		log:     cfg.Logger,
		loaded:  make(chan struct{}),
		loadErr: errors.New("JWKS not fetched yet"),
	}
	for _, c := range cfg.AllowedClients {
		v.allowed[c] = struct{}{}
	}
	if cfg.CacheSize > 0 {
		cache, err := lru.New[[sha256.Size]byte, verified](cfg.CacheSize)
		if err != nil {
			return nil, fmt.Errorf("auth: token cache: %w", err)
		}
		v.cache = cache
	}
	go v.load(ctx)
	return v, nil
}

func (c *Config) normalize() error {
	if c.Issuer == "" {
		return errors.New("auth: Config.Issuer is required")
	}
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("auth: Config.Issuer %q is not an absolute http(s) URL", c.Issuer)
	}
	if len(c.AllowedClients) == 0 {
		return errors.New("auth: Config.AllowedClients must name at least one client (azp)")
	}
	if c.JWKSURL == "" {
		c.JWKSURL = strings.TrimSuffix(c.Issuer, "/") + jwksPath
	}
	if _, err := url.ParseRequestURI(c.JWKSURL); err != nil {
		return fmt.Errorf("auth: Config.JWKSURL: %w", err)
	}
	if c.AppClient == "" {
		c.AppClient = DefaultAppClient
	}
	if c.Leeway <= 0 {
		c.Leeway = DefaultLeeway
	}
	if c.HTTPTimeout <= 0 {
		c.HTTPTimeout = DefaultHTTPTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.HTTPTimeout}
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.UnknownKIDRefreshInterval <= 0 {
		c.UnknownKIDRefreshInterval = DefaultUnknownKIDRefreshInterval
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	return nil
}

// load fetches the JWKS until it succeeds once, then publishes a key function
// backed by jwkset's HTTP storage, which keeps refreshing on its own.
func (v *Verifier) load(ctx context.Context) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 250 * time.Millisecond
	bo.MaxInterval = maxLoadBackoff
	storage, err := backoff.Retry(ctx, func() (jwkset.Storage, error) {
		// jwkset starts its refresh goroutine before the first fetch, so every
		// failed attempt must cancel its own context to stop that goroutine.
		attemptCtx, cancel := context.WithCancel(ctx)
		s, err := jwkset.NewStorageFromHTTP(v.cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
			Client:          v.cfg.HTTPClient,
			Ctx:             attemptCtx,
			HTTPTimeout:     v.cfg.HTTPTimeout,
			RefreshInterval: v.cfg.RefreshInterval,
			RefreshErrorHandler: func(_ context.Context, err error) {
				v.log.Warn("auth: JWKS refresh failed", zap.String("url", v.cfg.JWKSURL), zap.Error(err))
			},
		})
		if err == nil {
			// An empty key set verifies nothing; treat it as not loaded.
			var all []jwkset.JWK
			if all, err = s.KeyReadAll(ctx); err == nil && len(all) == 0 {
				err = errors.New("JWKS contains no usable keys")
			}
		}
		if err != nil {
			cancel()
			v.setLoadErr(err)
			return nil, err
		}
		// Success: the refresh goroutine lives as long as ctx.
		context.AfterFunc(ctx, cancel)
		return s, nil
	},
		backoff.WithBackOff(bo),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, next time.Duration) {
			v.log.Warn("auth: JWKS not loaded, retrying", zap.String("url", v.cfg.JWKSURL),
				zap.Duration("retry_in", next), zap.Error(err))
		}),
	)
	if err != nil {
		v.setLoadErr(fmt.Errorf("JWKS loader stopped: %w", err))
		return
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{v.cfg.JWKSURL: storage},
		// Bounds both the wait for the limiter and the refresh itself. When the
		// next permitted refresh is further away than this, the limiter fails
		// at once instead of queueing, so a flood of unknown kids neither
		// reaches the identity provider nor piles up blocked requests.
		RateLimitWaitMax:  v.cfg.HTTPTimeout,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(v.cfg.UnknownKIDRefreshInterval), 1),
	})
	if err != nil {
		v.setLoadErr(err)
		return
	}
	kf, err := keyfunc.New(keyfunc.Options{
		Ctx:     ctx,
		Storage: client,
		// Keycloak also publishes an RSA-OAEP encryption key; it must never
		// verify a signature. Keys without "use" are accepted.
		UseWhitelist: []jwkset.USE{jwkset.UseSig, ""},
	})
	if err != nil {
		v.setLoadErr(err)
		return
	}
	v.keys.Store(&kf)
	v.setLoadErr(nil)
	close(v.loaded)
	v.log.Info("auth: JWKS loaded", zap.String("url", v.cfg.JWKSURL))
}

func (v *Verifier) setLoadErr(err error) {
	v.mu.Lock()
	v.loadErr = err
	v.mu.Unlock()
}

// Ready reports whether the signing keys are loaded, without blocking; it is
// meant for a /readyz check. The error names the JWKS URL and the last cause.
func (v *Verifier) Ready(context.Context) error {
	if v.keys.Load() != nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return fmt.Errorf("%w from %s: %w", ErrKeysNotLoaded, v.cfg.JWKSURL, v.loadErr)
}

// WaitReady blocks until the signing keys are loaded or ctx ends.
func (v *Verifier) WaitReady(ctx context.Context) error {
	select {
	case <-v.loaded:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", v.Ready(ctx), ctx.Err())
	}
}

// keycloakClaims is the subset of a Keycloak access token this package reads.
type keycloakClaims struct {
	jwt.RegisteredClaims
	Type              string `json:"typ"`
	AuthorizedParty   string `json:"azp"`
	SessionID         string `json:"sid"`
	PreferredUsername string `json:"preferred_username"`
	RealmAccess       struct {
		Roles []string `json:"roles"`
	} `json:"realm_access"`
	ResourceAccess map[string]struct {
		Roles []string `json:"roles"`
	} `json:"resource_access"`
}

// Verify checks rawToken (without the "Bearer " prefix) and returns its
// principal. Every failure wraps ErrUnauthenticated; the wrapped cause (for
// example jwt.ErrTokenExpired) is meant for logs, not for clients.
//
// ctx bounds a JWKS refresh that an unknown kid may trigger.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (*Principal, error) {
	if rawToken == "" {
		return nil, fmt.Errorf("%w: %w", ErrUnauthenticated, errMissingToken)
	}
	if len(rawToken) > maxTokenBytes {
		return nil, fmt.Errorf("%w: token longer than %d bytes", ErrUnauthenticated, maxTokenBytes)
	}
	kf := v.keys.Load()
	if kf == nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthenticated, ErrKeysNotLoaded)
	}
	var sum [sha256.Size]byte
	if v.cache != nil {
		sum = sha256.Sum256([]byte(rawToken))
		if e, ok := v.cache.Get(sum); ok && v.stillValid(ctx, *kf, e) {
			return e.principal, nil
		}
	}
	var (
		c    keycloakClaims
		used verified
	)
	if _, err := v.parser.ParseWithClaims(rawToken, &c, keyFor(ctx, *kf, &used)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	// typ separates the access token from the ID token ("ID") and the refresh
	// token ("Refresh"), which share issuer, subject and azp with it.
	if c.Type != "Bearer" {
		return nil, fmt.Errorf("%w: token typ %q is not Bearer", ErrUnauthenticated, clip(c.Type))
	}
	// azp, not aud: Keycloak's default aud is "account", not the client.
	if _, ok := v.allowed[c.AuthorizedParty]; !ok {
		return nil, fmt.Errorf("%w: client (azp) %q not allowed", ErrUnauthenticated, clip(c.AuthorizedParty))
	}
	if c.Subject == "" {
		return nil, fmt.Errorf("%w: token has no sub", ErrUnauthenticated)
	}
	p := &Principal{
		Subject:    c.Subject,
		Username:   c.PreferredUsername,
		ClientID:   c.AuthorizedParty,
		SessionID:  c.SessionID,
		RealmRoles: c.RealmAccess.Roles,
		AppClient:  v.cfg.AppClient,
		ExpiresAt:  c.ExpiresAt.Time,
		token:      rawToken,
	}
	if len(c.ResourceAccess) > 0 {
		p.ClientRoles = make(map[string][]string, len(c.ResourceAccess))
		for client, access := range c.ResourceAccess {
			p.ClientRoles[client] = access.Roles
		}
	}
	if v.cache != nil {
		used.principal = p
		v.cache.Add(sum, used)
	}
	return p, nil
}

// verified is a remembered verification: the principal, and the key that
// checked the signature, named by its kid.
type verified struct {
	principal *Principal
	kid       string
	key       any
}

// stillValid reports whether a remembered verification holds now: the
// token has not expired and the key that verified it is still the one the
// JWKS publishes under its kid (a refresh that drops or replaces the key
// forgets every token it verified).
func (v *Verifier) stillValid(ctx context.Context, kf keyfunc.Keyfunc, e verified) bool {
	if !time.Now().Before(e.principal.ExpiresAt.Add(v.cfg.Leeway)) {
		return false
	}
	jwk, err := kf.Storage().KeyRead(ctx, e.kid)
	return err == nil && jwk.Key() == e.key
}

// keyFor returns the jwt.Keyfunc for one verification: the key named by the
// token's kid, which must be an RSA public key. It records kid and key in
// used.
func keyFor(ctx context.Context, kf keyfunc.Keyfunc, used *verified) jwt.Keyfunc {
	lookup := kf.KeyfuncCtx(ctx)
	return func(t *jwt.Token) (any, error) {
		// Keycloak always sets kid. Without this check keyfunc would try every
		// key of the set, which widens what a forged token can aim at.
		if kid, _ := t.Header["kid"].(string); kid == "" {
			return nil, errors.New("token header has no kid")
		}
		key, err := lookup(t)
		if err != nil {
			return nil, err
		}
		if _, ok := key.(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("key for kid is %T, not an RSA public key", key)
		}
		used.kid, _ = t.Header["kid"].(string)
		used.key = key
		return key, nil
	}
}

// clip bounds attacker-controlled strings before they reach an error message.
func clip(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
