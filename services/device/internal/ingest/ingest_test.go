package ingest_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/device/internal/ingest"
)

const (
	dev   = "0190c1a2-0000-7000-8000-000000000001"
	topic = "devices/" + dev + "/telemetry"
)

// acks records which messages were acknowledged to the broker, in order.
type acks struct {
	mu   sync.Mutex
	seqs []int
}

func (a *acks) ack(seq int) func() {
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.seqs = append(a.seqs, seq)
	}
}

func (a *acks) get() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seqs)
}

func sample(seq int) []byte {
	return fmt.Appendf(nil, `{"ts":%d,"seq":%d,"metrics":{"temperature":21.5}}`, time.Now().UnixMilli(), seq)
}

// start runs an ingester publishing to brokers until the test ends.
func start(t *testing.T, brokers []string, cfg ingest.Config) *ingest.Ingester {
	t.Helper()
	p, err := kafka.NewProducer(kafkatest.Config(brokers), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = in.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; _ = p.Close() })
	return in
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// samples returns the seqs of the TelemetryReported events on the topic.
func samples(t *testing.T, msgs []kafka.Message) []int {
	t.Helper()
	var seqs []int
	for _, m := range msgs {
		var e eventsv1.TelemetryReported
		if _, err := kafka.DecodeEvent(&m, &e); err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != dev || e.GetDeviceId() != dev {
			t.Errorf("event of %q keyed %q", e.GetDeviceId(), m.Key)
		}
		for _, s := range e.GetSamples() {
			seqs = append(seqs, int(s.GetSeq()))
		}
	}
	return seqs
}

// TestHandOver: valid messages become one event per device, an invalid one
// a dead letter with its reason, and each is acknowledged once in Kafka,
// in the order they came.
func TestHandOver(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.NewCluster(t).ListenAddrs()
	in := start(t, brokers, ingest.Config{BatchWait: 50 * time.Millisecond})
	var a acks
	ctx, now := context.Background(), time.Now()
	for seq, body := range [][]byte{sample(1), []byte(`{"ts":1,"seq":2}`), sample(3)} {
		if !in.Handle(ctx, dev, topic, body, now, a.ack(seq+1)) {
			t.Fatalf("message %d not taken", seq+1)
		}
	}
	eventually(t, "three acknowledgements", func() bool { return len(a.get()) == 3 })
	if got := a.get(); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("acknowledged %v, want 1, 2, 3 in order", got)
	}
	if got := samples(t, kafkatest.ReadTopic(t, brokers, ingest.Topic, 1, 10*time.Second)); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("samples %v, want 1 and 3", got)
	}
	dl := kafkatest.ReadTopic(t, brokers, ingest.DLQTopic, 1, 10*time.Second)[0]
	if dl.Header(kafka.HeaderDLQReason) != ingest.ReasonInvalidTS || dl.Header(ingest.HeaderDeviceID) != dev ||
		dl.Header(ingest.HeaderDLQTopic) != topic || string(dl.Value) != `{"ts":1,"seq":2}` {
		t.Errorf("dead letter: headers %v, value %s", dl.Headers, dl.Value)
	}
}

// TestKafkaAway: while Kafka is unreachable nothing is acknowledged; once
// the pipeline and the buffer are full, messages are left to the broker
// (Handle says so, the deferred counter counts them) without each waiting
// again; when Kafka comes, everything taken is published and acknowledged
// in order.
func TestKafkaAway(t *testing.T) {
	t.Parallel()
	port := kafkatest.FreePort(t)
	reg := prometheus.NewRegistry()
	in := start(t, []string{kafkatest.Addr(port)}, ingest.Config{BatchSize: 1, Buffer: 2, EnqueueWait: 100 * time.Millisecond, Metrics: reg})
	var a acks
	ctx := context.Background()

	// Batches in flight, then the buffer, take the first messages.
	taken := 0
	for seq := 1; ; seq++ {
		t0 := time.Now()
		if !in.Handle(ctx, dev, topic, sample(seq), time.Now(), a.ack(seq)) {
			if waited := time.Since(t0); waited < 100*time.Millisecond {
				t.Errorf("message %d refused after %v, want the enqueue wait", seq, waited)
			}
			break
		}
		if taken = seq; seq > 20 {
			t.Fatal("20 messages taken with Kafka away: the pipeline is not bounded")
		}
	}
	t0 := time.Now()
	if in.Handle(ctx, dev, topic, sample(taken+2), time.Now(), a.ack(taken+2)) {
		t.Fatal("a message taken into a full buffer")
	}
	if waited := time.Since(t0); waited > 50*time.Millisecond {
		t.Errorf("the next message waited %v behind a buffer just found full", waited)
	}
	if n := metric(t, reg, "comfort_device_telemetry_deferred_total").GetCounter().GetValue(); n != 2 {
		t.Errorf("deferred %v, want 2", n)
	}
	if got := a.get(); len(got) != 0 {
		t.Fatalf("acknowledged %v while Kafka is away", got)
	}

	brokers := kafkatest.NewCluster(t, kfake.Ports(port)).ListenAddrs()
	eventually(t, "the messages taken acknowledged", func() bool { return len(a.get()) == taken })
	want := make([]int, taken)
	for i := range want {
		want[i] = i + 1
	}
	if got := a.get(); !slices.Equal(got, want) {
		t.Errorf("acknowledged %v, want %v", got, want)
	}
	got := map[int]bool{}
	eventually(t, "the samples taken in Kafka", func() bool {
		n := int(kafkatest.EndOffset(t, brokers, ingest.Topic))
		clear(got)
		for _, seq := range samples(t, kafkatest.ReadTopic(t, brokers, ingest.Topic, n, 10*time.Second)) {
			got[seq] = true
		}
		return len(got) == taken
	})
}

// metric returns the metric registered under name (without labels).
func metric(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}
