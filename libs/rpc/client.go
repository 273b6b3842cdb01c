package rpc

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/comfortech/platform/libs/metrics"
	"github.com/comfortech/platform/libs/requestid"
	"github.com/comfortech/platform/libs/tracing"
)

// DefaultCallTimeout bounds a call whose context has no deadline.
const DefaultCallTimeout = 10 * time.Second

type clientOptions struct {
	timeout time.Duration
	creds   credentials.PerRPCCredentials
	unary   []grpc.UnaryClientInterceptor
	extra   []grpc.DialOption
	tracer  trace.TracerProvider
}

// ClientOption configures Dial.
type ClientOption func(*clientOptions)

// WithCallTimeout sets the deadline given to calls whose context has none.
func WithCallTimeout(d time.Duration) ClientOption {
	return func(o *clientOptions) { o.timeout = d }
}

// WithPerRPCCredentials attaches credentials (a forwarded user token or a
// service-account token) to every call.
func WithPerRPCCredentials(c credentials.PerRPCCredentials) ClientOption {
	return func(o *clientOptions) { o.creds = c }
}

// WithClientInterceptors adds unary interceptors after the standard ones.
func WithClientInterceptors(i ...grpc.UnaryClientInterceptor) ClientOption {
	return func(o *clientOptions) { o.unary = append(o.unary, i...) }
}

// WithClientTracing makes a client span of every call and sends its
// trace context to the server as traceparent metadata.
func WithClientTracing(tp trace.TracerProvider) ClientOption {
	return func(o *clientOptions) { o.tracer = tp }
}

// WithDialOptions passes options straight to grpc.NewClient.
func WithDialOptions(opts ...grpc.DialOption) ClientOption {
	return func(o *clientOptions) { o.extra = append(o.extra, opts...) }
}

// Dial returns a client connection to target (host:port, or any gRPC
// target) over plaintext, for calls inside the platform's network.
func Dial(target string, reg *metrics.Registry, opts ...ClientOption) (*grpc.ClientConn, error) {
	o := clientOptions{timeout: DefaultCallTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	cm := reg.GRPCClient()
	unary := append([]grpc.UnaryClientInterceptor{
		deadline(o.timeout),
		requestid.UnaryClientInterceptor(),
		cm.UnaryClientInterceptor(),
	}, o.unary...)
	dialOpts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(unary...),
		grpc.WithChainStreamInterceptor(requestid.StreamClientInterceptor(), cm.StreamClientInterceptor()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	}, o.extra...)
	if !tracing.Disabled(o.tracer) {
		dialOpts = append(dialOpts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelOptions(o.tracer)...)))
	}
	if o.creds != nil {
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(o.creds))
	}
	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("grpc client for %s: %w", target, err)
	}
	return conn, nil
}

// deadline gives every call a deadline, so that no call can hang forever on
// a peer that accepted the connection and went silent.
func deadline(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// HealthCheck returns a readiness check that asks the peer behind conn for
// its overall grpc.health.v1 status: a gateway is ready only when the
// services it calls are.
func HealthCheck(conn *grpc.ClientConn) func(context.Context) error {
	client := healthpb.NewHealthClient(conn)
	return func(ctx context.Context) error {
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return fmt.Errorf("%s: %w", conn.Target(), err)
		}
		if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%s: %s", conn.Target(), s)
		}
		return nil
	}
}
