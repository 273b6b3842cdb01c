package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/comfortech/platform/libs/health"
)

func readyz(t *testing.T, c *health.Checker) (int, health.Report) {
	t.Helper()
	mux := http.NewServeMux()
	c.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var r health.Report
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("readyz body %q: %v", rec.Body.String(), err)
	}
	return rec.Code, r
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	c := health.New(100 * time.Millisecond)
	c.Add("db", func(context.Context) error { return nil })

	if code, r := readyz(t, c); code != http.StatusOK || !r.Ready || r.Checks["db"] != "ok" {
		t.Fatalf("healthy: %d %+v", code, r)
	}

	c.Add("kafka", func(context.Context) error { return errors.New("no brokers") })
	if code, r := readyz(t, c); code != http.StatusServiceUnavailable || r.Ready || r.Checks["kafka"] != "no brokers" {
		t.Fatalf("failing dependency: %d %+v", code, r)
	}

	c.Add("kafka", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	start := time.Now()
	if code, _ := readyz(t, c); code != http.StatusServiceUnavailable {
		t.Fatalf("hanging check reported ready")
	}
	if time.Since(start) > time.Second {
		t.Fatal("a hanging check was not bounded by the timeout")
	}
}

func TestDrainAndGRPC(t *testing.T) {
	t.Parallel()
	c := health.New(time.Second)
	c.Add("db", func(context.Context) error { return nil })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Nothing checked yet: not serving.
	if resp, err := c.GRPCServer().Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("before any check: %v %v", resp.GetStatus(), err)
	}
	go func() { _ = c.Watch(ctx, 10*time.Millisecond) }()

	waitStatus := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for {
			resp, err := c.GRPCServer().Check(ctx, &healthpb.HealthCheckRequest{})
			if err == nil && resp.GetStatus() == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("gRPC health never became %v (last %v, %v)", want, resp.GetStatus(), err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitStatus(healthpb.HealthCheckResponse_SERVING)

	c.Drain()
	if code, r := readyz(t, c); code != http.StatusServiceUnavailable || r.Checks["process"] != "draining" {
		t.Fatalf("draining: %d %+v", code, r)
	}
	waitStatus(healthpb.HealthCheckResponse_NOT_SERVING)

	mux := http.NewServeMux()
	c.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("healthz while draining = %d, want 200 (alive)", rec.Code)
	}
}
