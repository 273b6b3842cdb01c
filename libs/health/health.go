// Package health reports whether a process is alive and whether it is ready
// to take traffic, over HTTP (/healthz, /readyz) and the standard
// grpc.health.v1 service.
//
// Readiness is a set of named dependency checks (database, Kafka, MQTT
// broker, identity provider). A process that is draining reports not ready
// before it stops accepting work, so load balancers move away first.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Check reports whether one dependency is reachable. It must honour ctx.
type Check func(ctx context.Context) error

// Checker holds the readiness checks of a process.
type Checker struct {
	timeout  time.Duration
	mu       sync.RWMutex
	checks   map[string]Check
	draining atomic.Bool
	ready    atomic.Bool // the outcome of Watch's last evaluation
	grpc     *health.Server
}

// New returns a Checker whose checks each get timeout to answer.
func New(timeout time.Duration) *Checker {
	c := &Checker{timeout: timeout, checks: make(map[string]Check), grpc: health.NewServer()}
	// Not serving until Watch has seen every check pass: grpc's health
	// server would otherwise answer SERVING before anything was checked.
	c.grpc.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	return c
}

// Add registers a named readiness check.
func (c *Checker) Add(name string, check Check) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks[name] = check
}

// Ready reports the outcome of Watch's last evaluation: false before the
// first one and from the start of a drain.
func (c *Checker) Ready() bool { return c.ready.Load() && !c.draining.Load() }

// Drain marks the process as shutting down: readiness fails from now on.
func (c *Checker) Drain() {
	c.draining.Store(true)
	c.grpc.Shutdown()
}

// Report is the outcome of a readiness evaluation.
type Report struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

// Evaluate runs every check concurrently and reports each one's outcome.
func (c *Checker) Evaluate(ctx context.Context) Report {
	c.mu.RLock()
	names := make([]string, 0, len(c.checks))
	for n := range c.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	checks := make([]Check, len(names))
	for i, n := range names {
		checks[i] = c.checks[n]
	}
	c.mu.RUnlock()

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	results := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, check := range checks {
		wg.Go(func() { results[i] = check(ctx) })
	}
	wg.Wait()

	r := Report{Ready: !c.draining.Load(), Checks: make(map[string]string, len(names))}
	if !r.Ready {
		r.Checks["process"] = "draining"
	}
	for i, n := range names {
		if results[i] != nil {
			r.Ready = false
			r.Checks[n] = results[i].Error()
			continue
		}
		r.Checks[n] = "ok"
	}
	return r
}

// GRPCServer returns the grpc.health.v1 implementation to register on the
// process's gRPC servers. Its overall status follows Watch.
func (c *Checker) GRPCServer() healthpb.HealthServer { return c.grpc }

// notReadyInterval is how often Watch re-evaluates while the process is
// not ready, so that it turns ready soon after its dependencies do.
const notReadyInterval = 100 * time.Millisecond

// Watch re-evaluates readiness every interval (more often while not
// ready) and publishes it as the overall status of the gRPC health
// service, until ctx ends.
func (c *Checker) Watch(ctx context.Context, interval time.Duration) error {
	for {
		wait := interval
		if !c.draining.Load() {
			status := healthpb.HealthCheckResponse_NOT_SERVING
			ready := c.Evaluate(ctx).Ready
			c.ready.Store(ready)
			if ready {
				status = healthpb.HealthCheckResponse_SERVING
			} else {
				wait = min(interval, notReadyInterval)
			}
			c.grpc.SetServingStatus("", status)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Register adds /healthz and /readyz to mux. /healthz answers 200 while the
// process runs; /readyz answers 200 or 503 with the report as JSON.
func (c *Checker) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		report := c.Evaluate(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if !report.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(report)
	})
}
