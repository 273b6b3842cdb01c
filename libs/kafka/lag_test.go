package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
)

// TestConsumerLagGauge checks that the lag gauge follows the group's
// committed offsets: it shows the whole backlog while the handler is stuck
// and falls to zero once the messages are handled and committed.
func TestConsumerLagGauge(t *testing.T) {
	t.Parallel()
	const topic, group = "device.telemetry", "lag-test"
	c := kafkatest.NewCluster(t, kfake.SeedTopics(3, topic))
	cfg := kafkatest.Config(c.ListenAddrs())
	reg := prometheus.NewRegistry()
	metrics, err := kafka.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	publishN(t, newProducer(t, cfg, metrics), topic, n)

	release := make(chan struct{})
	stop := startRunner(t, cfg, kafka.RunnerConfig{Group: group, Topics: []string{topic}, LagInterval: 50 * time.Millisecond},
		func(ctx context.Context, _ *kafka.Message) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, metrics)

	lag := func() float64 {
		return metricSum(t, reg, "comfort_kafka_consumer_lag_messages", "group", group, "topic", topic)
	}
	waitFor(t, "lag of the whole backlog", func() bool { return lag() == n })
	// It stays there while nothing is handled.
	time.Sleep(300 * time.Millisecond)
	if got := lag(); got != n {
		t.Fatalf("lag with a stuck handler = %v, want %d", got, n)
	}

	close(release)
	waitFor(t, "lag back to zero", func() bool { return lag() == 0 })

	// More messages while the group runs are consumed, the lag returns to 0.
	publishN(t, newProducer(t, cfg, metrics), topic, 10)
	waitFor(t, "lag back to zero after more messages", func() bool {
		return metricSum(t, reg, "comfort_kafka_handled_messages_total", "topic", topic) == n+10 && lag() == 0
	})

	stop()
	if got := len(gatherFamily(t, reg, "comfort_kafka_consumer_lag_messages")); got != 0 {
		t.Errorf("%d lag series left after the runner stopped, want none", got)
	}
}

// waitFor polls cond until it holds or testTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gatherFamily returns the series of the named metric family.
func gatherFamily(t *testing.T, reg prometheus.Gatherer, name string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				out = append(out, m.String())
			}
		}
	}
	return out
}
