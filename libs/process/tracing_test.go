package process_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/comfortech/platform/libs/process"
)

// TestTracing: a request to a part's HTTP server, and the gRPC call its
// handler makes to another part, are one trace: HTTP server span → gRPC
// client span → gRPC server span on the other part, continuing the
// caller's traceparent. Health checks (readiness probes) make no spans.
func TestTracing(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	run := func(p *process.Process) chan error {
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx, listen(t)) }()
		return done
	}

	// The service: a gRPC server (its reflection service answers).
	svc, err := process.New("service", zap.NewNop(), process.Config{TracerProvider: tp, ReadinessInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	grpcL := listen(t)
	if _, err := svc.GRPCServer("", grpcL); err != nil {
		t.Fatal(err)
	}
	svcDone := run(svc)

	// The gateway: an HTTP handler calling the service.
	gw, err := process.New("gateway", zap.NewNop(), process.Config{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := gw.Dial("service", grpcL.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	httpL := listen(t)
	gw.ServeHTTP("public", httpL, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(r.Context())
		if err == nil {
			err = stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
		}
		if err == nil {
			_, err = stream.Recv()
		}
		if err == nil {
			err = stream.CloseSend()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	}))
	gwDone := run(gw)

	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, "http://"+httpL.Addr().String()+"/check", nil)
	req.Header.Set("traceparent", "00-"+callerTrace+"-00f067aa0ba902b7-01")
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway never answered 200: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-svcDone
	<-gwDone

	// The spans of the successful request's trace (readiness checks and
	// failed tries have others).
	var httpSpan, client, server *tracetest.SpanStub
	spans := exp.GetSpans()
	for i := range spans {
		s := &spans[i]
		switch {
		case s.SpanKind == trace.SpanKindServer && s.Name == "GET public":
			httpSpan = s
		}
	}
	if httpSpan == nil {
		t.Fatalf("no HTTP server span among %d spans", len(spans))
	}
	for i := range spans {
		s := &spans[i]
		if s.SpanContext.TraceID() != httpSpan.SpanContext.TraceID() {
			continue
		}
		switch {
		case s.SpanKind == trace.SpanKindClient && strings.HasSuffix(s.Name, "ServerReflectionInfo") && s.Parent.SpanID() == httpSpan.SpanContext.SpanID():
			client = s
		case s.SpanKind == trace.SpanKindServer && strings.HasSuffix(s.Name, "ServerReflectionInfo"):
			server = s
		}
	}
	if httpSpan.SpanContext.TraceID().String() != callerTrace || !httpSpan.Parent.IsRemote() {
		t.Errorf("HTTP span trace %s (remote parent %v), want the caller's %s", httpSpan.SpanContext.TraceID(), httpSpan.Parent.IsRemote(), callerTrace)
	}
	if client == nil || server == nil {
		t.Fatalf("client span %v, server span %v in the request's trace", client != nil, server != nil)
	}
	if server.Parent.SpanID() != client.SpanContext.SpanID() || !server.Parent.IsRemote() {
		t.Errorf("server span's parent %s, want the client span %s", server.Parent.SpanID(), client.SpanContext.SpanID())
	}
	for _, s := range spans {
		if strings.Contains(s.Name, "grpc.health.v1") {
			t.Errorf("a health check made span %q", s.Name)
		}
	}
}
