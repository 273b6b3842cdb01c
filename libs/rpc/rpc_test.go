package rpc_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/comfortech/platform/libs/health"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/metrics"
	"github.com/comfortech/platform/libs/requestid"
	"github.com/comfortech/platform/libs/rpc"
)

// probe is a tiny hand-declared service: Panic panics, Slow sleeps then
// echoes the request id it saw, Deadline reports the time left.
type probe struct{}

var probeDesc = grpc.ServiceDesc{
	ServiceName: "test.Probe",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Panic", Handler: unary(func(context.Context) (any, error) { panic("boom") })},
		{MethodName: "Slow", Handler: unary(func(ctx context.Context) (any, error) {
			time.Sleep(200 * time.Millisecond)
			return wrapperspb.String(requestid.From(ctx)), nil
		})},
		{MethodName: "Missing", Handler: unary(func(context.Context) (any, error) {
			return nil, status.Error(codes.NotFound, "device not found")
		})},
		{MethodName: "Deadline", Handler: unary(func(ctx context.Context) (any, error) {
			dl, ok := ctx.Deadline()
			if !ok {
				return nil, status.Error(codes.FailedPrecondition, "no deadline")
			}
			return wrapperspb.Int64(int64(time.Until(dl))), nil
		})},
	},
}

func unary(fn func(ctx context.Context) (any, error)) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
		in := new(emptypb.Empty)
		if err := dec(in); err != nil {
			return nil, err
		}
		info := &grpc.UnaryServerInfo{FullMethod: "/test.Probe/x"}
		h := func(ctx context.Context, _ any) (any, error) { return fn(ctx) }
		if icpt == nil {
			return h(ctx, in)
		}
		return icpt(ctx, in, info, h)
	}
}

func start(t *testing.T, log *zap.Logger, opts ...rpc.ServerOption) (*grpc.ClientConn, context.CancelFunc, <-chan error) {
	t.Helper()
	reg := metrics.New()
	checker := health.New(time.Second)
	srv, err := rpc.NewServer(log, reg, checker, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv.RegisterService(&probeDesc, probe{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _ = checker.Watch(ctx, time.Second) }()
	go func() { done <- rpc.Serve(ctx, lis, srv, 2*time.Second) }()
	conn, err := rpc.Dial(lis.Addr().String(), reg, rpc.WithCallTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = conn.Close() })
	return conn, cancel, done
}

func TestServer(t *testing.T) {
	t.Parallel()
	conn, _, _ := start(t, zap.NewNop())
	ctx := t.Context()

	t.Run("panic becomes Internal and the server lives on", func(t *testing.T) {
		err := conn.Invoke(ctx, "/test.Probe/Panic", &emptypb.Empty{}, &emptypb.Empty{})
		if status.Code(err) != codes.Internal || status.Convert(err).Message() != "internal error" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("request id travels and default deadline applies", func(t *testing.T) {
		var got wrapperspb.StringValue
		if err := conn.Invoke(requestid.With(ctx, "rid-7"), "/test.Probe/Slow", &emptypb.Empty{}, &got); err != nil {
			t.Fatal(err)
		}
		if got.GetValue() != "rid-7" {
			t.Fatalf("server saw request id %q", got.GetValue())
		}
		var left wrapperspb.Int64Value
		if err := conn.Invoke(ctx, "/test.Probe/Deadline", &emptypb.Empty{}, &left); err != nil {
			t.Fatal(err)
		}
		if d := time.Duration(left.GetValue()); d <= 0 || d > 3*time.Second {
			t.Fatalf("time left %v, want within the 3s default", d)
		}
	})
	t.Run("health and reflection are served", func(t *testing.T) {
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range resp.GetListServicesResponse().GetService() {
			found = found || s.GetName() == "test.Probe"
		}
		if !found {
			t.Fatal("reflection does not list test.Probe")
		}
	})
}

func TestServeFinishesInFlightCalls(t *testing.T) {
	t.Parallel()
	conn, cancel, done := start(t, zap.NewNop())
	errc := make(chan error, 1)
	go func() {
		errc <- conn.Invoke(t.Context(), "/test.Probe/Slow", &emptypb.Empty{}, &wrapperspb.StringValue{})
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("in-flight call failed during drain: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// TestAccessLogNamesTheAccount checks that a field an inner interceptor
// learns (the account id, added by authentication) reaches the access log
// line written by the outer logging interceptor.
func TestAccessLogNamesTheAccount(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.DebugLevel)
	authLike := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		logging.AddFields(ctx, logging.AccountID("acc-9"))
		return handler(ctx, req)
	}
	conn, _, _ := start(t, zap.New(core), rpc.WithServerInterceptors(authLike, nil))
	err := conn.Invoke(requestid.With(t.Context(), "rid-9"), "/test.Probe/Missing", &emptypb.Empty{}, &emptypb.Empty{})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("got %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		for _, e := range logs.All() {
			f := e.ContextMap()
			if f["grpc.code"] == "NotFound" {
				if f["account_id"] != "acc-9" || f["request_id"] != "rid-9" || e.Level != zap.InfoLevel {
					t.Fatalf("access log %v: %v", e.Level, f)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for the call: %v", logs.All())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHealthCheck(t *testing.T) {
	t.Parallel()
	conn, cancel, done := start(t, zap.NewNop())
	check := rpc.HealthCheck(conn)
	if err := check(t.Context()); err != nil {
		t.Fatalf("serving peer: %v", err)
	}
	cancel()
	<-done
	ctx, stop := context.WithTimeout(t.Context(), 2*time.Second)
	defer stop()
	if err := check(ctx); err == nil {
		t.Fatal("a stopped peer reported ready")
	}
}
