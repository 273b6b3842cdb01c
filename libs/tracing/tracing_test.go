package tracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/libs/tracing"
)

// TestNotConfiguredExportsNothing: without an endpoint the provider is a
// no-op one whose spans record nothing, yet keep the caller's trace.
func TestNotConfiguredExportsNothing(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]tracing.Config{
		"no endpoint":   {Protocol: "http/protobuf", Exporter: "otlp"},
		"exporter none": {Endpoint: "http://127.0.0.1:1", Exporter: "none"},
		"sdk disabled":  {Endpoint: "http://127.0.0.1:1", Exporter: "otlp", Disabled: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, err := tracing.New(context.Background(), cfg, "data")
			if err != nil {
				t.Fatal(err)
			}
			_, span := p.Tracer("test").Start(context.Background(), "op")
			if span.IsRecording() || span.SpanContext().IsValid() {
				t.Errorf("span recording %v, valid %v; want a no-op span", span.IsRecording(), span.SpanContext().IsValid())
			}
			span.End()
			if !tracing.Disabled(p) {
				t.Error("Disabled is false for the no-op provider: servers would still wrap every call")
			}
			if err := p.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	if !tracing.Disabled(nil) || tracing.Disabled(sdktrace.NewTracerProvider()) ||
		tracing.Disabled(tracing.Borrowed(sdktrace.NewTracerProvider())) {
		t.Error("Disabled: nil is disabled, an SDK provider (bare or borrowed) is not")
	}
}

// TestExportsOverOTLPHTTP: with an endpoint, spans reach the collector's
// /v1/traces as OTLP protobuf, with the part's service name.
func TestExportsOverOTLPHTTP(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		got []*collectortrace.ExportTraceServiceRequest
	)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &collectortrace.ExportTraceServiceRequest{}
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, req) != nil {
			t.Errorf("collector got %s %s", r.Method, r.URL.Path)
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()

	p, err := tracing.New(context.Background(), tracing.Config{Endpoint: collector.URL, Protocol: "http/protobuf", Exporter: "otlp"}, "notify")
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.Tracer("test").Start(context.Background(), "deliver webhook")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("nothing exported")
	}
	rs := got[0].GetResourceSpans()[0]
	var service string
	for _, kv := range rs.GetResource().GetAttributes() {
		if kv.GetKey() == "service.name" {
			service = kv.GetValue().GetStringValue()
		}
	}
	if service != "notify" || rs.GetScopeSpans()[0].GetSpans()[0].GetName() != "deliver webhook" {
		t.Errorf("exported service %q, spans %v", service, rs.GetScopeSpans())
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, cfg := range []tracing.Config{{Exporter: "jaeger"}, {Exporter: "otlp", Protocol: "http/json"}} {
		if _, err := tracing.New(context.Background(), cfg, "data"); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
