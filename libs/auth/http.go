package auth

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorHandler writes the response for a rejected HTTP request. err is a gRPC
// status error (see StatusError) with code Unauthenticated or PermissionDenied,
// ready for the gateway's envelope; it also unwraps to the sentinel errors.
type ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	public []string
}

// WithPublicPaths lets requests through without a token when their cleaned
// URL path equals one of paths or lies below it: "/docs" covers "/docs" and
// "/docs/swagger.json", "/v1/auth/login" covers only itself and paths below,
// and "/" would make every path public.
func WithPublicPaths(paths ...string) MiddlewareOption {
	return func(c *middlewareConfig) {
		for _, p := range paths {
			c.public = append(c.public, strings.TrimSuffix(path.Clean("/"+p), "/"))
		}
	}
}

func newMiddlewareConfig(opts []MiddlewareOption) middlewareConfig {
	var cfg middlewareConfig
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

func (c *middlewareConfig) isPublic(urlPath string) bool {
	// Match on the cleaned path so that "/docs/../v1/me" is not public.
	p := path.Clean("/" + urlPath)
	for _, pub := range c.public {
		if p == pub || pub == "" || strings.HasPrefix(p, pub+"/") {
			return true
		}
	}
	return false
}

// Middleware authenticates every request with the bearer token of its
// Authorization header (the scheme is case-insensitive) and stores the
// Principal in the request context. Rejected requests go to onError with a
// gRPC status error (Unauthenticated); the WWW-Authenticate header of RFC 6750
// is already set when onError runs. A nil onError writes a plain-text 401.
func Middleware(v *Verifier, onError func(http.ResponseWriter, *http.Request, error), opts ...MiddlewareOption) func(http.Handler) http.Handler {
	cfg := newMiddlewareConfig(opts)
	fail := errorHandler(onError)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if cfg.isPublic(r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			token, err := bearerToken(r.Header.Values("Authorization"))
			var p *Principal
			if err == nil {
				p, err = v.Verify(r.Context(), token)
			}
			if err != nil {
				challenge := `Bearer error="invalid_token"`
				if errors.Is(err, errMissingToken) {
					challenge = "Bearer"
				}
				w.Header().Set("WWW-Authenticate", challenge)
				fail(w, r, StatusError(err))
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// RequireRole rejects requests whose principal (set by Middleware) lacks role,
// passing onError a PermissionDenied status error (Unauthenticated when there
// is no principal at all). A nil onError writes a plain-text 403 or 401.
// WithPublicPaths exempts paths, as for Middleware.
func RequireRole(role string, onError func(http.ResponseWriter, *http.Request, error), opts ...MiddlewareOption) func(http.Handler) http.Handler {
	cfg := newMiddlewareConfig(opts)
	fail := errorHandler(onError)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if cfg.isPublic(r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			if err := Authorize(r.Context(), role); err != nil {
				fail(w, r, StatusError(err))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func errorHandler(h func(http.ResponseWriter, *http.Request, error)) ErrorHandler {
	if h != nil {
		return h
	}
	return func(w http.ResponseWriter, _ *http.Request, err error) {
		code := http.StatusUnauthorized
		if status.Code(err) == codes.PermissionDenied {
			code = http.StatusForbidden
		}
		http.Error(w, status.Convert(err).Message(), code)
	}
}

// bearerToken extracts the token from the values of an Authorization header
// (HTTP) or authorization metadata key (gRPC). Several values are accepted
// only when they agree, since grpc-gateway and PerRPCCredentials may both set
// the same token.
func bearerToken(values []string) (string, error) {
	if len(values) == 0 {
		return "", fmt.Errorf("%w: %w", ErrUnauthenticated, errMissingToken)
	}
	var token string
	for i, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			return "", fmt.Errorf("%w: %w", ErrUnauthenticated, errMissingToken)
		}
		scheme, t, _ := strings.Cut(v, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", fmt.Errorf("%w: authorization is not a bearer token", ErrUnauthenticated)
		}
		if t = strings.TrimSpace(t); t == "" {
			return "", fmt.Errorf("%w: %w", ErrUnauthenticated, errMissingToken)
		}
		if i > 0 && t != token {
			return "", fmt.Errorf("%w: conflicting authorization values", ErrUnauthenticated)
		}
		token = t
	}
	return token, nil
}
