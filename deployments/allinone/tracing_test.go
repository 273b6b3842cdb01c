package allinone_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap/zaptest"

	"github.com/comfortech/platform/deployments/allinone"
	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
)

// TestTraceFromGatewayToDelivery follows one request through the platform
// with every part recording into one in-memory exporter: an operator's
// POST /v1/fleet/devices:provision on the admin gateway (with the caller's
// traceparent) → the gRPC call to the device service → the audit event it
// publishes on Kafka → the notify service consuming it for an event
// subscription → the webhook delivery attempt. All are one trace, each
// span the child of the one before.
func TestTraceFromGatewayToDelivery(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := allinone.Start(ctx, allinone.Config{
		DataDir: t.TempDir(), Host: "127.0.0.1", EphemeralPorts: true, KafkaPartitions: 1,
		RealmFile: idptest.RealmFile(t), AdminPassword: "Admin-Passw0rd",
		DataDatabaseURL: os.Getenv("COMFORT_BENCH_DATABASE_URL"), TracerProvider: tp,
	}, zaptest.NewLogger(t))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}
	admin := adminToken(t, p, authAPI)

	sink, sinkURL := newSubscriptionSink(t)
	secret := putSubscription(t, adminAPI, admin, "device-audit", map[string]any{"url": sinkURL + "/audit",
		"event_types": []string{"audit"}, "enabled": true,
		"filters": []map[string]string{{"attribute": "data.resource_type", "operator": "FILTER_OPERATOR_EXACT", "value": "device"}}})
	sink.mu.Lock()
	sink.secret = secret
	sink.mu.Unlock()

	provision := func(serial, traceparent string) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"serial": serial, "model": "thermostat-t1", "firmware_version": "1.0.0"})
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.Addr("admin-gateway", "http")+"/v1/fleet/devices:provision", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("provision: %d", resp.StatusCode)
		}
	}
	// delivered waits for the subscription's webhook to receive the audit
	// event of serial, and returns the CloudEvent's traceparent.
	deadline := time.Now().Add(30 * time.Second)
	delivered := func(serial string) string {
		t.Helper()
		for {
			_, events, _ := sink.received()
			for _, e := range events {
				if after, _ := e["data"].(map[string]any)["after"].(map[string]any); after["serial"] == serial {
					tp, _ := e["traceparent"].(string)
					return tp
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the subscription received no audit event of %s", serial)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Once a first event came through, the notify service consumes the
	// audit topic as it is written: the traced event is handled on its own.
	provision("TRACE-000000", "")
	delivered("TRACE-000000")

	// The traced request, as a caller that traces its own work sends it.
	const callerTrace, callerSpan = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
	provision("TRACE-000001", "00-"+callerTrace+"-"+callerSpan+"-01")
	// The webhook receives the audit event, carrying the trace.
	if tp := delivered("TRACE-000001"); !strings.Contains(tp, callerTrace) {
		t.Errorf("delivered CloudEvent's traceparent %q is not in the caller's trace %s", tp, callerTrace)
	}

	// The delivery's span ends just after the webhook answered.
	var chain []tracetest.SpanStub
	for {
		chain = ancestry(exp.GetSpans(), callerTrace, "deliver webhook")
		if len(chain) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(chain) == 0 {
		t.Fatalf("no delivery span in trace %s among %d spans", callerTrace, len(exp.GetSpans()))
	}
	var path []string
	for _, s := range chain {
		path = append(path, fmt.Sprintf("%s %q", s.SpanKind, s.Name))
	}
	t.Logf("trace %s, root first:\n  %s", callerTrace, strings.Join(path, "\n  "))

	// Root first: the HTTP request, under the caller's span.
	want := []struct {
		kind trace.SpanKind
		name string
	}{
		{trace.SpanKindServer, "POST /v1/fleet/devices:provision"},
		{trace.SpanKindClient, "comfortech.device.v1.DeviceAdminService/ProvisionDevice"},
		{trace.SpanKindServer, "comfortech.device.v1.DeviceAdminService/ProvisionDevice"},
		{trace.SpanKindProducer, "send audit"},
		{trace.SpanKindConsumer, "process audit"},
		{trace.SpanKindClient, "deliver webhook"},
	}
	if chain[0].Parent.SpanID().String() != callerSpan || !chain[0].Parent.IsRemote() {
		t.Errorf("the root span's parent is %s, want the caller's %s", chain[0].Parent.SpanID(), callerSpan)
	}
	i := 0
	for _, s := range chain {
		if i < len(want) && s.SpanKind == want[i].kind && s.Name == want[i].name {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("the delivery's ancestry lacks %s %q (or has it out of order)", want[i].kind, want[i].name)
	}
	if chain[0].Resource == nil {
		t.Error("spans have no resource")
	}
}

// ancestry returns the span named name in trace traceID and its ancestors,
// root first, or nil when there is no such span.
func ancestry(spans tracetest.SpanStubs, traceID, name string) []tracetest.SpanStub {
	byID := map[trace.SpanID]tracetest.SpanStub{}
	var leaf *tracetest.SpanStub
	for i, s := range spans {
		if s.SpanContext.TraceID().String() != traceID {
			continue
		}
		byID[s.SpanContext.SpanID()] = s
		if s.Name == name {
			leaf = &spans[i]
		}
	}
	if leaf == nil {
		return nil
	}
	chain := []tracetest.SpanStub{*leaf}
	for {
		parent, ok := byID[chain[0].Parent.SpanID()]
		if !ok {
			return chain
		}
		chain = append([]tracetest.SpanStub{parent}, chain...)
	}
}
