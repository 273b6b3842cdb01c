package process_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
)

// probeConfig is the configuration of the binary TestMain becomes.
type probeConfig struct {
	OpsAddr string `env:"OPS_ADDR" envDefault:":1"`
}

// TestMain lets the tests run this test binary as a part built with
// process.Main, e.g. `process.test healthcheck`.
func TestMain(m *testing.M) {
	if os.Getenv("PROCESS_TEST_BE_MAIN") == "1" {
		process.Main("probe", func(probeConfig) logging.Config { return logging.Config{Level: "error", Format: "json"} },
			func(context.Context, probeConfig, *zap.Logger) error {
				return errors.New("the probe must not run the part")
			})
		return
	}
	os.Exit(m.Run())
}

// opsServer answers /healthz with status.
func opsServer(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// closedAddr is an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l := listen(t)
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	alive, failing := opsServer(t, http.StatusOK), opsServer(t, http.StatusServiceUnavailable)
	_, alivePort, _ := net.SplitHostPort(alive)
	for _, tc := range []struct {
		name, addr string
		ok         bool
	}{
		{"alive", alive, true},
		{"every interface is asked on loopback", ":" + alivePort, true},
		{"0.0.0.0 is asked on loopback", "0.0.0.0:" + alivePort, true},
		{"not 200", failing, false},
		{"nothing listens", closedAddr(t), false},
		{"no port", "localhost", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := process.Healthcheck(context.Background(), tc.addr, 2*time.Second)
			if (err == nil) != tc.ok {
				t.Errorf("Healthcheck(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
			}
		})
	}
}

// TestMainHealthcheckMode runs a binary built with Main as its own probe,
// as an image's HEALTHCHECK does, and checks its exit code.
func TestMainHealthcheckMode(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, opsAddr string
		code          int
	}{
		{"alive", opsServer(t, http.StatusOK), 0},
		{"not alive", opsServer(t, http.StatusServiceUnavailable), 1},
		{"nothing listens", closedAddr(t), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(exe, process.HealthcheckArg)
			cmd.Env = append(os.Environ(), "PROCESS_TEST_BE_MAIN=1", "OPS_ADDR="+tc.opsAddr)
			out, err := cmd.CombinedOutput()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Errorf("exit code %d, want %d; output: %s", code, tc.code, out)
			}
		})
	}
}
