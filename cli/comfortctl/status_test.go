package comfortctl_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/comfortech/platform/cli/comfortctl"
	"github.com/comfortech/platform/libs/health"
)

// opsServer serves /healthz and /readyz with the platform's own health
// checker and the given checks.
func opsServer(t *testing.T, checks map[string]error) string {
	t.Helper()
	c := health.New(time.Second)
	for name, err := range checks {
		c.Add(name, func(context.Context) error { return err })
	}
	mux := http.NewServeMux()
	c.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestStatus lists parts that are ready, one whose check fails and one that
// does not answer, as a table and as JSON; it exits 1 unless all are ready.
func TestStatus(t *testing.T) {
	t.Parallel()
	ready := opsServer(t, map[string]error{"db": nil, "kafka": nil})
	failing := opsServer(t, map[string]error{"db": nil, "kafka": errors.New("dial tcp 127.0.0.1:19092: connection refused")})
	config := []string{"--config", filepath.Join(t.TempDir(), "none.json")}

	r := run(t, "", append(config, "status", "--ops", "data="+ready+",device="+ready)...).want(t, 0, "all ready")
	if !hasRow(r.stdout, "data", "http://"+ready, "yes", "yes", "-") || !hasRow(r.stdout, "device", "http://"+ready, "yes", "yes", "-") {
		t.Errorf("all ready:\n%s", r.stdout)
	}

	r = run(t, "", append(config, "status", "--ops", "notify="+failing+",data="+ready+",mystery=127.0.0.1:1")...)
	r.want(t, comfortctl.ExitFailure, "a part not ready")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "data") || !strings.HasPrefix(lines[2], "notify") || !strings.HasPrefix(lines[3], "mystery") {
		t.Errorf("parts not in the platform's order:\n%s", r.stdout)
	}
	if f := strings.Fields(lines[2]); !strings.Contains(lines[2], "kafka: dial tcp 127.0.0.1:19092: connection refused") || f[2] != "yes" || f[3] != "no" {
		t.Errorf("failing part: %q", lines[2])
	}
	if !strings.Contains(lines[3], "connection refused") || !strings.Contains(r.stderr, "not ready: notify, mystery") {
		t.Errorf("unreachable part: %q; stderr %q", lines[3], r.stderr)
	}

	r = run(t, "", append(config, "-o", "json", "status", "--ops", "notify="+failing)...).want(t, comfortctl.ExitFailure, "json")
	var report struct {
		Ready bool
		Parts []struct {
			Part   string
			Live   bool
			Ready  bool
			Checks map[string]string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if report.Ready || len(report.Parts) != 1 || !report.Parts[0].Live || report.Parts[0].Ready ||
		report.Parts[0].Checks["db"] != "ok" || !strings.Contains(report.Parts[0].Checks["kafka"], "refused") {
		t.Errorf("json report: %+v", report)
	}
}
