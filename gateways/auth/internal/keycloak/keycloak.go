// Package keycloak implements app.IdentityProvider with gocloak against
// Keycloak 26 (or the embedded provider that answers the same subset; see
// contracts/keycloak-subset.md).
//
// User logins go through the public application client; every admin call
// uses the gateway's own confidential client's service-account token
// (client-credentials grant), cached until shortly before it expires.
package keycloak

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Nerzal/gocloak/v13"
	"golang.org/x/sync/errgroup"

	"github.com/comfortech/platform/gateways/auth/internal/app"
)

// Config says where the realm is and which clients to use.
type Config struct {
	// BaseURL is the server's base URL, without /auth (Quarkus layout).
	BaseURL string
	// Realm is the realm of the platform's users.
	Realm string
	// AppClient is the public client users log in through.
	AppClient string
	// ClientID and ClientSecret are the gateway's confidential client,
	// whose service account holds realm-management's manage-users,
	// view-users, query-users, view-clients and query-clients.
	ClientID, ClientSecret string
	// Timeout bounds every HTTP call; resty has no default timeout.
	Timeout time.Duration
	// EarlyRefresh is how long before its expiry the service token is
	// replaced; default 30 s (never more than half its lifetime).
	EarlyRefresh time.Duration
}

// Client is the adapter. It is safe for concurrent use.
type Client struct {
	gc  *gocloak.GoCloak
	cfg Config
	now func() time.Time

	// tokenMu serialises service-token fetches, so that a burst of calls
	// after expiry makes one token request, not one each.
	tokenMu     sync.Mutex
	token       string
	tokenExpiry time.Time

	rolesMu    sync.Mutex
	clientUUID string
	roles      map[string]gocloak.Role
}

var _ app.IdentityProvider = (*Client)(nil)

// New returns a Client; it makes no call yet.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" || cfg.Realm == "" || cfg.AppClient == "" || cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("keycloak: BaseURL, Realm, AppClient, ClientID and ClientSecret are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.EarlyRefresh <= 0 {
		cfg.EarlyRefresh = 30 * time.Second
	}
	gc := gocloak.NewClient(strings.TrimSuffix(cfg.BaseURL, "/"))
	gc.RestyClient().SetTimeout(cfg.Timeout)
	// A redirect from the identity provider is a misconfiguration (an
	// http→https hop would resend the form with the password); refuse it.
	gc.RestyClient().SetRedirectPolicy(noRedirects{})
	return &Client{gc: gc, cfg: cfg, now: time.Now}, nil
}

// noRedirects is a resty redirect policy that follows none.
type noRedirects struct{}

// Apply implements resty.RedirectPolicy.
func (noRedirects) Apply(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Ping checks that the realm answers, for readiness. It needs no token.
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.gc.GetIssuer(ctx, c.cfg.Realm); err != nil {
		return fmt.Errorf("keycloak realm %s: %w", c.cfg.Realm, err)
	}
	return nil
}

// Login implements app.IdentityProvider.
func (c *Client) Login(ctx context.Context, username, password string) (app.Tokens, error) {
	jwt, err := c.gc.Login(ctx, c.cfg.AppClient, "", c.cfg.Realm, username, password)
	if err != nil {
		return app.Tokens{}, loginError(err)
	}
	return tokens(jwt)
}

// Refresh implements app.IdentityProvider.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (app.Tokens, error) {
	jwt, err := c.gc.RefreshToken(ctx, refreshToken, c.cfg.AppClient, "", c.cfg.Realm)
	if err != nil {
		return app.Tokens{}, refreshError("refresh", err)
	}
	return tokens(jwt)
}

// Logout implements app.IdentityProvider.
func (c *Client) Logout(ctx context.Context, refreshToken string) error {
	if err := c.gc.Logout(ctx, c.cfg.AppClient, "", c.cfg.Realm, refreshToken); err != nil {
		return refreshError("logout", err)
	}
	return nil
}

// tokens converts a token answer. gocloak parses only JSON answers and
// leaves the struct empty otherwise (contract §1), so an empty access token
// means the server answered something else.
func tokens(jwt *gocloak.JWT) (app.Tokens, error) {
	if jwt == nil || jwt.AccessToken == "" {
		return app.Tokens{}, errors.New("keycloak: token answer without access_token (not JSON?)")
	}
	return app.Tokens{
		AccessToken: jwt.AccessToken, RefreshToken: jwt.RefreshToken,
		ExpiresIn: jwt.ExpiresIn, RefreshExpiresIn: jwt.RefreshExpiresIn, TokenType: jwt.TokenType,
	}, nil
}

// serviceToken returns the cached service-account token, fetching a new
// one when it is missing or about to expire.
func (c *Client) serviceToken(ctx context.Context) (string, error) {
	c.tokenMu.Lock()
	defer c.tokenMu.Unlock()
	if c.token != "" && c.now().Before(c.tokenExpiry) {
		return c.token, nil
	}
	jwt, err := c.gc.LoginClient(ctx, c.cfg.ClientID, c.cfg.ClientSecret, c.cfg.Realm)
	if err != nil {
		if ae, ok := apiError(err); ok && !transport(ae) {
			// A wrong secret or a missing client is configuration.
			return "", fmt.Errorf("keycloak: service account %s: %s", c.cfg.ClientID, ae.Message)
		}
		return "", fmt.Errorf("%w: keycloak service account: %w", app.ErrUnavailable, err)
	}
	if jwt.AccessToken == "" {
		return "", errors.New("keycloak: client-credentials answer without access_token")
	}
	life := time.Duration(jwt.ExpiresIn) * time.Second
	c.token = jwt.AccessToken
	c.tokenExpiry = c.now().Add(life - min(c.cfg.EarlyRefresh, life/2))
	return c.token, nil
}

// dropToken forgets token, unless a newer one replaced it already.
func (c *Client) dropToken(token string) {
	c.tokenMu.Lock()
	defer c.tokenMu.Unlock()
	if c.token == token {
		c.token = ""
	}
}

// admin runs call with the service token and maps its error. A refused
// token (revoked, or signed by a key rotated away) is fetched again once.
func (c *Client) admin(ctx context.Context, op string, call func(token string) error) error {
	for attempt := 0; ; attempt++ {
		tok, err := c.serviceToken(ctx)
		if err != nil {
			return err
		}
		err = adminError(op, call(tok))
		if err == nil || !errors.Is(err, errServiceToken) || attempt > 0 {
			return err
		}
		c.dropToken(tok)
	}
}

// CreateUser implements app.IdentityProvider. Keycloak creates users
// disabled unless told otherwise.
func (c *Client) CreateUser(ctx context.Context, u app.NewUser) (string, error) {
	rep := gocloak.User{Username: gocloak.StringP(u.Username), Enabled: gocloak.BoolP(true)}
	if u.FirstName != "" {
		rep.FirstName = gocloak.StringP(u.FirstName)
	}
	if u.LastName != "" {
		rep.LastName = gocloak.StringP(u.LastName)
	}
	if u.Email != "" {
		rep.Email = gocloak.StringP(u.Email)
	}
	var id string
	err := c.admin(ctx, "create user", func(tok string) (err error) {
		id, err = c.gc.CreateUser(ctx, tok, c.cfg.Realm, rep)
		return err
	})
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", errors.New("keycloak: create user: no Location in the answer")
	}
	return id, nil
}

// SetPassword implements app.IdentityProvider.
func (c *Client) SetPassword(ctx context.Context, id, password string, temporary bool) error {
	return c.admin(ctx, "set password", func(tok string) error {
		return c.gc.SetPassword(ctx, tok, id, c.cfg.Realm, password, temporary)
	})
}

// User implements app.IdentityProvider.
func (c *Client) User(ctx context.Context, id string) (app.User, error) {
	var u *gocloak.User
	err := c.admin(ctx, "get user", func(tok string) (err error) {
		u, err = c.gc.GetUserByID(ctx, tok, c.cfg.Realm, id)
		return err
	})
	if err != nil {
		return app.User{}, err
	}
	return c.withRoles(ctx, u)
}

// UserByUsername implements app.IdentityProvider.
func (c *Client) UserByUsername(ctx context.Context, username string) (app.User, error) {
	var users []*gocloak.User
	err := c.admin(ctx, "find user", func(tok string) (err error) {
		users, err = c.gc.GetUsers(ctx, tok, c.cfg.Realm, gocloak.GetUsersParams{
			Username: gocloak.StringP(username), Exact: gocloak.BoolP(true),
		})
		return err
	})
	if err != nil {
		return app.User{}, err
	}
	// Usernames are stored lower-cased; exact=true matches on that.
	for _, u := range users {
		if strings.EqualFold(gocloak.PString(u.Username), username) {
			return toUser(u, nil), nil
		}
	}
	return app.User{}, fmt.Errorf("%w: user by username", app.ErrNotFound)
}

// Users implements app.IdentityProvider.
func (c *Client) Users(ctx context.Context, q app.UserQuery) ([]app.User, error) {
	params := gocloak.GetUsersParams{
		First: gocloak.IntP(q.First), Max: gocloak.IntP(q.Max), Enabled: q.Enabled,
		BriefRepresentation: gocloak.BoolP(false),
	}
	// Keycloak's search is a prefix match with * as wildcard and "…" as
	// exact; the API promises a substring match, so wrap the term and drop
	// the characters that would change its meaning.
	if s := strings.NewReplacer("*", "", `"`, "").Replace(q.Search); s != "" {
		params.Search = gocloak.StringP("*" + s + "*")
	}
	var list []*gocloak.User
	err := c.admin(ctx, "list users", func(tok string) (err error) {
		list, err = c.gc.GetUsers(ctx, tok, c.cfg.Realm, params)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]app.User, len(list))
	g, gctx := errgroup.WithContext(ctx)
	// Roles take one call per user; a few at a time keeps a page fast
	// without flooding the identity provider.
	g.SetLimit(8)
	for i, u := range list {
		g.Go(func() (err error) {
			out[i], err = c.withRoles(gctx, u)
			if errors.Is(err, app.ErrNotFound) { // deleted meanwhile
				out[i], err = toUser(u, nil), nil
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// withRoles adds u's client roles on the application client.
func (c *Client) withRoles(ctx context.Context, u *gocloak.User) (app.User, error) {
	clientUUID, err := c.appClientUUID(ctx)
	if err != nil {
		return app.User{}, err
	}
	var roles []*gocloak.Role
	err = c.admin(ctx, "get user roles", func(tok string) (err error) {
		roles, err = c.gc.GetClientRolesByUserID(ctx, tok, c.cfg.Realm, clientUUID, gocloak.PString(u.ID))
		return err
	})
	if err != nil {
		return app.User{}, err
	}
	names := make([]string, 0, len(roles))
	for _, r := range roles {
		names = append(names, gocloak.PString(r.Name))
	}
	slices.Sort(names)
	return toUser(u, names), nil
}

// toUser converts a user representation.
func toUser(u *gocloak.User, roles []string) app.User {
	out := app.User{
		ID: gocloak.PString(u.ID), Username: gocloak.PString(u.Username),
		FirstName: gocloak.PString(u.FirstName), LastName: gocloak.PString(u.LastName),
		Email: gocloak.PString(u.Email), Enabled: gocloak.PBool(u.Enabled), Roles: roles,
	}
	if u.CreatedTimestamp != nil {
		out.CreatedAt = time.UnixMilli(*u.CreatedTimestamp)
	}
	// Attributes appear only when set (contract §2).
	if u.Attributes != nil {
		out.PhoneVerified = slices.Contains((*u.Attributes)[app.AttrPhoneVerified], "true")
	}
	return out
}

// update reads the user, applies change and writes back every editable
// field. Sending the whole editable representation is right whether the
// server keeps fields left out (Keycloak, contract §2) or, like Keycloak
// with some user-profile settings, clears them; attributes in particular
// are replaced as a whole, so they must be merged here.
func (c *Client) update(ctx context.Context, op, id string, change func(u *gocloak.User)) error {
	return c.admin(ctx, op, func(tok string) error {
		u, err := c.gc.GetUserByID(ctx, tok, c.cfg.Realm, id)
		if err != nil {
			return err
		}
		rep := gocloak.User{
			ID: u.ID, Username: u.Username, Enabled: u.Enabled, EmailVerified: u.EmailVerified,
			FirstName: u.FirstName, LastName: u.LastName, Email: u.Email,
			Attributes: u.Attributes, RequiredActions: u.RequiredActions,
		}
		change(&rep)
		return c.gc.UpdateUser(ctx, tok, c.cfg.Realm, rep)
	})
}

// SetEnabled implements app.IdentityProvider.
func (c *Client) SetEnabled(ctx context.Context, id string, enabled bool) error {
	return c.update(ctx, "set enabled", id, func(u *gocloak.User) { u.Enabled = gocloak.BoolP(enabled) })
}

// SetAttribute implements app.IdentityProvider.
func (c *Client) SetAttribute(ctx context.Context, id, name, value string) error {
	return c.update(ctx, "set attribute", id, func(u *gocloak.User) {
		attrs := map[string][]string{}
		if u.Attributes != nil {
			for k, v := range *u.Attributes {
				attrs[k] = v
			}
		}
		attrs[name] = []string{value}
		u.Attributes = &attrs
	})
}

// DeleteUser implements app.IdentityProvider.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	return c.admin(ctx, "delete user", func(tok string) error {
		return c.gc.DeleteUser(ctx, tok, c.cfg.Realm, id)
	})
}

// EndSessions implements app.IdentityProvider with POST
// /admin/realms/{realm}/users/{id}/logout, which Keycloak has but the
// contract subset (and so the embedded provider) may lack.
func (c *Client) EndSessions(ctx context.Context, id string) error {
	return c.admin(ctx, "end sessions", func(tok string) error {
		return c.gc.LogoutAllSessions(ctx, tok, c.cfg.Realm, id)
	})
}

// GrantRole implements app.IdentityProvider.
func (c *Client) GrantRole(ctx context.Context, id, role string) error {
	return c.mapRole(ctx, "grant role", id, role, c.gc.AddClientRolesToUser)
}

// RevokeRole implements app.IdentityProvider with DELETE on the user's
// client role mappings.
func (c *Client) RevokeRole(ctx context.Context, id, role string) error {
	return c.mapRole(ctx, "revoke role", id, role, c.gc.DeleteClientRolesFromUser)
}

type roleMapping func(ctx context.Context, token, realm, idOfClient, userID string, roles []gocloak.Role) error

// mapRole adds or removes a client-role mapping. Keycloak checks the role's
// id as well as its name, so the role is passed exactly as GetClientRoles
// returned it; if it was recreated since (new id), the cache is dropped and
// the call retried once.
func (c *Client) mapRole(ctx context.Context, op, id, role string, call roleMapping) error {
	for attempt := 0; ; attempt++ {
		clientUUID, r, err := c.appRole(ctx, role)
		if err != nil {
			return err
		}
		err = c.admin(ctx, op, func(tok string) error {
			return call(ctx, tok, c.cfg.Realm, clientUUID, id, []gocloak.Role{r})
		})
		if !errors.Is(err, errRoleNotFound) || attempt > 0 {
			return err
		}
		c.dropRoles()
	}
}

// appClientUUID returns the internal id of the application client.
func (c *Client) appClientUUID(ctx context.Context) (string, error) {
	uuid, _, err := c.appRole(ctx, "")
	return uuid, err
}

// appRole returns the application client's internal id and, unless name is
// empty, its client role called name. Both are cached: they change only
// when the realm is rebuilt.
func (c *Client) appRole(ctx context.Context, name string) (string, gocloak.Role, error) {
	c.rolesMu.Lock()
	defer c.rolesMu.Unlock()
	if c.clientUUID == "" {
		var clients []*gocloak.Client
		err := c.admin(ctx, "find client", func(tok string) (err error) {
			clients, err = c.gc.GetClients(ctx, tok, c.cfg.Realm, gocloak.GetClientsParams{ClientID: gocloak.StringP(c.cfg.AppClient)})
			return err
		})
		if err != nil {
			return "", gocloak.Role{}, err
		}
		for _, cl := range clients {
			if gocloak.PString(cl.ClientID) == c.cfg.AppClient {
				c.clientUUID = gocloak.PString(cl.ID)
			}
		}
		if c.clientUUID == "" {
			return "", gocloak.Role{}, fmt.Errorf("keycloak: realm %s has no client %s", c.cfg.Realm, c.cfg.AppClient)
		}
	}
	if name == "" {
		return c.clientUUID, gocloak.Role{}, nil
	}
	if c.roles == nil {
		var roles []*gocloak.Role
		err := c.admin(ctx, "list client roles", func(tok string) (err error) {
			roles, err = c.gc.GetClientRoles(ctx, tok, c.cfg.Realm, c.clientUUID, gocloak.GetRoleParams{})
			return err
		})
		if err != nil {
			return "", gocloak.Role{}, err
		}
		c.roles = make(map[string]gocloak.Role, len(roles))
		for _, r := range roles {
			c.roles[gocloak.PString(r.Name)] = *r
		}
	}
	r, ok := c.roles[name]
	if !ok {
		return "", gocloak.Role{}, fmt.Errorf("keycloak: client %s has no role %s", c.cfg.AppClient, strconv.Quote(name))
	}
	return c.clientUUID, r, nil
}

// dropRoles forgets the cached client and roles.
func (c *Client) dropRoles() {
	c.rolesMu.Lock()
	defer c.rolesMu.Unlock()
	c.clientUUID, c.roles = "", nil
}
