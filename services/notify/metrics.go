package notify

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/comfortech/platform/services/notify/internal/app"
)

// deliveryMetrics counts and times the dispatcher's delivery attempts. A
// failed attempt is a dead delivery: it is recorded as a dead letter.
type deliveryMetrics struct {
	attempts *prometheus.CounterVec
	duration *prometheus.HistogramVec
	dead     *prometheus.CounterVec
}

// newDeliveryMetrics registers the collectors on reg with a zero series
// for every channel (and outcome), so rates and increases start from the
// first scrape.
func newDeliveryMetrics(reg prometheus.Registerer) (*deliveryMetrics, error) {
	m := &deliveryMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "comfort_notify_delivery_attempts_total",
			Help: "Delivery attempts, by channel and outcome (sent, retrying, failed)."}, []string{"channel", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "comfort_notify_delivery_duration_seconds",
			Help:    "Time a provider took to answer one delivery attempt, by channel.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}}, []string{"channel"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "comfort_notify_dead_letters_total",
			Help: "Deliveries that failed for good and became dead letters, by channel."}, []string{"channel"}),
	}
	for _, c := range []prometheus.Collector{m.attempts, m.duration, m.dead} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, ch := range app.Channels {
		for _, st := range []app.Status{app.StatusSent, app.StatusRetrying, app.StatusFailed} {
			m.attempts.WithLabelValues(string(ch), string(st))
		}
		m.duration.WithLabelValues(string(ch))
		m.dead.WithLabelValues(string(ch))
	}
	return m, nil
}

// observe records one attempt.
func (m *deliveryMetrics) observe(a *app.Attempt) {
	ch := string(a.Channel)
	m.attempts.WithLabelValues(ch, string(a.Status)).Inc()
	m.duration.WithLabelValues(ch).Observe(a.Latency.Seconds())
	if a.Status == app.StatusFailed {
		m.dead.WithLabelValues(ch).Inc()
	}
}
