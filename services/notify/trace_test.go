package notify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	"github.com/comfortech/platform/libs/process"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/services/notify"
	"github.com/comfortech/platform/services/notify/internal/store/storetest"
)

// TestRetryStaysInTrace: a webhook refuses a notification's first
// delivery attempt and takes the second, which the scheduler makes from
// the database. Both attempts' spans are children of the span that
// published the notification, in its trace.
func TestRetryStaysInTrace(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	idp := idptest.Start(t)
	brokers := kafkatest.NewCluster(t).ListenAddrs()
	var calls atomic.Int32
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(sink.Close)
	s, _ := launch(t, idp, brokers, storetest.SQLiteURL(t), notify.Config{}, process.WithTracerProvider(tp))
	u := idp.CreateUser(t, "+79510000009")
	ctx := as(idp.Login(t, u.Username, u.Password).AccessToken)
	must(notifyv1.NewWebhookEndpointServiceClient(s.conn).CreateWebhookEndpoint(ctx, &notifyv1.CreateWebhookEndpointRequest{Url: sink.URL}))
	must(notifyv1.NewPreferenceServiceClient(s.conn).UpdateNotificationPreferences(ctx, &notifyv1.UpdateNotificationPreferencesRequest{
		Preferences: &notifyv1.NotificationPreferences{Rules: []*notifyv1.PreferenceRule{{Channels: []notifyv1.Channel{notifyv1.Channel_CHANNEL_WEBHOOK}}}}}))

	// The notification, as a part that traces its work publishes it.
	publisher := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0x5b, 0x8e, 1}, SpanID: trace.SpanID{0xee, 0xe1, 2},
		TraceFlags: trace.FlagsSampled, Remote: true})
	msg, err := kafka.EncodeEvent(trace.ContextWithSpanContext(context.Background(), publisher), notify.TopicOutbox, kafka.Event{
		Source: "/services/data", Type: "comfortech.notification.requested.v1", Key: u.ID,
		Data: &eventsv1.OutboxNotification{Application: "comfortech", EventType: "alert.raised", Level: "warning", Message: "retried",
			Timestamp: timestamppb.Now(), AccountId: u.ID, Id: uuid.NewString()}})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, brokers, msg)

	var attempts []tracetest.SpanStub
	for deadline := time.Now().Add(20 * time.Second); len(attempts) < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d delivery attempts traced, want 2 (the sink was called %d times)", len(attempts), calls.Load())
		}
		attempts = attempts[:0]
		for _, sp := range exp.GetSpans() {
			if sp.Name == "deliver webhook" {
				attempts = append(attempts, sp)
			}
		}
	}
	for i, sp := range attempts {
		if sp.SpanContext.TraceID() != publisher.TraceID() {
			t.Errorf("attempt %d is in trace %s, not the publisher's %s", i+1, sp.SpanContext.TraceID(), publisher.TraceID())
		}
		if sp.Parent.SpanID() != attempts[0].Parent.SpanID() {
			t.Errorf("attempt %d's parent is %s, the first attempt's %s", i+1, sp.Parent.SpanID(), attempts[0].Parent.SpanID())
		}
	}
}
