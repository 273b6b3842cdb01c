package kafka_test

import (
	"context"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
)

// TestSelectTopics: a runner with Select consumes only the topics it
// chooses, changes with the choice, and starts a partition at the first
// message written at or after its topic's time unless its committed
// offset is newer.
func TestSelectTopics(t *testing.T) {
	t.Parallel()
	c := kafkatest.NewCluster(t, kfake.SeedTopics(1, "a", "b"))
	cfg := kafkatest.Config(c.ListenAddrs())
	p := newProducer(t, cfg, nil)

	var (
		mu     sync.Mutex
		chosen = kafka.Selection{}
		seen   = map[string]bool{}
	)
	choose := func(s kafka.Selection) {
		mu.Lock()
		defer mu.Unlock()
		chosen = s
	}
	handled := func(v string) bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[v]
	}
	publish := func(topic, v string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := p.Publish(ctx, kafka.Message{Topic: topic, Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	// now is a time after every message published so far.
	now := func() time.Time {
		time.Sleep(5 * time.Millisecond) // timestamps are in ms
		defer time.Sleep(5 * time.Millisecond)
		return time.Now()
	}
	// consuming publishes probes to topic until the runner handles one.
	probes := 0
	consuming := func(topic string) {
		t.Helper()
		for deadline := time.Now().Add(testTimeout); ; {
			probes++
			probe := topic + "-probe-" + strconv.Itoa(probes)
			publish(topic, probe)
			for wait := time.Now().Add(200 * time.Millisecond); time.Now().Before(wait); time.Sleep(10 * time.Millisecond) {
				if handled(probe) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the runner does not consume %s", topic)
			}
		}
	}
	// notConsuming waits until the runner has had time to leave a topic.
	notConsuming := func() { time.Sleep(200 * time.Millisecond) }
	rc := kafka.RunnerConfig{Group: "selective", Topics: []string{"a", "b"}, SelectInterval: 20 * time.Millisecond,
		Select: func(context.Context) (kafka.Selection, error) {
			mu.Lock()
			defer mu.Unlock()
			return maps.Clone(chosen), nil
		}}
	startRunner(t, cfg, rc, func(_ context.Context, m *kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen[string(m.Value)] = true
		return nil
	}, nil)

	// Nothing chosen, nothing consumed; then a topic from a time on.
	publish("a", "a-before")
	aFrom := now()
	choose(kafka.Selection{"a": aFrom})
	consuming("a")
	publish("a", "a-1")
	publish("b", "b-before")
	choose(kafka.Selection{"a": aFrom, "b": now()})
	consuming("b")
	publish("b", "b-1")

	// Left, then chosen again from the same time: what was written
	// meanwhile is consumed, from the committed offset.
	choose(kafka.Selection{"b": time.Time{}})
	notConsuming()
	publish("a", "a-meanwhile")
	choose(kafka.Selection{"a": aFrom, "b": time.Time{}})
	consuming("a")

	// Left, then chosen again from a later time: what was written before
	// it is passed over.
	choose(kafka.Selection{"b": time.Time{}})
	notConsuming()
	publish("a", "a-passed-over")
	choose(kafka.Selection{"a": now(), "b": time.Time{}})
	consuming("a")

	for _, v := range []string{"a-1", "b-1", "a-meanwhile"} {
		if !handled(v) {
			t.Errorf("%s was not consumed", v)
		}
	}
	for _, v := range []string{"a-before", "b-before", "a-passed-over"} {
		if handled(v) {
			t.Errorf("%s was written before its topic's time, and was consumed", v)
		}
	}
}
