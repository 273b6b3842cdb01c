package kafka

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome label values of comfort_kafka_handled_messages_total.
const (
	outcomeOK         = "ok"
	outcomeDeadLetter = "dead_letter"
)

// Reason label values of comfort_kafka_dead_letter_messages_total.
const (
	reasonPermanent = "permanent"
	reasonExhausted = "retries_exhausted"
)

// Metrics holds the Prometheus collectors shared by producers and runners.
// Create it once per registry with NewMetrics and pass it to NewProducer
// and NewRunner.
type Metrics struct {
	consumed        *prometheus.CounterVec
	handled         *prometheus.CounterVec
	retries         *prometheus.CounterVec
	deadLettered    *prometheus.CounterVec
	handlerDuration *prometheus.HistogramVec
	produced        *prometheus.CounterVec
	produceErrors   *prometheus.CounterVec
	lag             *prometheus.GaugeVec
}

// NewMetrics creates the Kafka collectors and registers them on reg. When
// reg is nil they are created but not registered. Registering twice on the
// same registry reuses the collectors already there, so several producers
// and runners in one process can each call NewMetrics.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "comfort_kafka_consumed_messages_total",
			Help: "Messages received by consumer-group runners.",
		}, []string{"topic"}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "comfort_kafka_handled_messages_total",
			Help: "Messages finished by consumer-group runners, by outcome (ok, dead_letter).",
		}, []string{"topic", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "comfort_kafka_handler_retries_total",
			Help: "Handler attempts retried after an error.",
		}, []string{"topic"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "comfort_kafka_dead_letter_messages_total",
			Help: "Messages written to a dead-letter topic, by reason (permanent, retries_exhausted).",
		}, []string{"topic", "reason"}),
		handlerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "comfort_kafka_handler_duration_seconds",
			Help:    "Duration of one handler attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"topic"}),
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "comfort_kafka_produced_messages_total",
			Help: "Messages acknowledged by the brokers.",
		}, []string{"topic"}),
		produceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "comfort_kafka_produce_errors_total",
			Help: "Messages the producer failed to deliver.",
		}, []string{"topic"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "comfort_kafka_consumer_lag_messages",
			Help: "Messages of a topic not yet committed by a consumer group: the partitions' high watermarks minus the group's committed offsets.",
		}, []string{"group", "topic"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.consumed, err = register(reg, m.consumed)
	if err == nil {
		m.handled, err = register(reg, m.handled)
	}
	if err == nil {
		m.retries, err = register(reg, m.retries)
	}
	if err == nil {
		m.deadLettered, err = register(reg, m.deadLettered)
	}
	if err == nil {
		m.handlerDuration, err = register(reg, m.handlerDuration)
	}
	if err == nil {
		m.produced, err = register(reg, m.produced)
	}
	if err == nil {
		m.produceErrors, err = register(reg, m.produceErrors)
	}
	if err == nil {
		m.lag, err = register(reg, m.lag)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c on reg, or returns the identical collector that is
// already registered there.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("kafka: register metrics: %w", err)
	}
	return c, nil
}

// orNoop returns m, or unregistered collectors when m is nil, so callers
// never check for nil.
func (m *Metrics) orNoop() *Metrics {
	if m != nil {
		return m
	}
	noop, _ := NewMetrics(nil)
	return noop
}
