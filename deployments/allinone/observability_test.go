package allinone_test

import (
	"bufio"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/comfortech/platform/deployments/allinone"
)

// inventoryFile lists every metric the parts export, with its type: the
// names the Grafana dashboards and the alert rules may use. scripts/obscheck
// checks them against it; TestObservabilityInventory keeps it true.
const inventoryFile = "../prometheus/metrics.txt"

var updateInventory = flag.Bool("update-metrics", false, "rewrite "+inventoryFile+" from what the running platform exports")

// inventoryParts are the parts Prometheus scrapes (deployments/prometheus).
var inventoryParts = []string{"data", "device", "notify", "main-gateway", "auth-gateway", "admin-gateway"}

// TestObservabilityInventory starts the platform, makes every part do some
// work (a registration, a login, a provisioned device), scrapes every
// part's /metrics and compares the metric names with the inventory: a
// metric renamed or removed in code fails here, and so does a new one that
// the inventory (and so the dashboards' check) does not know yet.
func TestObservabilityInventory(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	mainAPI := call{t, "http://" + p.Addr("main-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}
	stamp := time.Now().UnixNano() % 1_000_000
	newAppUser(t, authAPI, mainAPI, fmt.Sprintf("+7954%06d1", stamp))
	provisionOne(t, adminAPI, adminToken(t, p, authAPI), fmt.Sprintf("OBS-%06d", stamp))

	want := map[string]string{}
	if !*updateInventory {
		want = readInventory(t)
	}
	// Some series appear a moment after the work that makes them (the
	// outbox relay, the lag watcher): scrape until every listed one is there.
	var got map[string]string
	deadline := time.Now().Add(20 * time.Second)
	for {
		got = scrapeParts(t, p)
		if len(missingNames(want, got)) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if *updateInventory {
		writeInventory(t, got)
		return
	}
	if m := missingNames(want, got); len(m) > 0 {
		t.Errorf("%s lists metrics no part exports: %v\n(rename them in the dashboards and rules, then run go test ./deployments/allinone -run TestObservabilityInventory -update-metrics)", inventoryFile, m)
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		// The Go runtime's own metrics change with the Go version; only
		// the platform's must all be listed.
		if _, ok := want[name]; !ok && (strings.HasPrefix(name, "comfort_") || strings.HasPrefix(name, "grpc_")) {
			t.Errorf("%s (%s) is exported but not in %s: run go test ./deployments/allinone -run TestObservabilityInventory -update-metrics", name, got[name], inventoryFile)
		}
		if typ, ok := want[name]; ok && typ != got[name] {
			t.Errorf("%s is a %s, %s says %s", name, got[name], inventoryFile, typ)
		}
	}
}

// missingNames returns the names of want that got lacks.
func missingNames(want, got map[string]string) []string {
	var m []string
	for name := range want {
		if _, ok := got[name]; !ok {
			m = append(m, name)
		}
	}
	slices.Sort(m)
	return m
}

// scrapeParts returns every sample name the parts expose, with the type
// of its family (a histogram's _bucket, _sum and _count are histogram).
func scrapeParts(t *testing.T, p *allinone.Platform) map[string]string {
	t.Helper()
	names := map[string]string{}
	for _, part := range inventoryParts {
		resp, err := http.Get("http://" + p.Addr(part, "ops") + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		types := map[string]string{}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
				types[f[2]] = f[3]
				continue
			}
			if line == "" || line[0] == '#' {
				continue
			}
			name := line[:strings.IndexAny(line, "{ ")]
			typ := types[name]
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && typ == "" {
					typ = types[base]
				}
			}
			names[name] = typ
		}
		_ = resp.Body.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// readInventory reads inventoryFile: "name type" lines, # comments.
func readInventory(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(inventoryFile)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
			names[f[0]] = f[1]
		}
	}
	return names
}

func writeInventory(t *testing.T, names map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# Every metric the Comfortech parts export, with its type, as scraped from a\n" +
		"# running platform by deployments/allinone's TestObservabilityInventory\n" +
		"# (-update-metrics rewrites it). scripts/obscheck checks that the Grafana\n" +
		"# dashboards and the alert rules use only these names.\n")
	for _, name := range slices.Sorted(maps.Keys(names)) {
		fmt.Fprintf(&b, "%s %s\n", name, names[name])
	}
	if err := os.WriteFile(inventoryFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
