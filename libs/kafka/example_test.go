package kafka_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/apipb"

	"github.com/comfortech/platform/libs/kafka"
)

// A service wires one Metrics, one Producer and a Runner per consumer
// group, all from the same Config.
func Example() {
	ctx := context.Background()
	log := zap.NewNop()
	cfg := kafka.Config{Brokers: []string{"127.0.0.1:19092"}, ClientID: "device"}
	metrics, err := kafka.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		panic(err)
	}
	producer, err := kafka.NewProducer(cfg, log, metrics)
	if err != nil {
		panic(err)
	}
	defer func() { _ = producer.Close() }()

	// Publish an event (connects on first use).
	msg, err := kafka.EncodeEvent(ctx, "device.lifecycle", kafka.Event{
		Source: "/services/device", Key: "dev-1", Data: &apipb.Method{Name: "claimed"},
	})
	if err != nil {
		panic(err)
	}
	_ = producer.Publish(ctx, msg)

	// Consume with retries and a dead-letter topic; Run blocks until ctx ends.
	runner, err := kafka.NewRunner(cfg, kafka.RunnerConfig{
		Group: "notify", Topics: []string{"device.lifecycle"}, DeadLetter: producer,
	}, func(ctx context.Context, m *kafka.Message) error {
		var data apipb.Method
		ev, err := kafka.DecodeEvent(m, &data)
		if errors.Is(err, kafka.ErrInvalidEvent) {
			return kafka.Permanent(err) // retrying cannot fix it: dead-letter now
		}
		fmt.Println(ev.Type, data.GetName())
		return nil
	}, log, metrics)
	if err != nil {
		panic(err)
	}
	_ = runner // go runner.Run(ctx)
}
