package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/apipb"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 20 * time.Second

func newProducer(t *testing.T, cfg kafka.Config, m *kafka.Metrics) *kafka.Producer {
	t.Helper()
	p, err := kafka.NewProducer(cfg, zaptest.NewLogger(t), m)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// startRunner runs a consumer group until the returned stop func is called;
// stop fails the test if Run returned an error.
func startRunner(t *testing.T, cfg kafka.Config, rc kafka.RunnerConfig, h kafka.Handler, m *kafka.Metrics) (stop func()) {
	t.Helper()
	r, err := kafka.NewRunner(cfg, rc, h, zaptest.NewLogger(t), m)
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v, want nil on cancel", err)
				}
			case <-time.After(testTimeout):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func publishN(t *testing.T, p *kafka.Producer, topic string, n int) {
	t.Helper()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Topic: topic, Key: []byte("k" + strconv.Itoa(i%7)), Value: []byte(strconv.Itoa(i))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.PublishBatch(ctx, msgs); err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}
}

func withSpan(ctx context.Context, t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	return trace.ContextWithSpanContext(ctx, sc), sc
}

func TestRoundTripCloudEventWithTraceContext(t *testing.T) {
	t.Parallel()
	const topic = "device.lifecycle"
	c := kafkatest.NewCluster(t, kfake.SeedTopics(3, topic))
	cfg := kafkatest.Config(c.ListenAddrs())
	reg := prometheus.NewRegistry()
	metrics, err := kafka.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, cfg, metrics)

	ctx, sc := withSpan(context.Background(), t)
	ctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	sent := &apipb.Method{Name: "Claim", RequestTypeUrl: "type.googleapis.com/x", ResponseStreaming: true}
	msg, err := kafka.EncodeEvent(ctx, topic, kafka.Event{Source: "/services/device", Key: "dev-1", Data: sent})
	if err != nil {
		t.Fatalf("EncodeEvent: %v", err)
	}
	if err := p.Publish(ctx, msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	type received struct {
		m     *kafka.Message
		trace trace.SpanContext
	}
	got := make(chan received, 1)
	startRunner(t, cfg, kafka.RunnerConfig{Group: "g", Topics: []string{topic}}, func(ctx context.Context, m *kafka.Message) error {
		got <- received{m: m, trace: trace.SpanContextFromContext(ctx)}
		return nil
	}, metrics)

	var r received
	select {
	case r = <-got:
	case <-time.After(testTimeout):
		t.Fatal("message not consumed")
	}
	if string(r.m.Key) != "dev-1" {
		t.Errorf("key = %q, want dev-1", r.m.Key)
	}
	for h, want := range map[string]string{
		"ce_specversion": "1.0",
		"ce_type":        "google.protobuf.Method",
		"ce_source":      "/services/device",
		"content-type":   "application/json",
		"ce_id":          msg.Header("ce_id"),
	} {
		if v := r.m.Header(h); v != want {
			t.Errorf("header %s = %q, want %q", h, v, want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, r.m.Header("ce_time")); err != nil {
		t.Errorf("ce_time %q: %v", r.m.Header("ce_time"), err)
	}
	if !strings.Contains(string(r.m.Value), `"request_type_url"`) {
		t.Errorf("value %s does not use proto field names", r.m.Value)
	}
	if r.trace.TraceID() != sc.TraceID() || !r.trace.IsRemote() {
		t.Errorf("consumer trace = %v (remote %v), want producer's %v", r.trace.TraceID(), r.trace.IsRemote(), sc.TraceID())
	}
	var decoded apipb.Method
	ev, err := kafka.DecodeEvent(r.m, &decoded)
	if err != nil {
		t.Fatalf("DecodeEvent: %v", err)
	}
	if !proto.Equal(&decoded, sent) || ev.Key != "dev-1" || ev.Type != "google.protobuf.Method" {
		t.Errorf("decoded %v %+v, want %v", &decoded, ev, sent)
	}

	// The metrics the round trip produced follow Prometheus naming rules.
	if v := metricSum(t, reg, "comfort_kafka_produced_messages_total"); v != 1 {
		t.Errorf("produced = %v, want 1", v)
	}
	if v := metricSum(t, reg, "comfort_kafka_handled_messages_total", "outcome", "ok"); v != 1 {
		t.Errorf("handled ok = %v, want 1", v)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
}

// metricSum adds up the counter (or histogram sample count) series of the
// named family whose labels include the given name/value pairs.
func metricSum(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func TestRetryThenDeadLetter(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	tests := []struct {
		name         string
		failures     int  // attempts that fail before success; -1 = always
		permanent    bool // failures are wrapped with kafka.Permanent
		wantDLQ      bool
		wantAttempts int
		wantReason   string
	}{
		{name: "succeeds within budget", failures: 2, wantAttempts: 3},
		{name: "always failing goes to dlq", failures: -1, wantDLQ: true, wantAttempts: 4, wantReason: "boom"},
		{name: "permanent goes straight to dlq", failures: -1, permanent: true, wantDLQ: true, wantAttempts: 1, wantReason: "boom"},
		{name: "panic is retried then dead-lettered", failures: -2, wantDLQ: true, wantAttempts: 4, wantReason: "panicked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const topic = "alerts"
			c := kafkatest.NewCluster(t, kfake.SeedTopics(1, topic))
			cfg := kafkatest.Config(c.ListenAddrs())
			reg := prometheus.NewRegistry()
			metrics, err := kafka.NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			p := newProducer(t, cfg, metrics)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			poison := kafka.Message{Topic: topic, Key: []byte("dev-9"), Value: []byte(`{"x":1}`),
				Headers: []kafka.Header{{Key: "ce_id", Value: []byte("id-1")}}}
			next := kafka.Message{Topic: topic, Key: []byte("dev-9"), Value: []byte("next")}
			if err := p.PublishBatch(ctx, []kafka.Message{poison, next}); err != nil {
				t.Fatal(err)
			}

			var attempts atomic.Int32
			nextSeen := make(chan struct{})
			startRunner(t, cfg, kafka.RunnerConfig{
				Group: "g", Topics: []string{topic}, MaxAttempts: 4,
				InitialBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
			}, func(_ context.Context, m *kafka.Message) error {
				if string(m.Value) == "next" {
					close(nextSeen)
					return nil
				}
				n := int(attempts.Add(1))
				switch {
				case tt.failures == -2:
					panic("boom")
				case tt.failures == -1 || n <= tt.failures:
					if tt.permanent {
						return kafka.Permanent(fmt.Errorf("decode: %w", errBoom))
					}
					return errBoom
				}
				return nil
			}, metrics)

			// The group moves on to the next message in the partition.
			select {
			case <-nextSeen:
			case <-ctx.Done():
				t.Fatal("next message not handled: the group did not move on")
			}
			if got := int(attempts.Load()); got != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", got, tt.wantAttempts)
			}
			if got := metricSum(t, reg, "comfort_kafka_handler_retries_total"); got != float64(tt.wantAttempts-1) {
				t.Errorf("retries metric = %v, want %d", got, tt.wantAttempts-1)
			}
			if !tt.wantDLQ {
				return
			}
			dl := kafkatest.ReadTopic(t, c.ListenAddrs(), topic+".dlq", 1, testTimeout)[0]
			if string(dl.Key) != "dev-9" || string(dl.Value) != `{"x":1}` || dl.Header("ce_id") != "id-1" {
				t.Errorf("dead letter changed the message: key %q value %q ce_id %q", dl.Key, dl.Value, dl.Header("ce_id"))
			}
			for h, want := range map[string]string{
				"dlq_topic": topic, "dlq_partition": "0", "dlq_offset": "0",
				"dlq_attempts": strconv.Itoa(tt.wantAttempts),
			} {
				if v := dl.Header(h); v != want {
					t.Errorf("header %s = %q, want %q", h, v, want)
				}
			}
			if !strings.Contains(dl.Header("dlq_reason"), tt.wantReason) {
				t.Errorf("dlq_reason = %q, want it to mention %q", dl.Header("dlq_reason"), tt.wantReason)
			}
			if _, err := time.Parse(time.RFC3339Nano, dl.Header("dlq_time")); err != nil {
				t.Errorf("dlq_time: %v", err)
			}
			if got := metricSum(t, reg, "comfort_kafka_dead_letter_messages_total"); got != 1 {
				t.Errorf("dead letter metric = %v, want 1", got)
			}
		})
	}
}

func TestRestartResumesWithoutLoss(t *testing.T) {
	t.Parallel()
	const (
		topic = "device.telemetry"
		total = 600
	)
	c := kafkatest.NewCluster(t, kfake.SeedTopics(3, topic))
	cfg := kafkatest.Config(c.ListenAddrs())
	p := newProducer(t, cfg, nil)
	publishN(t, p, topic, total)

	var mu sync.Mutex
	seen := map[string]int{}
	handled := make(chan struct{}, total*2)
	handler := func(_ context.Context, m *kafka.Message) error {
		time.Sleep(time.Millisecond) // keep the first runner mid-stream when stopped
		mu.Lock()
		seen[string(m.Value)]++
		mu.Unlock()
		handled <- struct{}{}
		return nil
	}
	rc := kafka.RunnerConfig{Group: "telemetry-writer", Topics: []string{topic}}

	stop := startRunner(t, cfg, rc, handler, nil)
	for range total / 4 {
		select {
		case <-handled:
		case <-time.After(testTimeout):
			t.Fatal("first runner stalled")
		}
	}
	stop()
	mu.Lock()
	first := len(seen)
	mu.Unlock()
	if first >= total {
		t.Fatalf("first runner handled everything (%d); the test needs it stopped mid-stream", first)
	}

	startRunner(t, cfg, rc, handler, nil)
	deadline := time.After(testTimeout)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == total {
			break
		}
		select {
		case <-handled:
		case <-deadline:
			t.Fatalf("only %d of %d messages handled after restart", n, total)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("first runner handled %d unique, %d redelivered after restart", first, dups)
}

func TestDecodeEventErrors(t *testing.T) {
	t.Parallel()
	good, err := kafka.EncodeEvent(context.Background(), "audit", kafka.Event{
		ID: "e1", Source: "/x", Key: "a1", Data: &apipb.Method{Name: "n"},
		Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mutate  func(m *kafka.Message)
		wantErr string // "" = success
	}{
		{name: "valid", mutate: func(*kafka.Message) {}},
		{name: "content type with charset", mutate: func(m *kafka.Message) { m.SetHeader("content-type", "application/json; charset=utf-8") }},
		{name: "unknown field ignored", mutate: func(m *kafka.Message) { m.Value = []byte(`{"name":"n","future_field":1}`) }},
		{name: "wrong specversion", mutate: func(m *kafka.Message) { m.SetHeader("ce_specversion", "0.3") }, wantErr: "ce_specversion"},
		{name: "missing id", mutate: func(m *kafka.Message) { m.SetHeader("ce_id", "") }, wantErr: "missing ce_id"},
		{name: "missing type", mutate: func(m *kafka.Message) { m.SetHeader("ce_type", "") }, wantErr: "missing ce_type"},
		{name: "not json", mutate: func(m *kafka.Message) { m.SetHeader("content-type", "application/protobuf") }, wantErr: "content-type"},
		{name: "bad time", mutate: func(m *kafka.Message) { m.SetHeader("ce_time", "yesterday") }, wantErr: "ce_time"},
		{name: "bad value", mutate: func(m *kafka.Message) { m.Value = []byte(`{"name":`) }, wantErr: "google.protobuf.Method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := good
			m.Headers = append([]kafka.Header(nil), good.Headers...)
			tt.mutate(&m)
			var data apipb.Method
			ev, err := kafka.DecodeEvent(&m, &data)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("DecodeEvent: %v", err)
				}
				if ev.ID != "e1" || ev.Key != "a1" || data.GetName() != "n" || !ev.Time.Equal(time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)) {
					t.Errorf("decoded %+v %v", ev, &data)
				}
				return
			}
			if !errors.Is(err, kafka.ErrInvalidEvent) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want ErrInvalidEvent mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     kafka.Config
		wantErr bool
	}{
		{name: "minimal", cfg: kafka.Config{Brokers: []string{"k:9092"}}},
		{name: "no brokers", cfg: kafka.Config{}, wantErr: true},
		{name: "empty broker", cfg: kafka.Config{Brokers: []string{""}}, wantErr: true},
		{name: "bad version", cfg: kafka.Config{Brokers: []string{"k:9092"}, Version: "three"}, wantErr: true},
		{name: "negative linger", cfg: kafka.Config{Brokers: []string{"k:9092"}, Linger: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc, err := kafka.NewSaramaConfig(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (!sc.Producer.Idempotent || sc.Net.MaxOpenRequests != 1 || sc.Producer.Flush.Frequency == 0) {
				t.Errorf("producer not idempotent with linger: %+v", sc.Producer)
			}
		})
	}
}

func TestPublishWhileBrokerDownFailsThenRecovers(t *testing.T) {
	t.Parallel()
	port := kafkatest.FreePort(t)
	cfg := kafkatest.Config([]string{kafkatest.Addr(port)})
	cfg.MetadataRetries = 1
	p := newProducer(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	m := kafka.Message{Topic: "audit", Value: []byte("x")}
	if err := p.Publish(ctx, m); err == nil {
		t.Fatal("Publish with no broker succeeded")
	}
	c := kafkatest.NewCluster(t, kfake.Ports(port))
	if err := p.Publish(ctx, m); err != nil {
		t.Fatalf("Publish after the broker came up: %v", err)
	}
	got := kafkatest.ReadTopic(t, c.ListenAddrs(), "audit", 1, testTimeout)
	if string(got[0].Value) != "x" {
		t.Errorf("value = %q", got[0].Value)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, m); !errors.Is(err, kafka.ErrProducerClosed) {
		t.Errorf("Publish after Close = %v, want ErrProducerClosed", err)
	}
}

// failingPublisher refuses every dead letter.
type failingPublisher struct{ calls atomic.Int32 }

func (p *failingPublisher) Publish(context.Context, kafka.Message) error {
	p.calls.Add(1)
	return errors.New("dlq unavailable")
}

// TestDeadLetterFailureDoesNotLoseMessage: while the dead letter cannot be
// written the partition does not move on, and a restarted runner gets the
// message again.
func TestDeadLetterFailureDoesNotLoseMessage(t *testing.T) {
	t.Parallel()
	const topic = "audit"
	c := kafkatest.NewCluster(t, kfake.SeedTopics(1, topic))
	cfg := kafkatest.Config(c.ListenAddrs())
	p := newProducer(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.PublishBatch(ctx, []kafka.Message{{Topic: topic, Value: []byte("poison")}, {Topic: topic, Value: []byte("next")}}); err != nil {
		t.Fatal(err)
	}
	var nextHandled atomic.Bool
	handler := func(_ context.Context, m *kafka.Message) error {
		if string(m.Value) == "next" {
			nextHandled.Store(true)
			return nil
		}
		return kafka.Permanent(errors.New("cannot decode"))
	}
	rc := kafka.RunnerConfig{Group: "g", Topics: []string{topic}, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}

	broken := &failingPublisher{}
	rc.DeadLetter = broken
	stop := startRunner(t, cfg, rc, handler, nil)
	for broken.calls.Load() < 3 {
		if ctx.Err() != nil {
			t.Fatal("dead letter never attempted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if nextHandled.Load() {
		t.Fatal("the partition moved past a message whose dead letter was not written")
	}

	rc.DeadLetter = nil // the runner's own producer, which works
	startRunner(t, cfg, rc, handler, nil)
	dl := kafkatest.ReadTopic(t, c.ListenAddrs(), topic+".dlq", 1, testTimeout)[0]
	if string(dl.Value) != "poison" || dl.Header("dlq_reason") != "cannot decode" {
		t.Errorf("dead letter %q reason %q", dl.Value, dl.Header("dlq_reason"))
	}
	for !nextHandled.Load() {
		if ctx.Err() != nil {
			t.Fatal("next message not handled after the dead letter was written")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRebalanceWithoutLoss runs a second member into the group and then
// takes the first one out while messages keep arriving: both members get
// partitions and every message is handled at least once.
func TestRebalanceWithoutLoss(t *testing.T) {
	t.Parallel()
	const topic = "device.telemetry"
	c := kafkatest.NewCluster(t, kfake.SeedTopics(4, topic))
	cfg := kafkatest.Config(c.ListenAddrs())
	cfg.Tune = func(sc *sarama.Config) {
		// Members learn of a rebalance through heartbeats; the 3s default
		// would make the test slow.
		sc.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	}
	p := newProducer(t, cfg, nil)

	var (
		mu   sync.Mutex
		seen = map[string]int{}
		byB  int
	)
	counts := func() (unique, fromB int) {
		mu.Lock()
		defer mu.Unlock()
		return len(seen), byB
	}
	handler := func(member string) kafka.Handler {
		return func(_ context.Context, m *kafka.Message) error {
			mu.Lock()
			seen[string(m.Value)]++
			if member == "B" {
				byB++
			}
			mu.Unlock()
			return nil
		}
	}
	waitFor := func(what string, cond func(unique, fromB int) bool) {
		t.Helper()
		deadline := time.Now().Add(testTimeout)
		for !cond(counts()) {
			if time.Now().After(deadline) {
				u, b := counts()
				t.Fatalf("waiting for %s: handled %d unique, %d by B", what, u, b)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// A steady stream of messages until stopProducing is closed.
	stopProducing := make(chan struct{})
	produced := make(chan int)
	go func() {
		n := 0
		ctx := context.Background()
		for {
			select {
			case <-stopProducing:
				produced <- n
				return
			case <-time.After(10 * time.Millisecond):
			}
			batch := make([]kafka.Message, 10)
			for i := range batch {
				batch[i] = kafka.Message{Topic: topic, Key: []byte("k" + strconv.Itoa(n%13)), Value: []byte(strconv.Itoa(n))}
				n++
			}
			if err := p.PublishBatch(ctx, batch); err != nil {
				t.Errorf("PublishBatch: %v", err)
			}
		}
	}()

	rc := kafka.RunnerConfig{Group: "rebalance", Topics: []string{topic}}
	stopA := startRunner(t, cfg, rc, handler("A"), nil)
	waitFor("A to consume", func(u, _ int) bool { return u >= 50 })
	startRunner(t, cfg, rc, handler("B"), nil)
	waitFor("B to share the partitions", func(_, b int) bool { return b >= 50 })
	stopA()
	_, before := counts()
	waitFor("B to take over", func(_, b int) bool { return b >= before+100 })
	close(stopProducing)
	total := <-produced
	waitFor("every message", func(u, _ int) bool { return u == total })
	_, b := counts()
	t.Logf("%d messages, %d handled by B", total, b)
}

func TestBatchHandlerWithFallback(t *testing.T) {
	t.Parallel()
	const topic, n = "batched", 200
	c := kafkatest.NewCluster(t, kfake.SeedTopics(1, topic))
	cfg := kafkatest.Config(c.ListenAddrs())
	p := newProducer(t, cfg, nil)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Topic: topic, Value: []byte(strconv.Itoa(i))}
	}
	msgs[n/2].Value = []byte("poison")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.PublishBatch(ctx, msgs); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	seen := map[string]int{}
	largest := 0
	done := make(chan struct{})
	record := func(vs ...string) {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range vs {
			seen[v]++
		}
		if len(seen) == n-1 {
			select {
			case <-done:
			default:
				close(done)
			}
		}
	}
	startRunner(t, cfg, kafka.RunnerConfig{Group: "g", Topics: []string{topic}, MaxAttempts: 2, InitialBackoff: time.Millisecond,
		MaxBatch: 64, Batch: func(_ context.Context, ms []*kafka.Message) error {
			vs := make([]string, len(ms))
			for i, m := range ms {
				if string(m.Value) == "poison" {
					return errors.New("poison in batch")
				}
				vs[i] = string(m.Value)
			}
			mu.Lock()
			largest = max(largest, len(ms))
			mu.Unlock()
			record(vs...)
			return nil
		}}, func(_ context.Context, m *kafka.Message) error {
		if string(m.Value) == "poison" {
			return kafka.Permanent(errors.New("poison"))
		}
		record(string(m.Value))
		return nil
	}, nil)

	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("handled %d of %d messages", len(seen), n-1)
	}
	dl := kafkatest.ReadTopic(t, c.ListenAddrs(), topic+".dlq", 1, testTimeout)[0]
	if string(dl.Value) != "poison" {
		t.Errorf("dead letter = %q, want the poison message", dl.Value)
	}
	mu.Lock()
	defer mu.Unlock()
	if largest < 2 || largest > 64 {
		t.Errorf("largest batch = %d, want 2..64", largest)
	}
	for v, k := range seen {
		if k != 1 {
			t.Errorf("message %s handled %d times, want once", v, k)
		}
	}
}

// TestSendPipelines: batches sent one after the other without waiting are
// all acknowledged, and a key's messages keep their order across them.
func TestSendPipelines(t *testing.T) {
	t.Parallel()
	const topic = "pipelined"
	c := kafkatest.NewCluster(t, kfake.SeedTopics(1, topic))
	p := newProducer(t, kafkatest.Config(c.ListenAddrs()), nil)
	ctx := context.Background()
	var pending []*kafka.Pending
	for b := range 5 {
		msgs := make([]kafka.Message, 20)
		for i := range msgs {
			msgs[i] = kafka.Message{Topic: topic, Key: []byte("device-1"), Value: []byte(strconv.Itoa(b*20 + i))}
		}
		pd, err := p.Send(ctx, msgs)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, pd)
	}
	for _, pd := range pending {
		if err := pd.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range kafkatest.ReadTopic(t, c.ListenAddrs(), topic, 100, 10*time.Second) {
		if string(m.Value) != strconv.Itoa(i) {
			t.Fatalf("message %d is %s: out of order", i, m.Value)
		}
	}
	if pd, err := p.Send(ctx, nil); err != nil || pd.Wait(ctx) != nil {
		t.Errorf("empty send: %v", err)
	}
}
