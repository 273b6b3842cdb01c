package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
)

// TestPinger checks the readiness of a cluster that is down, then up, then
// down again.
func TestPinger(t *testing.T) {
	t.Parallel()
	port := kafkatest.FreePort(t)
	p, err := kafka.NewPinger(kafkatest.Config([]string{kafkatest.Addr(port)}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	check := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return p.Check(ctx)
	}

	if err := check(); err == nil {
		t.Fatal("a cluster that is down reported ready")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	if err != nil {
		t.Fatal(err)
	}
	if err := check(); err != nil {
		c.Close()
		t.Fatalf("a running cluster reported %v", err)
	}
	c.Close()
	if err := check(); err == nil {
		t.Fatal("a cluster that went away reported ready")
	}
}
