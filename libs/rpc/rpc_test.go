package rpc_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/comfortech/platform/libs/health"
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

func start(t *testing.T) (*grpc.ClientConn, context.CancelFunc, <-chan error) {
	t.Helper()
	reg := metrics.New()
	srv, err := rpc.NewServer(zap.NewNop(), reg, health.New(time.Second))
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
	conn, _, _ := start(t)
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
	conn, cancel, done := start(t)
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
