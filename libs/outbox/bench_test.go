package outbox_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	"github.com/comfortech/platform/libs/outbox"
)

// BenchmarkRelay measures how fast a backlog of outbox rows is relayed
// into kfake and deleted, per dialect and batch size.
func BenchmarkRelay(b *testing.B) {
	const topic = "device.lifecycle"
	for _, d := range dialects {
		for _, batch := range []int{100, 500} {
			b.Run(string(d)+"/batch="+strconv.Itoa(batch), func(b *testing.B) {
				db := openDB(b, d)
				c := kafkatest.NewCluster(b, kfake.SeedTopics(3, topic))
				p, err := kafka.NewProducer(kafkatest.Config(c.ListenAddrs()), nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = p.Close() })
				reg := prometheus.NewRegistry()
				relay, err := outbox.NewRelay(db, p, outbox.RelayConfig{Dialect: d, BatchSize: batch}, nil, reg)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				value := []byte(`{"device_id":"dev-000001","status":"online","at":"2025-01-01T00:00:00Z"}`)
				for sent := 0; sent < b.N; {
					n := min(1000, b.N-sent)
					msgs := make([]kafka.Message, n)
					for j := range msgs {
						msgs[j] = kafka.Message{Topic: topic, Key: []byte("dev-" + strconv.Itoa((sent+j)%1000)), Value: value}
					}
					enqueue(b, ctx, db, true, msgs...)
					sent += n
				}

				runCtx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				start := time.Now()
				b.ResetTimer()
				go func() { done <- relay.Run(runCtx) }()
				deadline := time.Now().Add(time.Minute)
				for metricValue(b, reg, "comfort_outbox_relayed_messages_total") < float64(b.N) {
					if time.Now().After(deadline) {
						b.Fatal("relay did not drain the backlog")
					}
					time.Sleep(time.Millisecond)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				cancel()
				<-done
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			})
		}
	}
}
