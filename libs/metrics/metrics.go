// Package metrics owns a process's Prometheus registry and the standard
// instruments every part exposes: Go runtime and process collectors, HTTP
// request metrics and gRPC server and client metrics.
//
// Each process builds one Registry in Run and hands it to the packages that
// register their own metrics; nothing registers on the global default
// registry, so tests and the all-in-one process can hold several.
package metrics

import (
	"net/http"
	"sync"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes the project's own metric names.
const Namespace = "comfort"

// Registry is a Prometheus registry with the instruments shared by every part.
type Registry struct {
	*prometheus.Registry

	grpcServerOnce sync.Once
	grpcServer     *grpcprom.ServerMetrics
	grpcClientOnce sync.Once
	grpcClient     *grpcprom.ClientMetrics
	httpOnce       sync.Once
	http           *httpMetrics
}

// New returns a registry holding the Go runtime and process collectors.
func New() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{Registry: reg}
}

// Handler serves the registry in the Prometheus exposition format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.Registry, promhttp.HandlerOpts{Registry: r.Registry})
}

// latencyBuckets suit calls that take from a fraction of a millisecond to a
// few seconds.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// GRPCServer returns the gRPC server metrics (grpc_server_*), registered on
// first use.
func (r *Registry) GRPCServer() *grpcprom.ServerMetrics {
	r.grpcServerOnce.Do(func() {
		r.grpcServer = grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(latencyBuckets)))
		r.MustRegister(r.grpcServer)
	})
	return r.grpcServer
}

// GRPCClient returns the gRPC client metrics (grpc_client_*), registered on
// first use.
func (r *Registry) GRPCClient() *grpcprom.ClientMetrics {
	r.grpcClientOnce.Do(func() {
		r.grpcClient = grpcprom.NewClientMetrics(grpcprom.WithClientHandlingTimeHistogram(grpcprom.WithHistogramBuckets(latencyBuckets)))
		r.MustRegister(r.grpcClient)
	})
	return r.grpcClient
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
}

func (r *Registry) httpInstruments() *httpMetrics {
	r.httpOnce.Do(func() {
		r.http = &httpMetrics{
			requests: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "http", Name: "requests_total",
				Help: "HTTP requests answered, by server, method and status code.",
			}, []string{"server", "method", "code"}),
			duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
				Help:    "Time to answer HTTP requests, by server and method.",
				Buckets: latencyBuckets,
			}, []string{"server", "method"}),
			inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Namespace: Namespace, Subsystem: "http", Name: "requests_in_flight",
				Help: "HTTP requests being answered, by server.",
			}, []string{"server"}),
		}
		r.MustRegister(r.http.requests, r.http.duration, r.http.inFlight)
	})
	return r.http
}

// HTTPMiddleware counts and times the requests of the HTTP server named
// server. Paths are not a label: they carry ids and would explode the
// number of series.
func (r *Registry) HTTPMiddleware(server string) func(http.Handler) http.Handler {
	m := r.httpInstruments()
	labels := prometheus.Labels{"server": server}
	requests := m.requests.MustCurryWith(labels)
	duration := m.duration.MustCurryWith(labels)
	inFlight := m.inFlight.With(labels)
	return func(next http.Handler) http.Handler {
		return promhttp.InstrumentHandlerInFlight(inFlight,
			promhttp.InstrumentHandlerDuration(duration,
				promhttp.InstrumentHandlerCounter(requests, next)))
	}
}
