package auth

import (
	"context"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// authorizationKey is the gRPC metadata key carrying "Bearer <token>".
const authorizationKey = "authorization"

// GRPCOption configures the server interceptors.
type GRPCOption func(*grpcConfig)

type grpcConfig struct {
	public []string
	roles  map[string]string
}

// WithPublicMethods skips authentication for the given methods. An entry
// ending in "/" or "." is a prefix ("/pkg.v1.Service/"); any other entry must
// equal the full method name ("/pkg.v1.Service/Method"). Health and reflection
// are always public.
func WithPublicMethods(methods ...string) GRPCOption {
	return func(c *grpcConfig) { c.public = append(c.public, methods...) }
}

// WithMethodRoles requires a role per method: keys are full method names or
// prefixes (as in WithPublicMethods), values the required role. The longest
// matching key wins; methods matching no key only need authentication.
func WithMethodRoles(roles map[string]string) GRPCOption {
	return func(c *grpcConfig) {
		for k, v := range roles {
			c.roles[k] = v
		}
	}
}

func newGRPCConfig(opts []GRPCOption) *grpcConfig {
	c := &grpcConfig{
		// Never authenticated: health checks come from kubelets and load
		// balancers, reflection from operators' tools.
		public: []string{"/grpc.health.v1.Health/", "/grpc.reflection."},
		roles:  map[string]string{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// matchMethod reports whether pattern selects fullMethod (see WithPublicMethods).
func matchMethod(pattern, fullMethod string) bool {
	if strings.HasSuffix(pattern, "/") || strings.HasSuffix(pattern, ".") {
		return strings.HasPrefix(fullMethod, pattern)
	}
	return pattern == fullMethod
}

func (c *grpcConfig) isPublic(fullMethod string) bool {
	for _, p := range c.public {
		if matchMethod(p, fullMethod) {
			return true
		}
	}
	return false
}

func (c *grpcConfig) roleFor(fullMethod string) string {
	best, role := -1, ""
	for pattern, r := range c.roles {
		if len(pattern) > best && matchMethod(pattern, fullMethod) {
			best, role = len(pattern), r
		}
	}
	return role
}

// authenticate verifies the incoming authorization metadata and checks the
// method's role; it returns ctx with the Principal or a gRPC status error.
func (c *grpcConfig) authenticate(ctx context.Context, v *Verifier, fullMethod string) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	token, err := bearerToken(md.Get(authorizationKey))
	if err != nil {
		return nil, StatusError(err)
	}
	p, err := v.Verify(ctx, token)
	if err != nil {
		return nil, StatusError(err)
	}
	ctx = WithPrincipal(ctx, p)
	if err := Authorize(ctx, c.roleFor(fullMethod)); err != nil {
		return nil, StatusError(err)
	}
	return ctx, nil
}

// UnaryServerInterceptor authenticates unary calls from their authorization
// metadata, enforces the roles of WithMethodRoles and stores the Principal in
// the handler's context. Failures are codes.Unauthenticated or
// codes.PermissionDenied.
func UnaryServerInterceptor(v *Verifier, opts ...GRPCOption) grpc.UnaryServerInterceptor {
	cfg := newGRPCConfig(opts)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if cfg.isPublic(info.FullMethod) {
			return handler(ctx, req)
		}
		ctx, err := cfg.authenticate(ctx, v, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is the streaming counterpart of
// UnaryServerInterceptor; the Principal is in the stream's context.
func StreamServerInterceptor(v *Verifier, opts ...GRPCOption) grpc.StreamServerInterceptor {
	cfg := newGRPCConfig(opts)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if cfg.isPublic(info.FullMethod) {
			return handler(srv, ss)
		}
		ctx, err := cfg.authenticate(ss.Context(), v, info.FullMethod)
		if err != nil {
			return err
		}
		wrapped := middleware.WrapServerStream(ss)
		wrapped.WrappedContext = ctx
		return handler(srv, wrapped)
	}
}

// ForwardCredentials returns per-RPC credentials for outgoing calls (use with
// grpc.WithPerRPCCredentials). A call made with a context that carries a
// Principal forwards that user's own token, so the downstream service sees and
// authorizes the end user; other calls (background jobs, consumers) use
// fallback, typically a client-credentials *TokenSource. With a nil fallback
// such calls go out without a token. A call whose outgoing metadata already
// sets authorization is left as it is.
//
// RequireTransportSecurity is false: in-cluster gRPC is plaintext (the mesh or
// network policy protects it), and gRPC would otherwise refuse to send the
// token over an insecure connection.
func ForwardCredentials(fallback credentials.PerRPCCredentials) credentials.PerRPCCredentials {
	return forwardCredentials{fallback: fallback}
}

type forwardCredentials struct {
	fallback credentials.PerRPCCredentials
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (f forwardCredentials) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(authorizationKey)) > 0 {
		return nil, nil
	}
	if p, ok := PrincipalFrom(ctx); ok && p.Token() != "" {
		return map[string]string{authorizationKey: "Bearer " + p.Token()}, nil
	}
	if f.fallback != nil {
		return f.fallback.GetRequestMetadata(ctx, uri...)
	}
	return nil, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials; see
// ForwardCredentials for why it is false.
func (forwardCredentials) RequireTransportSecurity() bool { return false }
