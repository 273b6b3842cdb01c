package kafka_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
)

// benchValue is a typical small event body.
var benchValue = []byte(`{"device_id":"dev-000001","ts":"2025-01-01T00:00:00Z","metrics":{"temperature":21.5,"humidity":40}}`)

// BenchmarkProduce measures acknowledged messages per second into kfake:
// concurrent Publish callers sharing the batching async producer (each
// call waits about one linger plus a round trip, so the rate grows with
// the number of callers), PublishBatch, and for comparison sarama's
// SyncProducer with the same idempotent config and 64 callers.
func BenchmarkProduce(b *testing.B) {
	const topic = "device.telemetry"
	for _, callers := range []int{1, 64, 256} {
		b.Run("Publish/callers="+strconv.Itoa(callers), func(b *testing.B) {
			p := benchProducer(b, topic)
			benchParallel(b, callers, func(ctx context.Context, key []byte) error {
				return p.Publish(ctx, kafka.Message{Topic: topic, Key: key, Value: benchValue})
			})
		})
	}
	for _, size := range []int{100, 1000} {
		b.Run("PublishBatch/size="+strconv.Itoa(size), func(b *testing.B) {
			p := benchProducer(b, topic)
			ctx := context.Background()
			start := time.Now()
			b.ResetTimer()
			for sent := 0; sent < b.N; {
				n := min(size, b.N-sent)
				msgs := make([]kafka.Message, n)
				for j := range msgs {
					msgs[j] = kafka.Message{Topic: topic, Key: []byte("dev-" + strconv.Itoa((sent+j)%1000)), Value: benchValue}
				}
				if err := p.PublishBatch(ctx, msgs); err != nil {
					b.Fatal(err)
				}
				sent += n
			}
			reportRate(b, b.N, time.Since(start))
		})
	}
	b.Run("sarama-SyncProducer/callers=64", func(b *testing.B) {
		c := kafkatest.NewCluster(b, kfake.SeedTopics(3, topic))
		sc, err := kafka.NewSaramaConfig(kafkatest.Config(c.ListenAddrs()))
		if err != nil {
			b.Fatal(err)
		}
		sp, err := sarama.NewSyncProducer(c.ListenAddrs(), sc)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = sp.Close() }()
		benchParallel(b, 64, func(_ context.Context, key []byte) error {
			_, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(key), Value: sarama.ByteEncoder(benchValue)})
			return err
		})
	})
}

// benchProducer returns a connected producer on a fresh cluster.
func benchProducer(b *testing.B, topic string) *kafka.Producer {
	b.Helper()
	c := kafkatest.NewCluster(b, kfake.SeedTopics(3, topic))
	p, err := kafka.NewProducer(kafkatest.Config(c.ListenAddrs()), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	if err := p.Publish(context.Background(), kafka.Message{Topic: topic, Value: []byte("warm-up")}); err != nil {
		b.Fatal(err)
	}
	return p
}

// benchParallel runs b.N calls of send from callers goroutines.
func benchParallel(b *testing.B, callers int, send func(ctx context.Context, key []byte) error) {
	b.Helper()
	var i atomic.Int64
	// RunParallel starts parallelism*GOMAXPROCS goroutines.
	b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := send(ctx, []byte("dev-"+strconv.FormatInt(i.Add(1)%1000, 10))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b, b.N, time.Since(start))
}

// BenchmarkConsume measures the consumer-group runner end to end: messages
// produced in batches after the group joined, until the handler saw all.
func BenchmarkConsume(b *testing.B) {
	const topic = "device.telemetry"
	c := kafkatest.NewCluster(b, kfake.SeedTopics(3, topic))
	cfg := kafkatest.Config(c.ListenAddrs())
	p, err := kafka.NewProducer(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Close() }()

	var handled atomic.Int64
	joined := make(chan struct{}, 1)
	r, err := kafka.NewRunner(cfg, kafka.RunnerConfig{Group: "bench", Topics: []string{topic}}, func(_ context.Context, m *kafka.Message) error {
		if string(m.Value) == "warm-up" {
			select {
			case joined <- struct{}{}:
			default:
			}
			return nil
		}
		handled.Add(1)
		return nil
	}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	if err := p.Publish(ctx, kafka.Message{Topic: topic, Value: []byte("warm-up")}); err != nil {
		b.Fatal(err)
	}
	select {
	case <-joined:
	case <-time.After(testTimeout):
		b.Fatal("group did not join")
	}

	start := time.Now()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		n := min(500, b.N-sent)
		msgs := make([]kafka.Message, n)
		for j := range msgs {
			msgs[j] = kafka.Message{Topic: topic, Key: []byte("dev-" + strconv.Itoa((sent+j)%1000)), Value: benchValue}
		}
		if err := p.PublishBatch(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	deadline := time.Now().Add(time.Minute)
	for handled.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("handled %d of %d", handled.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	reportRate(b, b.N, time.Since(start))
}

func reportRate(b *testing.B, n int, elapsed time.Duration) {
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
}
