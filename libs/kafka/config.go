// Package kafka is the platform's Kafka client, built on sarama: an
// idempotent producer with batching, CloudEvents 1.0 binary-mode messages
// carrying W3C trace context, and an at-least-once consumer-group runner
// with bounded retry and a dead-letter topic (ARCHITECTURE §5).
//
// Producing and consuming both work with [Message]; [EncodeEvent] and
// [DecodeEvent] convert between messages and protobuf events.
package kafka

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/rcrowley/go-metrics"
	"go.opentelemetry.io/otel/trace"
)

// sarama keeps go-metrics meters and histograms of every request and
// broker, which this package exports nowhere (its own Prometheus
// collectors are in Metrics); updating them is a mutex and a sample heap
// per produce and fetch. Its documented switch, global to go-metrics, turns
// them off for the process.
func init() { metrics.UseNilMetrics = true }

// DefaultVersion is the Kafka protocol version assumed when Config.Version
// is empty. Every broker we run (Kafka 3.6+, the embedded kfake) speaks it.
const DefaultVersion = "3.6.0"

// Config holds what the producer and the consumer-group runner need to
// reach the brokers. Zero values of the optional fields select the defaults
// documented on each field.
type Config struct {
	// Brokers lists the bootstrap addresses (host:port). Required.
	Brokers []string
	// ClientID identifies this process to the brokers; default "comfortech".
	ClientID string
	// Version is the Kafka protocol version, e.g. "3.6.0"; default DefaultVersion.
	Version string

	// Linger is how long the producer waits to gather messages into one
	// produce request; default 5ms. sarama's own default sends one request
	// per message, which caps throughput at a few thousand messages/s.
	Linger time.Duration
	// ProduceRetries is how many times sarama resends a message after a
	// retriable error before reporting it failed; default 10.
	ProduceRetries int
	// RetryBackoff is the pause between those resends and between metadata
	// refresh attempts; default 100ms.
	RetryBackoff time.Duration
	// MetadataRetries bounds metadata (and so connection) attempts when a
	// client starts; default 3.
	MetadataRetries int
	// DialTimeout bounds each TCP connection attempt; default 10s.
	DialTimeout time.Duration
	// CommitInterval is how often the runner commits marked offsets;
	// default 1s. Offsets are also committed when a session ends.
	CommitInterval time.Duration

	// Tune, when set, adjusts the sarama configuration after the defaults
	// are applied: the hook for TLS, SASL or any knob not surfaced here.
	Tune func(*sarama.Config)

	// TracerProvider records a producer span for every message sent (its
	// context goes in the traceparent header) and a consumer span for every
	// message or batch handled, child of the producer's. Nil: no-op.
	TracerProvider trace.TracerProvider
}

// Validate reports whether the configuration can be used.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: no brokers configured")
	}
	for _, b := range c.Brokers {
		if b == "" {
			return errors.New("kafka: empty broker address")
		}
	}
	if c.Version != "" {
		if _, err := sarama.ParseKafkaVersion(c.Version); err != nil {
			return fmt.Errorf("kafka: version %q: %w", c.Version, err)
		}
	}
	if c.Linger < 0 || c.ProduceRetries < 0 || c.RetryBackoff < 0 || c.MetadataRetries < 0 ||
		c.DialTimeout < 0 || c.CommitInterval < 0 {
		return errors.New("kafka: negative duration or retry count")
	}
	return nil
}

// NewSaramaConfig returns the sarama configuration every client of this
// package uses: an idempotent producer (acks=all, one in-flight request per
// broker so retries cannot reorder) with a short linger, and a consumer that
// starts new groups at the oldest offset and auto-commits marked offsets.
func NewSaramaConfig(c Config) (*sarama.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	version, err := sarama.ParseKafkaVersion(cmp.Or(c.Version, DefaultVersion))
	if err != nil {
		return nil, fmt.Errorf("kafka: version: %w", err)
	}

	sc := sarama.NewConfig()
	sc.ClientID = cmp.Or(c.ClientID, "comfortech")
	sc.Version = version
	sc.Net.DialTimeout = cmp.Or(c.DialTimeout, 10*time.Second)
	sc.Metadata.Retry.Max = cmp.Or(c.MetadataRetries, 3)
	sc.Metadata.Retry.Backoff = cmp.Or(c.RetryBackoff, 100*time.Millisecond)

	// Idempotence needs acks=all, at least one retry and a single in-flight
	// request per connection; sarama rejects the config otherwise.
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Retry.Max = cmp.Or(c.ProduceRetries, 10)
	sc.Producer.Retry.Backoff = cmp.Or(c.RetryBackoff, 100*time.Millisecond)
	sc.Producer.Flush.Frequency = cmp.Or(c.Linger, 5*time.Millisecond)
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true

	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = cmp.Or(c.CommitInterval, time.Second)

	if c.Tune != nil {
		c.Tune(sc)
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: sarama config: %w", err)
	}
	return sc, nil
}
