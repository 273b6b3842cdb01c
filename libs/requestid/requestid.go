// Package requestid carries the x-request-id of a call through HTTP, gRPC and
// the context, so that every log line of one request can be found together.
package requestid

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Header is the HTTP header and (lower-cased) gRPC metadata key.
const Header = "X-Request-Id"

// MetadataKey is the gRPC metadata key of the request id.
const MetadataKey = "x-request-id"

// maxLen bounds an incoming id so that a client cannot flood the logs.
const maxLen = 128

type ctxKey struct{}

// With returns a context that carries id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the request id in ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// New returns a fresh, time-ordered request id.
func New() string {
	return uuid.Must(uuid.NewV7()).String()
}

// valid accepts ids of printable ASCII without spaces, so that a caller's id
// is kept when it is safe to log and replaced otherwise.
func valid(id string) bool {
	if id == "" || len(id) > maxLen {
		return false
	}
	for i := range len(id) {
		if c := id[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// accept keeps a caller's id when it is valid and makes a new one otherwise.
func accept(id string) string {
	if valid(id) {
		return id
	}
	return New()
}

// Middleware takes the request id from the X-Request-Id header or makes one,
// stores it in the request context and echoes it in the response header.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := accept(r.Header.Get(Header))
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(With(r.Context(), id)))
	})
}

// fromIncoming returns the id of an incoming gRPC call, or a new one.
func fromIncoming(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(MetadataKey); len(v) > 0 {
		return accept(v[0])
	}
	return New()
}

// UnaryServerInterceptor puts the caller's request id (or a new one) in the
// handler's context.
func UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(With(ctx, fromIncoming(ctx)), req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streams.
func StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := With(ss.Context(), fromIncoming(ss.Context()))
		return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	}
}

type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// outgoing adds the context's request id to the outgoing metadata.
func outgoing(ctx context.Context) context.Context {
	if id := From(ctx); id != "" {
		return metadata.AppendToOutgoingContext(ctx, MetadataKey, id)
	}
	return ctx
}

// UnaryClientInterceptor forwards the context's request id to the callee.
func UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(outgoing(ctx), method, req, reply, cc, opts...)
	}
}

// StreamClientInterceptor forwards the context's request id to the callee.
func StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(outgoing(ctx), desc, cc, method, opts...)
	}
}
