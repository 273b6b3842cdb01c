package auth_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/comfortech/platform/libs/auth"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// envelopeError stands in for the gateway's envelope writer: it must receive
// a gRPC status error that still unwraps to the auth sentinels.
func envelopeError(w http.ResponseWriter, _ *http.Request, err error) {
	st, ok := status.FromError(err)
	code := http.StatusInternalServerError
	switch {
	case !ok:
	case st.Code() == codes.Unauthenticated && errors.Is(err, auth.ErrUnauthenticated):
		code = http.StatusUnauthorized
	case st.Code() == codes.PermissionDenied && errors.Is(err, auth.ErrForbidden):
		code = http.StatusForbidden
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "error": map[string]string{"code": st.Code().String(), "message": st.Message()}})
}

func TestHTTPMiddleware(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v := newVerifier(t, iss)
	userTok := iss.mint(iss.userClaims())
	adminTok := iss.mint(iss.adminClaims())
	expired := iss.mint(iss.userClaims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))

	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.PrincipalFrom(r.Context())
		if !ok {
			_, _ = w.Write([]byte("anonymous"))
			return
		}
		_, _ = w.Write([]byte(p.Subject))
	})
	mux := http.NewServeMux()
	mux.Handle("/v1/me", whoami)
	mux.Handle("/v1/auth/", whoami)
	mux.Handle("/docs/", whoami)
	mux.Handle("/docs", whoami)
	mux.Handle("/v1/admin/users", auth.RequireRole(auth.RoleAdmin, envelopeError)(whoami))
	h := auth.Middleware(v, envelopeError, auth.WithPublicPaths("/docs", "/v1/auth/login"))(mux)

	tests := []struct {
		name          string
		path          string
		authorization []string
		wantCode      int
		wantBody      string
		wantChallenge string
	}{
		{name: "no token", path: "/v1/me", wantCode: 401, wantBody: "missing bearer token", wantChallenge: "Bearer"},
		{name: "empty bearer", path: "/v1/me", authorization: []string{"Bearer "}, wantCode: 401, wantBody: "missing bearer token"},
		{name: "garbage token", path: "/v1/me", authorization: []string{"Bearer garbage"}, wantCode: 401, wantBody: "invalid access token", wantChallenge: `Bearer error="invalid_token"`},
		{name: "basic scheme", path: "/v1/me", authorization: []string{"Basic dXNlcjpwYXNz"}, wantCode: 401},
		{name: "expired", path: "/v1/me", authorization: []string{bearer(expired)}, wantCode: 401, wantBody: "access token expired"},
		{name: "valid token", path: "/v1/me", authorization: []string{bearer(userTok)}, wantCode: 200, wantBody: userSub},
		{name: "scheme is case-insensitive", path: "/v1/me", authorization: []string{"bEaReR  " + userTok}, wantCode: 200, wantBody: userSub},
		{name: "two different tokens", path: "/v1/me", authorization: []string{bearer(userTok), bearer(adminTok)}, wantCode: 401},
		{name: "user on admin path", path: "/v1/admin/users", authorization: []string{bearer(userTok)}, wantCode: 403, wantBody: "permission denied"},
		{name: "admin on admin path", path: "/v1/admin/users", authorization: []string{bearer(adminTok)}, wantCode: 200, wantBody: adminSub},
		{name: "public docs", path: "/docs", wantCode: 200, wantBody: "anonymous"},
		{name: "public docs asset", path: "/docs/swagger.json", wantCode: 200, wantBody: "anonymous"},
		{name: "public login", path: "/v1/auth/login", wantCode: 200, wantBody: "anonymous"},
		{name: "auth/me is not public", path: "/v1/auth/me", wantCode: 401},
		{name: "prefix is not a path segment", path: "/docsecret", wantCode: 401},
		{name: "dot-dot out of a public path", path: "/docs/../v1/me", wantCode: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "http://gw.test"+tc.path, nil)
			for _, a := range tc.authorization {
				req.Header.Add("Authorization", a)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantCode {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tc.wantCode, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("body = %s, want it to contain %q", rec.Body, tc.wantBody)
			}
			if tc.wantChallenge != "" && rec.Header().Get("WWW-Authenticate") != tc.wantChallenge {
				t.Errorf("WWW-Authenticate = %q, want %q", rec.Header().Get("WWW-Authenticate"), tc.wantChallenge)
			}
			for _, a := range tc.authorization {
				if tok := strings.TrimSpace(a[strings.Index(a, " ")+1:]); len(tok) > 20 && strings.Contains(rec.Body.String(), tok) {
					t.Error("response echoes the token")
				}
			}
		})
	}
}

func TestHTTPMiddlewareDefaultErrorHandler(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v := newVerifier(t, iss)
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	h := auth.Middleware(v, nil)(auth.RequireRole(auth.RoleAdmin, nil)(ok))
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"user token", iss.mint(iss.userClaims()), http.StatusForbidden},
		{"admin token", iss.mint(iss.adminClaims()), http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			if tc.token != "" {
				req.Header.Set("Authorization", bearer(tc.token))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("status = %d, want %d", rec.Code, tc.want)
			}
		})
	}
}

func TestRequireRoleWithoutMiddleware(t *testing.T) {
	t.Parallel()
	h := auth.RequireRole(auth.RoleUser, envelopeError)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("handler reached without a principal")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/me", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", rec.Code)
	}
}
