package idp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idpstore"
)

// Grant types the token endpoint serves.
const (
	grantPassword          = "password"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"
)

// tokenResponse is Keycloak's token endpoint answer. The numbers are plain
// integers: gocloak decodes them into int fields.
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	RefreshToken     string `json:"refresh_token,omitempty"`
	TokenType        string `json:"token_type"`
	IDToken          string `json:"id_token,omitempty"`
	NotBeforePolicy  int    `json:"not-before-policy"`
	SessionState     string `json:"session_state,omitempty"`
	Scope            string `json:"scope"`
}

// Errors of client authentication, shared by the token, logout,
// introspection and revocation endpoints.
var (
	errInvalidClient = oauthErr(http.StatusUnauthorized, "invalid_client", "Invalid client or Invalid client credentials")
	errBadSecret     = oauthErr(http.StatusUnauthorized, "unauthorized_client", "Invalid client or Invalid client credentials")
	errNoClientID    = oauthErr(http.StatusBadRequest, "invalid_client", "Missing client_id parameter")
	errBadRefresh    = oauthErr(http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
	errSessionGone   = oauthErr(http.StatusBadRequest, "invalid_grant", "Session not active")
	errBadUserCreds  = oauthErr(http.StatusUnauthorized, "invalid_grant", "Invalid user credentials")
)

func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request, realm *idpstore.Realm) {
	resp, oerr, err := p.token(r, realm)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	if oerr != nil {
		oerr.write(w)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

func (p *Provider) token(r *http.Request, realm *idpstore.Realm) (*tokenResponse, *oauthError, error) {
	if err := r.ParseForm(); err != nil {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Invalid form body"), nil
	}
	if !realm.Enabled {
		return nil, oauthErr(http.StatusForbidden, "access_denied", "Realm not enabled"), nil
	}
	grant := r.PostForm.Get("grant_type")
	switch grant {
	case "":
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Missing form parameter: grant_type"), nil
	case grantPassword, grantRefreshToken, grantClientCredentials:
	default:
		return nil, oauthErr(http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type"), nil
	}
	client, oerr, err := p.authenticateClient(r, realm)
	if oerr != nil || err != nil {
		return nil, oerr, err
	}
	switch grant {
	case grantPassword:
		return p.passwordGrant(r, realm, client)
	case grantRefreshToken:
		return p.refreshGrant(r, realm, client)
	default:
		return p.clientCredentialsGrant(r, realm, client)
	}
}

// authenticateClient identifies the client as Keycloak's client
// authenticators do: HTTP Basic (parts URL-decoded, RFC 6749 §2.3.1) or
// client_secret in the form; a form client_id overrides the Basic one.
// Public clients are identified by client_id alone.
func (p *Provider) authenticateClient(r *http.Request, realm *idpstore.Realm) (*idpstore.Client, *oauthError, error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		id, secret = formDecode(id), formDecode(secret)
	} else {
		secret = r.PostForm.Get("client_secret")
	}
	if f := r.PostForm.Get("client_id"); f != "" {
		id = f
	}
	if id == "" {
		return nil, errNoClientID, nil
	}
	c, err := p.store.ClientByClientID(r.Context(), realm.ID, id)
	if errors.Is(err, idpstore.ErrNotFound) {
		return nil, errInvalidClient, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("idp: client: %w", err)
	}
	if !c.Enabled {
		return nil, errInvalidClient, nil
	}
	if c.BearerOnly {
		return nil, oauthErr(http.StatusBadRequest, "invalid_client", "Bearer-only not allowed"), nil
	}
	if c.PublicClient {
		return c, nil, nil
	}
	if secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return nil, errBadSecret, nil
	}
	return c, nil, nil
}

// formDecode URL-decodes a Basic credential part, keeping it as sent when
// it is not valid form encoding.
func formDecode(s string) string {
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return s
}

// grantedScope returns the token's scope claim and the set of client scopes
// in effect: the client's default scopes plus the optional ones requested.
// An unknown requested scope is refused, as Keycloak refuses it.
func grantedScope(c *idpstore.Client, requested string) (string, map[string]bool, *oauthError) {
	in := map[string]bool{}
	for _, s := range c.DefaultScopes {
		in[s] = true
	}
	var unknown []string
	openid := false
	for _, s := range strings.Fields(requested) {
		switch {
		case s == "openid":
			openid = true
		case in[s]:
		case slices.Contains(c.OptionalScopes, s) && s != "offline_access":
			in[s] = true
		default:
			unknown = append(unknown, s)
		}
	}
	if len(unknown) > 0 {
		return "", nil, oauthErr(http.StatusBadRequest, "invalid_scope", "Invalid scopes: "+requested)
	}
	// acr, basic, roles and web-origins are not "included in token scope"
	// in Keycloak, so they never appear in the scope claim.
	var names []string
	for s := range in {
		switch s {
		case "acr", "basic", "roles", "web-origins", "role_list", "saml_organization":
		default:
			names = append(names, s)
		}
	}
	slices.Sort(names)
	if openid {
		names = append([]string{"openid"}, names...)
		in["openid"] = true
	}
	return strings.Join(names, " "), in, nil
}

func (p *Provider) passwordGrant(r *http.Request, realm *idpstore.Realm, c *idpstore.Client) (*tokenResponse, *oauthError, error) {
	ctx := r.Context()
	if !c.DirectAccessGrants {
		return nil, oauthErr(http.StatusBadRequest, "unauthorized_client", "Client not allowed for direct access grants"), nil
	}
	username := strings.ToLower(strings.TrimSpace(r.PostForm.Get("username")))
	if username == "" {
		return nil, oauthErr(http.StatusUnauthorized, "invalid_request", "Missing parameter: username"), nil
	}
	scope, scopes, oerr := grantedScope(c, r.PostForm.Get("scope"))
	if oerr != nil {
		return nil, oerr, nil
	}
	password := r.PostForm.Get("password")
	user, err := p.store.UserByUsername(ctx, realm.ID, username)
	if errors.Is(err, idpstore.ErrNotFound) && strings.Contains(username, "@") {
		user, err = p.store.UserByEmail(ctx, realm.ID, username)
	}
	if errors.Is(err, idpstore.ErrNotFound) {
		// Spend the same time as for a known user, so that response times
		// do not tell which usernames exist.
		_, _ = verifyPassword(password, p.dummy)
		return nil, errBadUserCreds, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("idp: user: %w", err)
	}
	if !user.Enabled {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "Account disabled"), nil
	}
	ok, err := p.checkPassword(ctx, user.ID, password)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, errBadUserCreds, nil
	}
	if len(user.RequiredActions) > 0 {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "Account is not fully set up"), nil
	}
	now := p.now()
	sess := &idpstore.Session{ID: uuid.NewString(), RealmID: realm.ID, UserID: user.ID, ClientID: c.ClientID,
		Scope: scope, StartedMs: now.UnixMilli(), LastRefreshMs: now.UnixMilli()}
	if err := p.store.CreateSession(ctx, sess); err != nil {
		return nil, nil, fmt.Errorf("idp: session: %w", err)
	}
	p.maybeSweep(ctx, realm)
	resp, err := p.mint(ctx, r, realm, c, user, sess, scope, scopes, now)
	return resp, nil, err
}

// checkPassword verifies password against the user's stored hash; a user
// without a password is checked against the dummy hash, for even timing.
func (p *Provider) checkPassword(ctx context.Context, userID, password string) (bool, error) {
	hash, err := p.store.PasswordHash(ctx, userID)
	if errors.Is(err, idpstore.ErrNotFound) {
		_, _ = verifyPassword(password, p.dummy)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("idp: credential: %w", err)
	}
	ok, err := verifyPassword(password, hash)
	if err != nil {
		return false, fmt.Errorf("idp: credential of user %s: %w", userID, err)
	}
	return ok, nil
}

func (p *Provider) refreshGrant(r *http.Request, realm *idpstore.Realm, c *idpstore.Client) (*tokenResponse, *oauthError, error) {
	ctx := r.Context()
	raw := r.PostForm.Get("refresh_token")
	if raw == "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "No refresh token"), nil
	}
	rt, sess, user, oerr, err := p.checkRefreshToken(ctx, r, realm, c, raw)
	if oerr != nil || err != nil {
		return nil, oerr, err
	}
	now := p.now()
	if rt.Exp <= now.Unix() {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "Token is not active"), nil
	}
	if !p.sessionAlive(realm, sess, now) {
		return nil, errSessionGone, nil
	}
	if !user.Enabled {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "User disabled"), nil
	}
	_, scopes, oerr := grantedScope(c, rt.Scope)
	if oerr != nil {
		return nil, oerr, nil
	}
	if err := p.store.TouchSession(ctx, sess.ID, now.UnixMilli()); err != nil {
		if errors.Is(err, idpstore.ErrNotFound) {
			return nil, errSessionGone, nil
		}
		return nil, nil, fmt.Errorf("idp: session: %w", err)
	}
	sess.LastRefreshMs = now.UnixMilli()
	resp, err := p.mint(ctx, r, realm, c, user, sess, rt.Scope, scopes, now)
	return resp, nil, err
}

// checkRefreshToken verifies a refresh token's signature, type, issuer and
// client, then loads its session and user. A missing session or user is
// "Session not active". Expiry is left to the caller: logout accepts
// expired refresh tokens, refresh does not.
func (p *Provider) checkRefreshToken(ctx context.Context, r *http.Request, realm *idpstore.Realm, c *idpstore.Client, raw string) (
	*claims, *idpstore.Session, *idpstore.User, *oauthError, error) {
	keys, err := p.keys.get(ctx, realm.ID)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	rt, err := verifyHS512(keys, raw)
	if err != nil || (rt.Typ != typRefresh && rt.Typ != "Offline") || rt.Iss != p.issuer(r, realm.Name) {
		return nil, nil, nil, errBadRefresh, nil
	}
	if rt.Azp != c.ClientID {
		return nil, nil, nil, oauthErr(http.StatusBadRequest, "invalid_grant",
			"Invalid refresh token. Token client and authorized client don't match"), nil
	}
	sess, err := p.store.SessionByID(ctx, realm.ID, rt.Sid)
	if errors.Is(err, idpstore.ErrNotFound) {
		return rt, nil, nil, errSessionGone, nil
	}
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("idp: session: %w", err)
	}
	user, err := p.store.UserByID(ctx, realm.ID, sess.UserID)
	if errors.Is(err, idpstore.ErrNotFound) {
		return rt, sess, nil, errSessionGone, nil
	}
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("idp: user: %w", err)
	}
	return rt, sess, user, nil, nil
}

// sessionAlive applies the realm's SSO idle timeout and maximum lifespan.
func (p *Provider) sessionAlive(realm *idpstore.Realm, s *idpstore.Session, now time.Time) bool {
	idle := time.UnixMilli(s.LastRefreshMs).Add(time.Duration(realm.SSOSessionIdleTimeout) * time.Second)
	maxEnd := time.UnixMilli(s.StartedMs).Add(time.Duration(realm.SSOSessionMaxLifespan) * time.Second)
	return now.Before(idle) && now.Before(maxEnd)
}

func (p *Provider) clientCredentialsGrant(r *http.Request, realm *idpstore.Realm, c *idpstore.Client) (*tokenResponse, *oauthError, error) {
	ctx := r.Context()
	if c.PublicClient {
		return nil, oauthErr(http.StatusUnauthorized, "unauthorized_client", "Public client not allowed to retrieve service account"), nil
	}
	if !c.ServiceAccounts {
		return nil, oauthErr(http.StatusUnauthorized, "unauthorized_client", "Client not enabled to retrieve service account"), nil
	}
	user, err := p.store.ServiceAccountUser(ctx, realm.ID, c.ID)
	if errors.Is(err, idpstore.ErrNotFound) {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Service account user not found"), nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("idp: service account: %w", err)
	}
	if !user.Enabled {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "User disabled"), nil
	}
	scope, scopes, oerr := grantedScope(c, r.PostForm.Get("scope"))
	if oerr != nil {
		return nil, oerr, nil
	}
	// Keycloak 26 gives client-credentials tokens a transient session: no
	// sid, no refresh token, nothing to log out.
	resp, err := p.mint(ctx, r, realm, c, user, nil, scope, scopes, p.now())
	return resp, nil, err
}

// mint issues the access token, and for a user session the refresh token
// and (with the openid scope) the ID token.
func (p *Provider) mint(ctx context.Context, r *http.Request, realm *idpstore.Realm, c *idpstore.Client,
	user *idpstore.User, sess *idpstore.Session, scope string, scopes map[string]bool, now time.Time) (*tokenResponse, error) {
	keys, err := p.keys.get(ctx, realm.ID)
	if err != nil {
		return nil, err
	}
	roles, err := p.effectiveRoles(ctx, realm.ID, user.ID)
	if err != nil {
		return nil, err
	}
	iss := p.issuer(r, realm.Name)
	lifespan := time.Duration(realm.AccessTokenLifespan) * time.Second
	exp := now.Add(lifespan)
	if sess != nil {
		// An access token never outlives its session.
		if end := time.UnixMilli(sess.StartedMs).Add(time.Duration(realm.SSOSessionMaxLifespan) * time.Second); end.Before(exp) {
			exp = end
		}
	}
	at := &claims{
		Exp: exp.Unix(), Iat: now.Unix(), JTI: uuid.NewString(), Iss: iss, Sub: user.ID, Typ: typBearer, Azp: c.ClientID,
		Scope: scope,
	}
	if scopes["acr"] {
		at.Acr = "1" // a password or client-credentials grant, not an SSO cookie
	}
	if sess != nil {
		at.Sid = sess.ID
		at.AuthTime = sess.StartedMs / 1000
	} else {
		at.ClientID = c.ClientID
		at.ClientHost, at.ClientAddress = clientHost(r), clientHost(r)
	}
	if scopes["web-origins"] && len(c.WebOrigins) > 0 {
		at.AllowedOrigins = c.WebOrigins
	}
	if scopes["roles"] {
		if len(roles.realm) > 0 {
			at.RealmAccess = &roleList{Roles: roles.realm}
		}
		if len(roles.client) > 0 {
			at.ResourceAccess = map[string]roleList{}
			for client, names := range roles.client {
				at.ResourceAccess[client] = roleList{Roles: names}
				// Keycloak's audience-resolve mapper: every client the
				// token grants roles of, except the requesting one.
				if client != c.ClientID {
					at.Aud = append(at.Aud, client)
				}
			}
			slices.Sort(at.Aud)
		}
	}
	profileClaims(at, user, scopes)
	resp := &tokenResponse{TokenType: typBearer, Scope: scope, ExpiresIn: int(exp.Unix() - now.Unix())}
	if resp.AccessToken, err = signRS256(keys.activeSig, at); err != nil {
		return nil, err
	}
	if sess == nil {
		return resp, nil
	}
	refreshExp := time.UnixMilli(sess.LastRefreshMs).Add(time.Duration(realm.SSOSessionIdleTimeout) * time.Second)
	if end := time.UnixMilli(sess.StartedMs).Add(time.Duration(realm.SSOSessionMaxLifespan) * time.Second); end.Before(refreshExp) {
		refreshExp = end
	}
	rt := &claims{Exp: refreshExp.Unix(), Iat: now.Unix(), JTI: uuid.NewString(), Iss: iss, Aud: audience{iss},
		Sub: user.ID, Typ: typRefresh, Azp: c.ClientID, Sid: sess.ID, Scope: scope}
	if resp.RefreshToken, err = signHS512(keys.activeMAC, rt); err != nil {
		return nil, err
	}
	resp.RefreshExpiresIn = int(refreshExp.Unix() - now.Unix())
	resp.SessionState = sess.ID
	if scopes["openid"] {
		sum := sha256.Sum256([]byte(resp.AccessToken))
		id := &claims{Exp: at.Exp, Iat: at.Iat, AuthTime: at.AuthTime, JTI: uuid.NewString(), Iss: iss,
			Aud: audience{c.ClientID}, Sub: user.ID, Typ: typID, Azp: c.ClientID, Sid: sess.ID,
			AtHash: base64.RawURLEncoding.EncodeToString(sum[:16]), Acr: at.Acr}
		profileClaims(id, user, scopes)
		if resp.IDToken, err = signRS256(keys.activeSig, id); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// profileClaims adds the claims of the profile and email scopes.
func profileClaims(c *claims, u *idpstore.User, scopes map[string]bool) {
	if scopes["profile"] {
		c.PreferredUsername = u.Username
		c.GivenName, c.FamilyName = u.FirstName, u.LastName
		c.Name = strings.TrimSpace(u.FirstName + " " + u.LastName)
	}
	if scopes["email"] {
		v := u.EmailVerified
		c.EmailVerified = &v
		c.Email = u.Email
	}
}

// clientHost is the caller's IP address, for the service-account claims.
func clientHost(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}
