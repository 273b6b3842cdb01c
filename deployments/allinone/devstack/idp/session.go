package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idpstore"
)

// Why an access token is not accepted; each endpoint words it its own way.
var (
	errTokenInvalid = errors.New("token verification failed")
	errTokenExpired = errors.New("token expired")
	errNoSession    = errors.New("user session not found")
	errUserDisabled = errors.New("user disabled")
	errUserGone     = errors.New("user not found")
	errRevoked      = errors.New("token revoked")
)

// accessToken is a verified, active access token with its user.
type accessToken struct {
	claims *claims
	user   *idpstore.User
	realm  *idpstore.Realm
}

// checkAccessToken verifies raw as an access token of realm, issued for
// this request's base URL, and checks that it is still backed by a live
// session (when it has one), an existing enabled user, and no revocation.
// reason is nil for an active token; err is an internal failure.
func (p *Provider) checkAccessToken(ctx context.Context, r *http.Request, realm *idpstore.Realm, raw string) (
	tok *accessToken, reason, err error) {
	keys, err := p.keys.get(ctx, realm.ID)
	if err != nil {
		return nil, nil, err
	}
	c, verr := verifyRS256(keys, raw)
	if verr != nil || c.Typ != typBearer || c.Iss != p.issuer(r, realm.Name) {
		return nil, errTokenInvalid, nil
	}
	now := p.now()
	if c.Exp <= now.Unix() {
		return nil, errTokenExpired, nil
	}
	if revoked, err := p.store.TokenRevoked(ctx, c.JTI); err != nil {
		return nil, nil, fmt.Errorf("idp: revocation: %w", err)
	} else if revoked {
		return nil, errRevoked, nil
	}
	if c.Sid != "" {
		s, err := p.store.SessionByID(ctx, realm.ID, c.Sid)
		if errors.Is(err, idpstore.ErrNotFound) {
			return nil, errNoSession, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("idp: session: %w", err)
		}
		if !p.sessionAlive(realm, s, now) {
			return nil, errNoSession, nil
		}
	}
	u, err := p.store.UserByID(ctx, realm.ID, c.Sub)
	if errors.Is(err, idpstore.ErrNotFound) {
		return nil, errUserGone, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("idp: user: %w", err)
	}
	if !u.Enabled {
		return nil, errUserDisabled, nil
	}
	return &accessToken{claims: c, user: u, realm: realm}, nil, nil
}

// handleLogout ends the session of a refresh token (gocloak's Logout and
// LogoutPublicClient). Without a refresh token the POST is a browser
// logout, answered with a page.
func (p *Provider) handleLogout(w http.ResponseWriter, r *http.Request, realm *idpstore.Realm) {
	if err := r.ParseForm(); err != nil {
		oauthErr(http.StatusBadRequest, "invalid_request", "Invalid form body").write(w)
		return
	}
	raw := r.PostForm.Get("refresh_token")
	if raw == "" {
		p.handleBrowserLogout(w, r, realm)
		return
	}
	ctx := r.Context()
	c, oerr, err := p.authenticateClient(r, realm)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	if oerr != nil {
		oerr.write(w)
		return
	}
	rt, sess, _, oerr, err := p.checkRefreshToken(ctx, r, realm, c, raw)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	if oerr != nil && oerr != errSessionGone {
		oerr.write(w)
		return
	}
	// A session that is already gone is logged out: 204 all the same.
	if sess != nil {
		if err := p.store.DeleteSession(ctx, sess.ID); err != nil {
			p.serverError(w, r, err)
			return
		}
	} else if rt != nil && rt.Sid != "" {
		if err := p.store.DeleteSession(ctx, rt.Sid); err != nil {
			p.serverError(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleBrowserLogout answers the front-channel logout with a page, as
// Keycloak does when there is nothing to redirect to.
func (p *Provider) handleBrowserLogout(w http.ResponseWriter, _ *http.Request, _ *idpstore.Realm) {
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("<!DOCTYPE html><html><head><title>Logging out</title></head>" +
		"<body><p>You are logged out.</p></body></html>"))
}

// handleRevoke implements RFC 7009 token revocation: a refresh token ends
// its session; an access token is remembered as revoked until it expires.
func (p *Provider) handleRevoke(w http.ResponseWriter, r *http.Request, realm *idpstore.Realm) {
	if err := r.ParseForm(); err != nil {
		oauthErr(http.StatusBadRequest, "invalid_request", "Invalid form body").write(w)
		return
	}
	ctx := r.Context()
	c, oerr, err := p.authenticateClient(r, realm)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	if oerr != nil {
		oerr.write(w)
		return
	}
	raw := r.PostForm.Get("token")
	if raw == "" {
		oauthErr(http.StatusBadRequest, "invalid_request", "Token not provided.").write(w)
		return
	}
	switch hint := r.PostForm.Get("token_type_hint"); hint {
	case "", "access_token", "refresh_token":
	default:
		oauthErr(http.StatusBadRequest, "unsupported_token_type", "Unsupported token type ["+hint+"].").write(w)
		return
	}
	keys, err := p.keys.get(ctx, realm.ID)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	if rt, err := verifyHS512(keys, raw); err == nil && rt.Iss == p.issuer(r, realm.Name) {
		if rt.Azp != c.ClientID {
			oauthErr(http.StatusBadRequest, "unauthorized_client", "Unmatching clients").write(w)
			return
		}
		if err := p.store.DeleteSession(ctx, rt.Sid); err != nil {
			p.serverError(w, r, err)
			return
		}
	} else if at, err := verifyRS256(keys, raw); err == nil && at.Iss == p.issuer(r, realm.Name) && at.Typ == typBearer {
		if at.Azp != c.ClientID {
			oauthErr(http.StatusBadRequest, "unauthorized_client", "Unmatching clients").write(w)
			return
		}
		if err := p.store.RevokeToken(ctx, at.JTI, at.Exp*1000, p.now().UnixMilli()); err != nil {
			p.serverError(w, r, err)
			return
		}
	}
	// RFC 7009 §2.2: an invalid token is not an error.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// handleIntrospect implements RFC 7662 for confidential clients.
func (p *Provider) handleIntrospect(w http.ResponseWriter, r *http.Request, realm *idpstore.Realm) {
	if err := r.ParseForm(); err != nil {
		oauthErr(http.StatusBadRequest, "invalid_request", "Invalid form body").write(w)
		return
	}
	ctx := r.Context()
	c, oerr, err := p.authenticateClient(r, realm)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	if oerr != nil {
		oerr.write(w)
		return
	}
	if c.PublicClient {
		oauthErr(http.StatusForbidden, "invalid_request", "Client not allowed.").write(w)
		return
	}
	raw := r.PostForm.Get("token")
	if raw == "" {
		oauthErr(http.StatusBadRequest, "invalid_request", "Token not provided.").write(w)
		return
	}
	hint := r.PostForm.Get("token_type_hint")
	switch hint {
	case "", "access_token", "refresh_token", "requesting_party_token", "id_token":
	default:
		oauthErr(http.StatusBadRequest, "invalid_request", "Unsupported token type ["+hint+"].").write(w)
		return
	}
	inactive := map[string]bool{"active": false}
	var (
		payload []byte
		user    *idpstore.User
		typ     = typBearer
	)
	if keys, err := p.keys.get(ctx, realm.ID); err != nil {
		p.serverError(w, r, err)
		return
	} else if rt, verr := verifyHS512(keys, raw); verr == nil {
		_, sess, u, oerr, err := p.checkRefreshToken(ctx, r, realm, &idpstore.Client{ClientID: rt.Azp}, raw)
		if err != nil {
			p.serverError(w, r, err)
			return
		}
		if oerr != nil || rt.Exp <= p.now().Unix() || !p.sessionAlive(realm, sess, p.now()) || !u.Enabled {
			writeJSON(w, http.StatusOK, inactive)
			return
		}
		payload, user, typ = rt.raw, u, rt.Typ
	} else {
		tok, reason, err := p.checkAccessToken(ctx, r, realm, raw)
		if err != nil {
			p.serverError(w, r, err)
			return
		}
		if reason != nil {
			writeJSON(w, http.StatusOK, inactive)
			return
		}
		payload, user = tok.claims.raw, tok.user
	}
	out := map[string]any{}
	if err := json.Unmarshal(payload, &out); err != nil {
		p.serverError(w, r, fmt.Errorf("idp: introspect: %w", err))
		return
	}
	out["client_id"] = out["azp"]
	out["username"] = user.Username
	out["token_type"] = typ
	out["active"] = true
	writeJSON(w, http.StatusOK, out)
}

// handleUserinfo answers the OIDC userinfo endpoint. Its errors, as in
// Keycloak, have no body: only WWW-Authenticate says what went wrong.
func (p *Provider) handleUserinfo(w http.ResponseWriter, r *http.Request, realm *idpstore.Realm) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok && r.Method == http.MethodPost {
		if err := r.ParseForm(); err == nil {
			raw = r.PostForm.Get("access_token")
		}
	}
	challenge := func(status int, code, desc string) {
		v := `Bearer realm="` + realm.Name + `"`
		if code != "" {
			v += `, error="` + code + `", error_description="` + desc + `"`
		}
		w.Header().Set("WWW-Authenticate", v)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
	}
	if strings.TrimSpace(raw) == "" {
		challenge(http.StatusUnauthorized, "", "")
		return
	}
	ctx := r.Context()
	keys, err := p.keys.get(ctx, realm.ID)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	// The scope is checked before the session, as Keycloak does.
	if c, err := verifyRS256(keys, raw); err == nil && c.Typ == typBearer && !c.hasScope("openid") {
		challenge(http.StatusForbidden, "insufficient_scope", "Missing openid scope")
		return
	}
	tok, reason, err := p.checkAccessToken(ctx, r, realm, raw)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	switch {
	case reason == nil:
	case errors.Is(reason, errNoSession), errors.Is(reason, errRevoked):
		challenge(http.StatusUnauthorized, "invalid_token", "User session not found or doesn't have client attached on it")
		return
	case errors.Is(reason, errUserDisabled):
		challenge(http.StatusUnauthorized, "invalid_token", "User disabled")
		return
	case errors.Is(reason, errUserGone):
		challenge(http.StatusUnauthorized, "invalid_token", "User not found")
		return
	default:
		challenge(http.StatusUnauthorized, "invalid_token", "Token verification failed")
		return
	}
	info := &claims{Sub: tok.user.ID}
	scopes := map[string]bool{}
	for _, s := range strings.Fields(tok.claims.Scope) {
		scopes[s] = true
	}
	profileClaims(info, tok.user, scopes)
	out := map[string]any{"sub": info.Sub}
	if info.EmailVerified != nil {
		out["email_verified"] = *info.EmailVerified
	}
	for k, v := range map[string]string{"name": info.Name, "preferred_username": info.PreferredUsername,
		"given_name": info.GivenName, "family_name": info.FamilyName, "email": info.Email} {
		if v != "" {
			out[k] = v
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// sweepInterval is how often logins delete the realm's expired sessions,
// which nothing else would ever remove (Keycloak runs a periodic cleaner).
const sweepInterval = 10 * time.Minute

// maybeSweep deletes expired sessions of the realm at most once per
// sweepInterval; a failure is only logged, the login goes on.
func (p *Provider) maybeSweep(ctx context.Context, realm *idpstore.Realm) {
	now := p.now()
	v, _ := p.nextSweep.LoadOrStore(realm.ID, new(atomic.Int64))
	at := v.(*atomic.Int64)
	next := at.Load()
	if now.Unix() < next || !at.CompareAndSwap(next, now.Add(sweepInterval).Unix()) {
		return
	}
	idle := now.Add(-time.Duration(realm.SSOSessionIdleTimeout) * time.Second).UnixMilli()
	started := now.Add(-time.Duration(realm.SSOSessionMaxLifespan) * time.Second).UnixMilli()
	n, err := p.store.DeleteExpiredSessions(ctx, realm.ID, idle, started)
	if err != nil {
		p.log.Warn("idp: deleting expired sessions failed", zapRealm(realm.Name), zap.Error(err))
		return
	}
	if n > 0 {
		p.log.Info("idp: expired sessions deleted", zapRealm(realm.Name), zap.Int64("count", n))
	}
}
