package allinone_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/comfortech/platform/cli/comfortctl"
	"github.com/comfortech/platform/services/device/simulator"
)

// TestOperatorScenario is the operator's day through the running stack,
// with comfortctl: the sample environment plus an event subscription to
// the operator's receiver applied (twice: the second apply changes
// nothing), 1,000 devices provisioned in bulk with a progress bar, all of
// them connected by the simulator, the fleet view showing them online, the
// receiver getting their signed presence events, and the audit log showing
// what the operator did.
func TestOperatorScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 simulated devices")
	}
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	ctx := context.Background()
	dir := t.TempDir()
	ctl := comfortctlAt(t, p, filepath.Join(dir, "session.json"))
	ctl(ctx, p.AdminPassword.Reveal()+"\n", "login", "--password-stdin").wantExit(t, comfortctl.ExitOK, "login")

	// The environment, with a subscription of the operator's receiver to
	// device presence.
	sink, url := newSubscriptionSink(t)
	sample, err := os.ReadFile("../environments/sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := string(sample) + fmt.Sprintf(`  - name: ops-presence
    url: %s
    event_types: [device.lifecycle]
    filters:
      - {attribute: type, operator: FILTER_OPERATOR_EXACT, value: comfortech.device.presence.v1}
    enabled: true
`, url)
	envFile := filepath.Join(dir, "environment.yaml")
	if err := os.WriteFile(envFile, []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ctl(ctx, "", "apply", "-f", envFile).wantExit(t, comfortctl.ExitOK, "apply")
	if !hasCells(r.stdout, "Subscription", "ops-presence", "create") {
		t.Fatalf("apply:\n%s", r.stdout)
	}
	r = ctl(ctx, "", "apply", "-f", envFile).wantExit(t, comfortctl.ExitOK, "second apply")
	if !strings.Contains(r.stdout, "No changes") {
		t.Fatalf("second apply:\n%s", r.stdout)
	}
	// The signing secret is the service's: the operator reads a new one.
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}
	admin := adminToken(t, p, authAPI)
	code, envl := adminAPI.do(http.MethodPost, "/v1/subscriptions/ops-presence:rotate-secret", admin, map[string]any{"grace_period": "0s"})
	if code != http.StatusOK {
		t.Fatalf("rotate secret: %d %+v", code, envl.Error)
	}
	sink.mu.Lock()
	sink.secret = decode[struct{ Secret string }](t, envl).Secret
	sink.mu.Unlock()

	// 1,000 devices in bulk, with the progress bar.
	prefix := fmt.Sprintf("CT-OPS-%d", time.Now().UnixNano()%1_000_000)
	creds := filepath.Join(dir, "fleet.json")
	r = ctl(ctx, "", "--progress", "devices", "provision", "--count", "1000", "--model", "thermostat-t1",
		"--serial-prefix", prefix, "--batch-size", "250", "--out", creds).wantExit(t, comfortctl.ExitOK, "provision")
	if !strings.Contains(r.stderr, "(1000/1000") {
		t.Errorf("provisioning progress: %q", r.stderr)
	}
	fleet, err := simulator.LoadCredentials(creds)
	if err != nil || len(fleet) != 1000 {
		t.Fatalf("credentials: %v, %d devices", err, len(fleet))
	}

	// The simulator connects every one; the fleet view shows them online.
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan ctlResult, 1)
	go func() {
		simDone <- ctl(simCtx, "", "--progress", "simulate", "-f", creds, "--broker", "tcp://"+p.Addr("mqtt", "mqtt"),
			"--interval", "30s", "--stats-every", "5s", "--duration", "3m")
	}()
	var online int
	for deadline := time.Now().Add(90 * time.Second); online < 1000 && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		r = ctl(ctx, "", "-o", "json", "devices", "list", "--serial-prefix", prefix, "--online", "--limit", "1").
			wantExit(t, comfortctl.ExitOK, "online devices")
		var list struct {
			TotalSize string `json:"total_size"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
			t.Fatal(err)
		}
		_, _ = fmt.Sscan(list.TotalSize, &online)
	}
	if online != 1000 {
		t.Errorf("the fleet view shows %d of 1000 devices online", online)
	}

	// The receiver got each device's presence, signed (the sink checks
	// every signature with the reference library).
	seen := map[string]bool{}
	for deadline := time.Now().Add(60 * time.Second); len(seen) < 1000 && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		_, events, _ := sink.received()
		for _, ev := range events {
			data, _ := ev["data"].(map[string]any)
			if id, _ := data["device_id"].(string); ev["type"] == "comfortech.device.presence.v1" && data["online"] == true {
				seen[id] = true
			}
		}
	}
	stopSim()
	sim := <-simDone
	sim.wantExit(t, comfortctl.ExitOK, "simulate")
	if !strings.Contains(sim.stderr, "connecting") {
		t.Errorf("no progress while the fleet connected: %q", sim.stderr)
	}
	for _, d := range fleet {
		if !seen[d.ID] {
			t.Errorf("no signed presence event for %s (%d devices seen)", d.ID, len(seen))
			break
		}
	}

	// The audit log: the operator's configuration and provisioning.
	var me struct{ User struct{ ID string } }
	code, envl = authAPI.do(http.MethodGet, "/v1/auth/me", admin, nil)
	if me = decode[struct{ User struct{ ID string } }](t, envl); code != http.StatusOK || me.User.ID == "" {
		t.Fatalf("me: %d %+v", code, envl.Error)
	}
	for _, c := range []struct {
		query string
		want  int
	}{
		{"action=device.provision&page_size=1000", 1000},
		{"action=device_model.put", 2},
		{"action=subscription.", 3}, // two puts, a rotation
		{"resource_type=notification_application", 1},
	} {
		evs := auditLog(t, adminAPI, admin, c.query+"&actor_id="+me.User.ID, func(evs []auditEvent) bool { return len(evs) >= c.want })
		if len(evs) != c.want {
			t.Errorf("audit %s: %d events, want %d", c.query, len(evs), c.want)
		}
	}
}
