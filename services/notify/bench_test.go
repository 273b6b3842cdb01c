package notify_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/services/notify"
	"github.com/comfortech/platform/services/notify/internal/store/storetest"
)

// counter is a webhook sink counting requests.
func counter(b *testing.B) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(s.Close)
	return s, &n
}

func benchMessages(b *testing.B, account string, n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = notification(b, &eventsv1.OutboxNotification{Application: "comfortech", EventType: "alert.raised", Level: "warning",
			Message: fmt.Sprintf("reading %d", i), Timestamp: timestamppb.Now(), AccountId: account, Id: uuid.NewString()})
	}
	return msgs
}

func waitFor(b *testing.B, n *atomic.Int64, want int64) {
	deadline := time.Now().Add(5 * time.Minute)
	for n.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d", n.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkOutboxToWebhook measures deliveries/s from notifications.outbox
// to a local webhook sink through the whole service (routing, dedupe,
// delivery log and its events on), on SQLite and PostgreSQL.
func BenchmarkOutboxToWebhook(b *testing.B) {
	for name, url := range map[string]func(testing.TB) string{"sqlite": storetest.SQLiteURL, "postgres": storetest.PostgresURL} {
		b.Run(name, func(b *testing.B) {
			idp := idptest.Start(b)
			brokers := kafkatest.NewCluster(b).ListenAddrs()
			sink, got := counter(b)
			s, _ := launch(b, idp, brokers, url(b), notify.Config{Workers: 64})
			u := idp.CreateUser(b, "+79510000004")
			ctx := as(idp.Login(b, u.Username, u.Password).AccessToken)
			must(notifyv1.NewWebhookEndpointServiceClient(s.conn).CreateWebhookEndpoint(ctx, &notifyv1.CreateWebhookEndpointRequest{Url: sink.URL}))
			must(notifyv1.NewPreferenceServiceClient(s.conn).UpdateNotificationPreferences(ctx, &notifyv1.UpdateNotificationPreferencesRequest{
				Preferences: &notifyv1.NotificationPreferences{Rules: []*notifyv1.PreferenceRule{{Channels: []notifyv1.Channel{notifyv1.Channel_CHANNEL_WEBHOOK}}}}}))
			msgs := benchMessages(b, u.ID, b.N)
			b.ResetTimer()
			publish(b, brokers, msgs...)
			waitFor(b, got, int64(b.N))
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkBareRelay is the baseline: a bare consumer (libs/kafka Runner)
// relaying each record to the same kind of sink with one HTTP POST.
func BenchmarkBareRelay(b *testing.B) {
	brokers := kafkatest.NewCluster(b).ListenAddrs()
	sink, got := counter(b)
	client := &http.Client{}
	r, err := kafka.NewRunner(kafkatest.Config(brokers), kafka.RunnerConfig{Group: "bare", Topics: []string{notify.TopicOutbox}},
		func(ctx context.Context, m *kafka.Message) error {
			resp, err := client.Post(sink.URL, "application/json", bytes.NewReader(m.Value))
			if err != nil {
				return err
			}
			return resp.Body.Close()
		}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	msgs := benchMessages(b, uuid.NewString(), b.N)
	b.ResetTimer()
	publish(b, brokers, msgs...)
	waitFor(b, got, int64(b.N))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
