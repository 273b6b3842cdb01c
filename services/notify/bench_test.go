package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
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

// latencySink is a webhook sink recording, for each notification, the
// time from the timestamp it carries (set when it was published to the
// outbox) to its arrival.
func latencySink(b *testing.B) (*httptest.Server, func() []time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		var body struct {
			Timestamp time.Time `json:"timestamp"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err == nil {
			mu.Lock()
			lat = append(lat, now.Sub(body.Timestamp))
			mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(s.Close)
	return s, func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(lat)
	}
}

// BenchmarkOutboxLatency measures outbox→delivered latency (p50, p99) at
// a steady 1,000 notifications/s: b.N notifications (at least 2,000), each
// published alone with its publication time as timestamp, after a warm-up.
func BenchmarkOutboxLatency(b *testing.B) {
	const rate = 1000
	for name, url := range map[string]func(testing.TB) string{"sqlite": storetest.SQLiteURL, "postgres": storetest.PostgresURL} {
		b.Run(name, func(b *testing.B) {
			idp := idptest.Start(b)
			brokers := kafkatest.NewCluster(b).ListenAddrs()
			sink, latencies := latencySink(b)
			s, _ := launch(b, idp, brokers, url(b), notify.Config{Workers: 64})
			u := idp.CreateUser(b, "+79510000005")
			ctx := as(idp.Login(b, u.Username, u.Password).AccessToken)
			must(notifyv1.NewWebhookEndpointServiceClient(s.conn).CreateWebhookEndpoint(ctx, &notifyv1.CreateWebhookEndpointRequest{Url: sink.URL}))
			must(notifyv1.NewPreferenceServiceClient(s.conn).UpdateNotificationPreferences(ctx, &notifyv1.UpdateNotificationPreferencesRequest{
				Preferences: &notifyv1.NotificationPreferences{Rules: []*notifyv1.PreferenceRule{{Channels: []notifyv1.Channel{notifyv1.Channel_CHANNEL_WEBHOOK}}}}}))
			// The producer sends each record at once (no linger), so the
			// figures are the service's, not the producer's batching.
			pcfg := kafkatest.Config(brokers)
			pcfg.Linger = time.Microsecond
			p := must(kafka.NewProducer(pcfg, nil, nil))
			b.Cleanup(func() { _ = p.Close() })

			// steady publishes n notifications at rate, each on its own
			// (several in flight, as independent producers would).
			steady := func(n int) {
				sem := make(chan struct{}, 32)
				var wg sync.WaitGroup
				tick := time.NewTicker(time.Second / rate)
				defer tick.Stop()
				for i := range n {
					<-tick.C
					sem <- struct{}{}
					wg.Go(func() {
						defer func() { <-sem }()
						m := notification(b, &eventsv1.OutboxNotification{Application: "comfortech", EventType: "alert.raised", Level: "warning",
							Message: fmt.Sprintf("reading %d", i), Timestamp: timestamppb.Now(), AccountId: u.ID, Id: uuid.NewString()})
						if err := p.Publish(context.Background(), m); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
			warm := 500
			steady(warm)
			for len(latencies()) < warm {
				time.Sleep(time.Millisecond)
			}
			n := max(b.N, 2000)
			b.ResetTimer()
			steady(n)
			for len(latencies()) < warm+n {
				if b.Elapsed() > 5*time.Minute {
					b.Fatalf("delivered %d of %d", len(latencies())-warm, n)
				}
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			lat := latencies()[warm:]
			slices.Sort(lat)
			ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
			b.ReportMetric(ms(0.50), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
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
