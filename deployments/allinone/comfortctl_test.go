package allinone_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/comfortech/platform/cli/comfortctl"
	"github.com/comfortech/platform/deployments/allinone"
	"github.com/comfortech/platform/services/device/simulator"
)

// ctlResult is what one comfortctl run left.
type ctlResult struct {
	code           int
	stdout, stderr string
}

// comfortctlAt returns a function that runs comfortctl in-process against
// p with the session file config.
func comfortctlAt(t *testing.T, p *allinone.Platform, config string) func(ctx context.Context, stdin string, args ...string) ctlResult {
	var ops []string
	for _, e := range p.Endpoints {
		if e.Kind == "ops" {
			ops = append(ops, e.Part+"="+e.Addr)
		}
	}
	global := []string{"--config", config, "--auth-url", "http://" + p.Addr("auth-gateway", "http"),
		"--admin-url", "http://" + p.Addr("admin-gateway", "http"), "--issuer", p.Issuer, "--ops", strings.Join(ops, ",")}
	return func(ctx context.Context, stdin string, args ...string) ctlResult {
		var out, errOut bytes.Buffer
		code := comfortctl.Run(ctx, append(slices.Clone(global), args...), strings.NewReader(stdin), &out, &errOut)
		return ctlResult{code, out.String(), errOut.String()}
	}
}

// wantExit fails the test unless r exited with code.
func (r ctlResult) wantExit(t *testing.T, code int, what string) ctlResult {
	t.Helper()
	if r.code != code {
		t.Fatalf("comfortctl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, r.code, code, r.stdout, r.stderr)
	}
	return r
}

// TestComfortctl drives the platform with comfortctl as an operator
// would: status, a password login and the ops client's credentials, the
// sample environment applied twice, 1,000 devices provisioned from a CSV
// file and listed, a few of them simulated until the registry sees them
// online, and the exit codes scripts rely on.
func TestComfortctl(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	ctx := context.Background()
	dir := t.TempDir()
	ctl := comfortctlAt(t, p, filepath.Join(dir, "session.json"))

	r := ctl(ctx, "", "devices", "list").wantExit(t, comfortctl.ExitFailure, "devices list before login")
	if !strings.Contains(r.stderr, "not logged in") {
		t.Errorf("before login: %s", r.stderr)
	}

	r = ctl(ctx, "", "status").wantExit(t, comfortctl.ExitOK, "status")
	for _, part := range []string{"devstack", "data", "device", "notify", "main-gateway", "auth-gateway", "admin-gateway"} {
		if !hasCells(r.stdout, part, "http://"+p.Addr(part, "ops"), "yes", "yes", "-") {
			t.Errorf("status of %s:\n%s", part, r.stdout)
		}
	}

	r = ctl(ctx, "wrong-Passw0rd\n", "login", "--password-stdin").wantExit(t, comfortctl.ExitFailure, "login with a wrong password")
	if !strings.Contains(r.stderr, "UNAUTHENTICATED") {
		t.Errorf("wrong password: %s", r.stderr)
	}
	ctl(ctx, p.AdminPassword.Reveal()+"\n", "login", "--password-stdin").wantExit(t, comfortctl.ExitOK, "login")

	// The sample environment: a diff shows it all to create, the apply
	// creates it, the second apply and diff find nothing to do.
	sample := "../environments/sample.yaml"
	r = ctl(ctx, "", "diff", "-f", sample).wantExit(t, comfortctl.ExitChanges, "diff before apply")
	if !hasCells(r.stdout, "DeviceModel", "thermostat-t1", "create") || !strings.Contains(r.stdout, "+title: Comfort T1 thermostat") {
		t.Errorf("diff:\n%s", r.stdout)
	}
	r = ctl(ctx, "", "apply", "-f", sample).wantExit(t, comfortctl.ExitOK, "apply")
	items := 0
	for line := range strings.SplitSeq(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == "create" {
			items++
		}
	}
	if !hasCells(r.stdout, "Application", "maintenance", "create") || items < 3 ||
		!strings.Contains(r.stdout, fmt.Sprintf("%d created, 0 updated, 0 deleted, 0 unchanged.", items)) {
		t.Errorf("apply:\n%s", r.stdout)
	}
	r = ctl(ctx, "", "apply", "-f", sample).wantExit(t, comfortctl.ExitOK, "second apply")
	if !strings.Contains(r.stdout, fmt.Sprintf("No changes: %d item(s) unchanged.", items)) || strings.Contains(r.stdout, "create") {
		t.Errorf("second apply:\n%s", r.stdout)
	}
	ctl(ctx, "", "diff", "-f", sample).wantExit(t, comfortctl.ExitOK, "diff after apply")
	r = ctl(ctx, "apiVersion: comfortech/v1\nwidgets: []\n", "apply", "-f", "-").wantExit(t, comfortctl.ExitFailure, "a bad document")
	if !strings.Contains(r.stderr, "INVALID_ARGUMENT") || !strings.Contains(r.stderr, "field document") {
		t.Errorf("bad document: %s", r.stderr)
	}
	ctl(ctx, "", "apply", "-f", filepath.Join(dir, "missing.yaml")).wantExit(t, comfortctl.ExitFailure, "a missing file")

	// 1,000 devices from a CSV file, with the progress bar asked for.
	prefix := fmt.Sprintf("CT-CLI-%d", time.Now().UnixNano()%1_000_000)
	var csv strings.Builder
	csv.WriteString("serial,model,firmware_version\n")
	for i := range 1000 {
		fmt.Fprintf(&csv, "%s-%04d,thermostat-t1,1.0.%d\n", prefix, i, i%3)
	}
	devicesCSV, creds := filepath.Join(dir, "devices.csv"), filepath.Join(dir, "credentials.json")
	if err := os.WriteFile(devicesCSV, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r = ctl(ctx, "", "--progress", "devices", "provision", "-f", devicesCSV, "--out", creds).wantExit(t, comfortctl.ExitOK, "provision")
	if !strings.Contains(r.stderr, "provisioning") || !strings.Contains(r.stderr, "(1000/1000") {
		t.Errorf("no progress on stderr: %q", r.stderr)
	}
	fleet, err := simulator.LoadCredentials(creds)
	if err != nil || len(fleet) != 1000 || fleet[0].Serial != prefix+"-0000" || fleet[0].Secret == "" || fleet[0].ClaimCode == "" {
		t.Fatalf("credentials: %v, %d devices, first %+v", err, len(fleet), fleet[0])
	}
	r = ctl(ctx, "", "devices", "provision", "-f", devicesCSV, "--out", creds).wantExit(t, comfortctl.ExitFailure, "provision over a file")
	if !strings.Contains(r.stderr, "exists") {
		t.Errorf("provision over a file: %s", r.stderr)
	}
	r = ctl(ctx, "serial,model\nxx-1,Not A Model\n", "devices", "provision", "-f", "-", "--out", filepath.Join(dir, "bad.csv"))
	r.wantExit(t, comfortctl.ExitFailure, "a refused device")
	if !strings.Contains(r.stderr, "INVALID_ARGUMENT") || !strings.Contains(r.stderr, "field requests[0].model") {
		t.Errorf("refused device: %s", r.stderr)
	}

	// The registry lists them, in pages, as a table and as JSON.
	r = ctl(ctx, "", "devices", "list", "--serial-prefix", prefix).wantExit(t, comfortctl.ExitOK, "devices list")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 1001 || !strings.Contains(lines[1], prefix+"-0000") {
		t.Errorf("devices list: %d lines, first %q", len(lines), lines[min(1, len(lines)-1)])
	}
	r = ctl(ctx, "", "-o", "json", "devices", "list", "--serial-prefix", prefix, "--firmware", "1.0.1").wantExit(t, comfortctl.ExitOK, "filtered list")
	var list struct {
		Items []struct {
			ID, Serial, Model string
			Firmware          string `json:"firmware_version"`
		}
		TotalSize string `json:"total_size"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Items) != 333 || list.TotalSize != "333" {
		t.Fatalf("firmware 1.0.1: %v, %d devices of %s", err, len(list.Items), list.TotalSize)
	}
	for _, d := range list.Items {
		if d.Firmware != "1.0.1" || !strings.HasPrefix(d.Serial, prefix) {
			t.Fatalf("filtered list holds %+v", d)
		}
	}
	r = ctl(ctx, "", "devices", "get", fleet[42].ID).wantExit(t, comfortctl.ExitOK, "devices get")
	if !hasCells(r.stdout, "DEVICE", fleet[42].ID) || !hasCells(r.stdout, "serial", fleet[42].Serial) || !hasCells(r.stdout, "firmware", "1.0.0") {
		t.Errorf("devices get:\n%s", r.stdout)
	}
	r = ctl(ctx, "", "devices", "get", uuid.NewString()).wantExit(t, comfortctl.ExitFailure, "an unknown device")
	if !strings.Contains(r.stderr, "NOT_FOUND") {
		t.Errorf("unknown device: %s", r.stderr)
	}
	ctl(ctx, "", "devices", "get").wantExit(t, comfortctl.ExitUsage, "devices get without an id")

	// Five of them run in the simulator until the registry sees them online.
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan ctlResult, 1)
	go func() {
		simDone <- ctl(simCtx, "", "simulate", "-f", creds, "--devices", "5", "--broker", "tcp://"+p.Addr("mqtt", "mqtt"),
			"--interval", "500ms", "--stats-every", "1s", "--duration", "2m")
	}()
	online := 0
	for deadline := time.Now().Add(30 * time.Second); online < 5 && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		r = ctl(ctx, "", "-o", "json", "devices", "list", "--serial-prefix", prefix, "--online").wantExit(t, comfortctl.ExitOK, "online devices")
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
			t.Fatal(err)
		}
		online = len(list.Items)
	}
	stopSim()
	sim := <-simDone
	sim.wantExit(t, comfortctl.ExitOK, "simulate")
	if online != 5 {
		t.Errorf("%d devices online in the registry while 5 ran\nsimulator:\n%s", online, sim.stdout)
	}
	if !strings.Contains(sim.stdout, "final connected 0/5") || !strings.Contains(sim.stdout, "connects 5 (failed 0") {
		t.Errorf("simulator stats:\n%s", sim.stdout)
	}

	// The ops client's credentials: an administrator at the admin gateway.
	secret := p.ServiceSettings("ops").ClientSecret.Reveal()
	ops := comfortctlAt(t, p, filepath.Join(dir, "ops-session.json"))
	ops(ctx, secret+"\n", "login", "--client-id", "comfortech-ops", "--client-secret-stdin").wantExit(t, comfortctl.ExitOK, "client-credentials login")
	r = ops(ctx, "", "devices", "list", "--serial-prefix", prefix, "--limit", "3").wantExit(t, comfortctl.ExitOK, "list as the ops client")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 4 {
		t.Errorf("--limit 3 as the ops client:\n%s", r.stdout)
	}
	ops(ctx, "", "diff", "-f", sample).wantExit(t, comfortctl.ExitOK, "diff as the ops client")
	ops(ctx, "wrong\n", "login", "--client-id", "comfortech-ops", "--client-secret-stdin").wantExit(t, comfortctl.ExitFailure, "a wrong secret")

	ctl(ctx, "", "logout").wantExit(t, comfortctl.ExitOK, "logout")
	ctl(ctx, "", "devices", "list").wantExit(t, comfortctl.ExitFailure, "devices list after logout")
}

// hasCells reports whether a line of out consists of cells, separated by
// spaces (a table row).
func hasCells(out string, cells ...string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		if slices.Equal(strings.Fields(line), cells) {
			return true
		}
	}
	return false
}
