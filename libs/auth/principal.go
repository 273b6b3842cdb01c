package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/comfortech/platform/libs/logging"
)

// Role names and the client whose roles are the application roles (§4).
const (
	// RoleUser is the client role every registered app user has.
	RoleUser = "user"
	// RoleAdmin is the client role of platform administrators.
	RoleAdmin = "admin"
	// DefaultAppClient is the Keycloak client whose client roles count as
	// application roles in [Principal.HasRole].
	DefaultAppClient = "comfortech"
	// serviceAccountPrefix is how Keycloak names the user behind a
	// client-credentials token: service-account-{clientId}.
	serviceAccountPrefix = "service-account-"
)

// Principal is the verified identity behind a request.
//
// Its String method omits the raw token and the username (a phone number), so
// a Principal is safe to pass to a formatter; still, log Subject rather than
// the whole value.
//
// A Principal is shared: the Verifier hands the same one to every request
// that presents the same token. Treat it, its slices and its map as
// read-only.
type Principal struct {
	// Subject is the token's sub: the account id everywhere in the platform.
	Subject string
	// Username is preferred_username: the E.164 phone number for app users,
	// "service-account-<client>" for service accounts. Personal data: do not log.
	Username string
	// ClientID is azp, the client the token was issued to.
	ClientID string
	// SessionID is sid, the Keycloak user session (empty for service accounts
	// in some Keycloak versions).
	SessionID string
	// RealmRoles are realm_access.roles.
	RealmRoles []string
	// ClientRoles are resource_access.<client>.roles, keyed by client id.
	ClientRoles map[string][]string
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time
	// AppClient names the client whose roles HasRole consults; empty means
	// DefaultAppClient. The Verifier fills it from its configuration.
	AppClient string

	// token is the raw access token, kept unexported so that it never ends up
	// in JSON or reflection-based log encoders by accident.
	token string
}

// Token returns the raw bearer token the principal was verified from, for
// forwarding to downstream services. Never log it.
func (p *Principal) Token() string { return p.token }

// HasRole reports whether the principal holds role either as a client role of
// the application client (resource_access.<AppClient>.roles) or as a realm
// role (realm_access.roles).
func (p *Principal) HasRole(role string) bool {
	if p == nil || role == "" {
		return false
	}
	app := p.AppClient
	if app == "" {
		app = DefaultAppClient
	}
	return slices.Contains(p.ClientRoles[app], role) || slices.Contains(p.RealmRoles, role)
}

// IsAdmin reports whether the principal holds the admin role.
func (p *Principal) IsAdmin() bool { return p.HasRole(RoleAdmin) }

// IsServiceAccount reports whether the token was issued through the
// client-credentials grant to a service rather than to a person.
func (p *Principal) IsServiceAccount() bool {
	return p != nil && strings.HasPrefix(p.Username, serviceAccountPrefix)
}

// String describes the principal without the token or the username.
func (p *Principal) String() string {
	if p == nil {
		return "principal(nil)"
	}
	return fmt.Sprintf("principal(sub=%s azp=%s)", p.Subject, p.ClientID)
}

// GoString keeps %#v from printing the unexported token.
func (p *Principal) GoString() string { return p.String() }

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p. It also adds p's account
// id to the call's log fields (logging.AddFields), so that the access log
// of the call names the account.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	if p != nil {
		logging.AddFields(ctx, logging.AccountID(p.Subject))
	}
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal stored in ctx by WithPrincipal (and so by
// the middleware and interceptors of this package).
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// Authorize checks that ctx carries a principal holding role; an empty role
// only requires authentication. It returns an error wrapping ErrUnauthenticated
// or ErrForbidden, for handlers that check roles themselves.
func Authorize(ctx context.Context, role string) error {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return fmt.Errorf("%w: no principal in context", ErrUnauthenticated)
	}
	if role != "" && !p.HasRole(role) {
		return fmt.Errorf("%w: requires role %q", ErrForbidden, role)
	}
	return nil
}
