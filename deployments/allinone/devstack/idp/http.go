package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idpstore"
)

// oidcPrefix is where a realm's OpenID Connect endpoints live.
const oidcPrefix = "/realms/{realm}/protocol/openid-connect"

func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	realm := p.withRealm
	mux.Handle("GET /realms/{realm}", realm(p.handleRealmInfo))
	mux.Handle("GET /realms/{realm}/.well-known/openid-configuration", realm(p.handleDiscovery))
	mux.Handle("GET "+oidcPrefix+"/certs", realm(p.handleCerts))
	mux.Handle("POST "+oidcPrefix+"/token", realm(p.handleToken))
	mux.Handle("POST "+oidcPrefix+"/token/introspect", realm(p.handleIntrospect))
	mux.Handle("GET "+oidcPrefix+"/userinfo", realm(p.handleUserinfo))
	mux.Handle("POST "+oidcPrefix+"/userinfo", realm(p.handleUserinfo))
	mux.Handle("GET "+oidcPrefix+"/logout", realm(p.handleBrowserLogout))
	mux.Handle("POST "+oidcPrefix+"/logout", realm(p.handleLogout))
	mux.Handle("POST "+oidcPrefix+"/revoke", realm(p.handleRevoke))
	mux.Handle("/realms/{realm}/", realm(func(w http.ResponseWriter, _ *http.Request, _ *idpstore.Realm) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Unable to find matching target resource method"})
	}))
	p.adminRoutes(mux)
	return mux
}

// realmHandler is a handler for a request under /realms/{realm}/ whose realm
// exists.
type realmHandler func(w http.ResponseWriter, r *http.Request, realm *idpstore.Realm)

// withRealm resolves {realm}; an unknown realm gets Keycloak's 404.
func (p *Provider) withRealm(h realmHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		realm, err := p.store.RealmByName(r.Context(), r.PathValue("realm"))
		if errors.Is(err, idpstore.ErrNotFound) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "Realm does not exist"})
			return
		}
		if err != nil {
			p.serverError(w, r, err)
			return
		}
		h(w, r, realm)
	})
}

// baseURL is the configured base, or the request's scheme and Host.
func (p *Provider) baseURL(r *http.Request) string {
	if p.cfg.BaseURL != "" {
		return strings.TrimSuffix(p.cfg.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (p *Provider) issuer(r *http.Request, realm string) string {
	return p.baseURL(r) + "/realms/" + realm
}

// writeJSON answers v as JSON. gocloak parses a body only when its
// Content-Type is JSON, so every JSON answer, errors included, sets it.
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONAs(w, status, "application/json", v)
}

// writeJSONAs answers v as JSON under the media type ct.
func writeJSONAs(w http.ResponseWriter, status int, ct string, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// oauthError is an OAuth error answer: {"error","error_description"}.
type oauthError struct {
	status int
	code   string
	desc   string
}

// Error returns "code: description", for logs.
func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func oauthErr(status int, code, desc string) *oauthError {
	return &oauthError{status: status, code: code, desc: desc}
}

func (e *oauthError) write(w http.ResponseWriter) {
	body := map[string]string{"error": e.code}
	if e.desc != "" {
		body["error_description"] = e.desc
	}
	// Token responses and errors must not be cached (RFC 6749 §5.1).
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, e.status, body)
}

// serverError logs an internal failure and answers 500 without details.
func (p *Provider) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	p.log.Error("idp: request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "unknown_error"})
}
