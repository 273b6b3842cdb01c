package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
)

// Pinger checks that the cluster answers metadata requests: the readiness
// check of every part that produces or consumes. It keeps one client
// between checks and replaces it after a failure.
type Pinger struct {
	brokers []string
	sc      *sarama.Config

	mu     sync.Mutex
	client sarama.Client
}

// NewPinger returns a Pinger for the cluster of cfg. It connects on the
// first check, so a part can start while Kafka is still down.
func NewPinger(cfg Config) (*Pinger, error) {
	sc, err := NewSaramaConfig(cfg)
	if err != nil {
		return nil, err
	}
	// One attempt per check: readiness wants the answer now, not after
	// sarama's retries.
	sc.Metadata.Retry.Max = 0
	return &Pinger{brokers: cfg.Brokers, sc: sc}, nil
}

// Check asks the cluster for its metadata. sarama calls take no context,
// so the call runs aside and Check returns when ctx ends, whichever is
// first.
func (p *Pinger) Check(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- p.ping() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("kafka: %w", ctx.Err())
	}
}

func (p *Pinger) ping() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil {
		c, err := sarama.NewClient(p.brokers, p.sc)
		if err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
		p.client = c
	}
	if err := p.client.RefreshMetadata(); err != nil {
		_ = p.client.Close()
		p.client = nil
		return fmt.Errorf("kafka: %w", err)
	}
	if len(p.client.Brokers()) == 0 {
		return errors.New("kafka: the cluster lists no brokers")
	}
	return nil
}

// Close releases the client.
func (p *Pinger) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil {
		return nil
	}
	err := p.client.Close()
	p.client = nil
	return err
}
