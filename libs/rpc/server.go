// Package rpc builds the gRPC servers and clients of every Comfortech part
// with the same interceptors: request id, metrics, logging, panic recovery,
// authentication (supplied by the caller) and request validation with
// protovalidate on the server; request id forwarding, metrics and a default
// deadline on the client.
package rpc

import (
	"context"
	"fmt"
	"net"
	"runtime/debug"
	"time"

	"buf.build/go/protovalidate"
	grpclog "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	pvmw "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/health"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/metrics"
	"github.com/comfortech/platform/libs/requestid"
	"github.com/comfortech/platform/libs/tracing"
)

type serverOptions struct {
	unary  []grpc.UnaryServerInterceptor
	stream []grpc.StreamServerInterceptor
	extra  []grpc.ServerOption
	tracer trace.TracerProvider
}

// ServerOption configures NewServer.
type ServerOption func(*serverOptions)

// WithServerInterceptors adds interceptors that run after recovery and
// before validation: authentication and authorization go here.
func WithServerInterceptors(unary grpc.UnaryServerInterceptor, stream grpc.StreamServerInterceptor) ServerOption {
	return func(o *serverOptions) {
		if unary != nil {
			o.unary = append(o.unary, unary)
		}
		if stream != nil {
			o.stream = append(o.stream, stream)
		}
	}
}

// WithServerTracing makes a server span of every call, child of the
// caller's span when the call carries a traceparent. Without it calls are
// not traced (the no-op provider).
func WithServerTracing(tp trace.TracerProvider) ServerOption {
	return func(o *serverOptions) { o.tracer = tp }
}

// WithGRPCOptions passes options straight to grpc.NewServer.
func WithGRPCOptions(opts ...grpc.ServerOption) ServerOption {
	return func(o *serverOptions) { o.extra = append(o.extra, opts...) }
}

// NewServer returns a gRPC server with the standard interceptor chain, the
// grpc.health.v1 service of checker and server reflection registered. The
// caller registers its services, then calls Serve.
//
// Interceptors run in this order: request id, metrics, logging, recovery,
// the caller's (authentication), validation. Recovery sits inside logging
// and metrics so that a panic is counted and logged as the Internal error it
// becomes.
func NewServer(log *zap.Logger, reg *metrics.Registry, checker *health.Checker, opts ...ServerOption) (*grpc.Server, error) {
	var o serverOptions
	for _, opt := range opts {
		opt(&o)
	}
	validator, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("protovalidate: %w", err)
	}
	logOpts := []grpclog.Option{
		grpclog.WithLogOnEvents(grpclog.FinishCall),
		grpclog.WithLevels(serverLevel),
	}
	recoverOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		logging.For(ctx, log).Error("panic in gRPC handler", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})
	srvMetrics := reg.GRPCServer()

	unary := append([]grpc.UnaryServerInterceptor{
		callFieldsUnary,
		requestid.UnaryServerInterceptor(),
		srvMetrics.UnaryServerInterceptor(),
		grpclog.UnaryServerInterceptor(interceptorLogger(log), logOpts...),
		recovery.UnaryServerInterceptor(recoverOpt),
	}, o.unary...)
	unary = append(unary, pvmw.UnaryServerInterceptor(validator))
	stream := append([]grpc.StreamServerInterceptor{
		callFieldsStream,
		requestid.StreamServerInterceptor(),
		srvMetrics.StreamServerInterceptor(),
		grpclog.StreamServerInterceptor(interceptorLogger(log), logOpts...),
		recovery.StreamServerInterceptor(recoverOpt),
	}, o.stream...)
	stream = append(stream, pvmw.StreamServerInterceptor(validator))

	srvOpts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	if !tracing.Disabled(o.tracer) {
		// A stats handler, not an interceptor: the span is open before the
		// interceptors run, so their logs carry its trace id.
		srvOpts = append(srvOpts, grpc.StatsHandler(otelgrpc.NewServerHandler(otelOptions(o.tracer)...)))
	}
	srv := grpc.NewServer(append(srvOpts, o.extra...)...)
	healthpb.RegisterHealthServer(srv, checker.GRPCServer())
	reflection.Register(srv)
	return srv, nil
}

// callFieldsUnary starts the call's log fields, which later interceptors
// (authentication) fill and the logging interceptor writes.
func callFieldsUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(logging.WithCallFields(ctx), req)
}

// callFieldsStream is callFieldsUnary for streams.
func callFieldsStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &fieldsStream{ServerStream: ss, ctx: logging.WithCallFields(ss.Context())})
}

type fieldsStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *fieldsStream) Context() context.Context { return s.ctx }

// serverLevel logs successful calls at debug level only: a busy service
// must not write a line per request in production.
func serverLevel(c codes.Code) grpclog.Level {
	switch c {
	case codes.OK:
		return grpclog.LevelDebug
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		return grpclog.LevelError
	case codes.Unavailable, codes.DeadlineExceeded:
		return grpclog.LevelWarn
	default:
		return grpclog.LevelInfo
	}
}

// interceptorLogger adapts zap to go-grpc-middleware's logger, adding the
// call's request id, trace id and account id.
func interceptorLogger(log *zap.Logger) grpclog.Logger {
	return grpclog.LoggerFunc(func(ctx context.Context, lvl grpclog.Level, msg string, fields ...any) {
		level := zap.ErrorLevel
		switch lvl {
		case grpclog.LevelDebug:
			level = zap.DebugLevel
		case grpclog.LevelInfo:
			level = zap.InfoLevel
		case grpclog.LevelWarn:
			level = zap.WarnLevel
		}
		// Check before building fields: most successful calls log nothing.
		ce := log.Check(level, msg)
		if ce == nil {
			return
		}
		zf := logging.Fields(ctx)
		for i := 0; i+1 < len(fields); i += 2 {
			key, _ := fields[i].(string)
			zf = append(zf, zap.Any(key, fields[i+1]))
		}
		ce.Write(zf...)
	})
}

// Serve runs srv on l until ctx ends, then stops it gracefully, waiting up
// to drain for calls in flight before cutting them off.
func Serve(ctx context.Context, l net.Listener, srv *grpc.Server, drain time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("grpc server on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(drain):
		srv.Stop()
		<-stopped
	}
	return nil
}

// WithAuth authenticates every call (but health and reflection) with v and
// enforces opts' per-method roles.
func WithAuth(v *auth.Verifier, opts ...auth.GRPCOption) ServerOption {
	return WithServerInterceptors(auth.UnaryServerInterceptor(v, opts...), auth.StreamServerInterceptor(v, opts...))
}

// ServicePrefix is the method-name prefix of every RPC of the service that
// desc describes ("/pkg.v1.Service/"), as auth.WithMethodRoles expects.
func ServicePrefix(desc *grpc.ServiceDesc) string { return "/" + desc.ServiceName + "/" }

// otelOptions configures otelgrpc with tp, the
// platform's propagator, no spans for health checks (readiness probes every
// few seconds would bury the traces that matter), and no metrics: the
// Prometheus interceptors count calls, and otelgrpc must not fall back to
// OpenTelemetry's globals.
func otelOptions(tp trace.TracerProvider) []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(tracing.Propagator),
		otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	}
}
