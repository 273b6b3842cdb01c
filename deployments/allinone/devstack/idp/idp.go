// Package idp is an embedded, Keycloak-compatible OpenID Connect identity
// provider for `make run` and tests. Production runs real Keycloak 26; this
// provider answers the subset of Keycloak the platform uses
// (shared/contracts/keycloak-subset.md) the way Keycloak does — paths
// (Quarkus layout, no /auth prefix), form fields, status codes, error
// bodies, token headers and claims, discovery, JWKS and the admin REST API —
// so that gocloak and third-party OIDC clients cannot tell the difference.
//
// It is real, not a mock: realms, clients, roles, users, argon2id password
// hashes, user sessions and signing keys persist in SQLite; logout ends the
// session; disabled users cannot log in or refresh; keys rotate.
//
// Realms come from Keycloak realm-export JSON files (the same file real
// Keycloak imports), plus a "master" realm the provider creates itself with
// the admin-cli client and an "admin" user.
//
//	p, err := idp.New(ctx, idp.Config{
//		DBPath:              filepath.Join(dataDir, "idp.db"),
//		RealmFiles:          []string{"deployments/keycloak/realm-comfortech.json"},
//		MasterAdminPassword: adminPassword,
//		Logger:              log,
//	})
//	defer p.Close()
//	srv := &http.Server{Handler: p.Handler()}
package idp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idpstore"
)

// MasterRealm is the administration realm every Keycloak has.
const MasterRealm = "master"

// Config configures a Provider.
type Config struct {
	// DBPath is the SQLite file holding the provider's state; "" keeps it
	// in memory (for tests), so nothing survives Close.
	DBPath string
	// RealmFiles are Keycloak realm-export JSON files, imported when their
	// realm does not exist yet (an existing realm is left as it is, as
	// Keycloak's --import-realm does).
	RealmFiles []string
	// Env resolves ${VAR} and ${VAR:default} placeholders in realm files;
	// nil means os.LookupEnv.
	Env func(string) (string, bool)
	// MasterAdminPassword is the password of the master realm's "admin"
	// user, used only when that user is created (first start).
	MasterAdminPassword string
	// Users are ensured at start: created when missing (with their password
	// and roles); an existing user is left untouched, password included.
	Users []BootstrapUser
	// BaseURL, e.g. "http://localhost:8090", fixes the issuer's base; ""
	// derives it from each request's scheme and Host, as Keycloak does
	// without a configured hostname.
	BaseURL string
	// Logger receives operational logs; nil means no logs. Tokens,
	// passwords and secrets are never logged.
	Logger *zap.Logger
	// PasswordHashing are the argon2id parameters of new password hashes;
	// zero means DefaultHashParams.
	PasswordHashing HashParams
	// ActionsEmail sends the mail of PUT …/execute-actions-email. nil means
	// no mail server is configured: Keycloak then answers 500, and so does
	// this provider.
	ActionsEmail func(ctx context.Context, m ActionsEmail) error
	// Clock returns the current time; nil means time.Now. Tests move it to
	// expire tokens and sessions.
	Clock func() time.Time
}

// BootstrapUser is a user ensured at start.
type BootstrapUser struct {
	Realm, Username, Password, Email, FirstName, LastName string
	// RealmRoles are realm role names; ClientRoles maps a clientId to role
	// names of that client. The realm's default role is always mapped.
	RealmRoles  []string
	ClientRoles map[string][]string
}

// ActionsEmail is the message behind an execute-actions-email request.
type ActionsEmail struct {
	Realm    string
	UserID   string
	Username string
	Email    string
	// Actions are required-action names, e.g. UPDATE_PASSWORD.
	Actions []string
	// ClientID and RedirectURI are where the user goes after the actions.
	ClientID    string
	RedirectURI string
	// Lifespan is how long the link stays valid.
	Lifespan time.Duration
}

// Provider is the identity provider. Its Handler serves the Keycloak HTTP
// API; it is safe for concurrent use.
type Provider struct {
	cfg    Config
	store  *idpstore.Store
	keys   *keyring
	log    *zap.Logger
	hash   HashParams
	now    func() time.Time
	env    func(string) (string, bool)
	dummy  string // a hash to verify against when the user is unknown
	router http.Handler
	// nextSweep holds, per realm id, an *atomic.Int64: when (unix seconds)
	// that realm's expired sessions are next deleted.
	nextSweep sync.Map
}

// New opens the store, creates the master realm, imports the realm files,
// ensures the bootstrap users, and returns a ready provider.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	p := &Provider{cfg: cfg, log: cfg.Logger, hash: cfg.PasswordHashing, now: cfg.Clock, env: cfg.Env}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	if p.hash == (HashParams{}) {
		p.hash = DefaultHashParams
	}
	if p.hash.Memory == 0 || p.hash.Iterations == 0 || p.hash.Parallelism == 0 {
		return nil, errors.New("idp: PasswordHashing needs Memory, Iterations and Parallelism > 0")
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.env == nil {
		p.env = os.LookupEnv
	}
	dummy, err := hashPassword(rand.Text(), p.hash)
	if err != nil {
		return nil, err
	}
	p.dummy = dummy
	st, err := idpstore.Open(ctx, cfg.DBPath)
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	p.store = st
	p.keys = newKeyring(st)
	if err := p.bootstrap(ctx); err != nil {
		_ = st.Close()
		return nil, err
	}
	p.router = p.routes()
	return p, nil
}

// bootstrap brings the store to the configured state.
func (p *Provider) bootstrap(ctx context.Context) error {
	if err := p.ensureMaster(ctx); err != nil {
		return err
	}
	for _, f := range p.cfg.RealmFiles {
		if err := p.importRealmFile(ctx, f); err != nil {
			return err
		}
	}
	for _, u := range p.cfg.Users {
		if err := p.ensureUser(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

// Handler serves the Keycloak HTTP API: /realms/… and /admin/realms/….
func (p *Provider) Handler() http.Handler { return p.router }

// Check reports whether the database answers, for a readiness probe.
func (p *Provider) Check(ctx context.Context) error {
	if err := p.store.Ping(ctx); err != nil {
		return fmt.Errorf("idp: %w", err)
	}
	return nil
}

// Close closes the database. The handler must not be used afterwards.
func (p *Provider) Close() error {
	if err := p.store.Close(); err != nil {
		return fmt.Errorf("idp: %w", err)
	}
	return nil
}

func zapRealm(r string) zap.Field { return zap.String("realm", r) }
func zapKID(k string) zap.Field   { return zap.String("kid", k) }
