package logging_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/requestid"
)

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []logging.Config{{Level: "loud", Format: "json"}, {Level: "info", Format: "xml"}} {
		if _, err := logging.New(cfg, "svc"); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	if _, err := logging.New(logging.Config{Level: "debug", Format: "console"}, "svc"); err != nil {
		t.Fatal(err)
	}
}

func TestCallFields(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.DebugLevel)
	base := zap.New(core)

	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	ctx = logging.WithCallFields(requestid.With(ctx, "req-1"))
	// A field added in a context derived from the call's reaches a logger
	// built from the call's own context, as an access log's is.
	inner, cancel := context.WithCancel(ctx)
	logging.AddFields(inner, logging.AccountID("acc-1"))
	cancel()

	logging.For(ctx, base).Info("hello", logging.Phone("phone", "+79516519741"))

	got := logs.All()[0].ContextMap()
	want := map[string]string{
		"request_id": "req-1",
		"trace_id":   tid.String(),
		"account_id": "acc-1",
		"phone":      "+7********41",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"+79516519741": "+7********41", "+12": "***", "": ""} {
		if got := logging.MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}
