package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/comfortech/platform/libs/process"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestProcess runs a process with a gRPC server, an HTTP server and a
// failing readiness check, then checks every ops endpoint and the shutdown.
func TestProcess(t *testing.T) {
	t.Parallel()
	p, err := process.New("test", zap.NewNop(), process.Config{ReadinessInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	dbUp := make(chan struct{})
	p.Health.Add("db", func(context.Context) error {
		select {
		case <-dbUp:
			return nil
		default:
			return errors.New("connection refused")
		}
	})
	grpcL, httpL, opsL := listen(t), listen(t), listen(t)
	if _, err := p.GRPCServer("", grpcL); err != nil {
		t.Fatal(err)
	}
	p.ServeHTTP("public", httpL, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hi")) }))
	stopped := make(chan struct{})
	p.OnStop(func() { close(stopped) })

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, opsL) }()
	ops := "http://" + opsL.Addr().String()

	deadline := time.Now().Add(5 * time.Second)
	for {
		if code, _ := get(t, ops+"/healthz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ops listener never answered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, body := get(t, ops+"/readyz")
	var report struct{ Checks map[string]string }
	_ = json.Unmarshal([]byte(body), &report)
	if code != http.StatusServiceUnavailable || report.Checks["db"] != "connection refused" {
		t.Fatalf("readyz with the database down: %d %s", code, body)
	}
	if _, body := get(t, ops+"/metrics"); !strings.Contains(body, "\ncomfort_ready 0\n") {
		t.Fatalf("metrics lack comfort_ready 0 while not ready:\n%s", body)
	}
	close(dbUp)
	if code, body := get(t, ops+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz with the database up: %d %s", code, body)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		if _, body := get(t, ops+"/metrics"); strings.Contains(body, "\ncomfort_ready 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("comfort_ready never 1 once the database is up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := get(t, "http://"+httpL.Addr().String()+"/"); code != 200 || body != "hi" {
		t.Fatalf("public server: %d %q", code, body)
	}
	if _, body := get(t, ops+"/metrics"); !strings.Contains(body, `comfort_http_requests_total{code="200",method="get",server="public"} 1`) {
		t.Fatalf("metrics lack the public request:\n%s", body)
	}

	conn, err := grpc.NewClient(grpcL.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	deadline = time.Now().Add(5 * time.Second)
	for {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gRPC health never SERVING: %v %v", resp.GetStatus(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	select {
	case <-stopped:
	default:
		t.Fatal("OnStop hook not run")
	}
}

// TestDial checks that a part is ready only while the service it dials
// answers that it is serving.
func TestDial(t *testing.T) {
	t.Parallel()
	l := listen(t)
	hs := health.NewServer()
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()

	p, err := process.New("gateway", zap.NewNop(), process.Config{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := p.Dial("upstream", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, c := range []struct {
		status    healthpb.HealthCheckResponse_ServingStatus
		wantReady bool
	}{
		{healthpb.HealthCheckResponse_NOT_SERVING, false},
		{healthpb.HealthCheckResponse_SERVING, true},
	} {
		hs.SetServingStatus("", c.status)
		r := p.Health.Evaluate(t.Context())
		if r.Ready != c.wantReady || (r.Checks["upstream"] == "ok") != c.wantReady {
			t.Errorf("upstream %s: %+v, want ready %v", c.status, r, c.wantReady)
		}
	}
	srv.Stop()
	if r := p.Health.Evaluate(t.Context()); r.Ready {
		t.Errorf("ready with the upstream gone: %+v", r)
	}
}
