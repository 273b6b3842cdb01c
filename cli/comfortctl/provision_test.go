package comfortctl_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/comfortech/platform/cli/comfortctl"
	"github.com/comfortech/platform/services/device/simulator"
)

// TestProvision provisions devices from CSV in batches with a progress
// bar, writes credentials the simulator reads, refuses to overwrite them,
// and on a refused batch keeps what was provisioned and names the device.
func TestProvision(t *testing.T) {
	t.Parallel()
	g := newGateways(t)
	flags := g.login(t)
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("serial,model,firmware_version,claim_code\n")
	for i := range 25 {
		code := ""
		if i == 3 {
			code = "PRINTED-0004"
		}
		fmt.Fprintf(&csv, "CT-P-%03d,thermostat-t1,1.0.0,%s\n", i, code)
	}
	file := filepath.Join(dir, "devices.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "creds.json")
	r := run(t, "", append(flags, "--progress", "devices", "provision", "-f", file, "--out", out, "--batch-size", "10")...).want(t, 0, "provision")
	if !strings.Contains(r.stderr, "provisioning") || !strings.Contains(r.stderr, "(25/25") || !strings.Contains(r.stderr, "100%") {
		t.Errorf("progress:\n%q", r.stderr)
	}
	if fmt.Sprint(g.batches) != "[10 10 5]" {
		t.Errorf("batches %v", g.batches)
	}
	creds, err := simulator.LoadCredentials(out)
	if err != nil || len(creds) != 25 || creds[3].ClaimCode != "PRINTED-0004" || creds[0].Secret != "secret-CT-P-000" || creds[24].Serial != "CT-P-024" {
		t.Fatalf("credentials: %v %+v", err, creds)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode %v", fi.Mode())
	}

	// Without --progress and without a terminal, stderr stays clean.
	r = run(t, "", append(flags, "devices", "provision", "--count", "3", "--model", "thermostat-t1", "--serial-prefix", "GEN",
		"--out", filepath.Join(dir, "gen.csv"))...).want(t, 0, "generated")
	if r.stderr != "" || !strings.Contains(r.stdout, "Provisioned 3 devices") {
		t.Errorf("generated: stdout %q stderr %q", r.stdout, r.stderr)
	}
	gen, _ := simulator.LoadCredentials(filepath.Join(dir, "gen.csv"))
	if len(gen) != 3 || gen[2].Serial != "GEN-000003" || gen[0].ClaimCode != "GEN-GEN-000001" {
		t.Errorf("generated credentials: %+v", gen)
	}

	hits := g.hits()
	r = run(t, "", append(flags, "devices", "provision", "-f", file, "--out", out)...).want(t, comfortctl.ExitFailure, "existing --out")
	if !strings.Contains(r.stderr, "exists") || g.hits() != hits {
		t.Errorf("existing --out: %s (%d calls)", r.stderr, g.hits()-hits)
	}
	for name, body := range map[string]string{
		"unknown column": "serial,model,colour\nCT-1,t1,red\n",
		"no model":       "serial\nCT-1\n",
		"twice":          "serial,model\nCT-1,t1\nCT-1,t1\n",
		"not JSON":       `[{"serial": "CT-1", "modle": "t1"}]`,
	} {
		r := run(t, body, append(flags, "devices", "provision", "-f", "-", "--out", filepath.Join(dir, name+".csv"))...)
		if r.code != comfortctl.ExitFailure || g.hits() != hits {
			t.Errorf("%s: exit %d, %d calls: %s", name, r.code, g.hits()-hits, r.stderr)
		}
	}

	// The third batch is refused: the first two are saved, and the error
	// names the input's device.
	bad := strings.Replace(csv.String(), "CT-P-022,", "X,", 1)
	partial := filepath.Join(dir, "partial.csv")
	r = run(t, bad, append(flags, "devices", "provision", "-f", "-", "--out", partial, "--batch-size", "10")...).want(t, 1, "refused batch")
	if !strings.Contains(r.stderr, `device 23 of the input (serial "X") was refused`) || !strings.Contains(r.stderr, "20 of 25 devices provisioned") ||
		!strings.Contains(r.stderr, "field requests[2].serial") {
		t.Errorf("refused batch: %s", r.stderr)
	}
	if saved, err := simulator.LoadCredentials(partial); err != nil || len(saved) != 20 {
		t.Errorf("partial credentials: %d, %v", len(saved), err)
	}
	run(t, "", append(flags, "devices", "provision", "--count", "3", "--out", filepath.Join(dir, "x.csv"))...).want(t, 2, "--count without --model")
	run(t, "", append(flags, "devices", "provision", "-f", file, "--count", "3", "--out", filepath.Join(dir, "x.csv"))...).want(t, 2, "both inputs")
}
