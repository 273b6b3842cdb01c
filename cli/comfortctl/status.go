package comfortctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/comfortech/platform/cli/comfortctl/internal/session"
	"github.com/comfortech/platform/libs/health"
)

// defaultOps are the ops listeners of `make run` (deployments/allinone's
// development ports), in the order status lists them.
var defaultOps = []struct{ part, addr string }{
	{"devstack", "localhost:9070"},
	{"data", "localhost:9071"}, {"device", "localhost:9072"}, {"notify", "localhost:9073"},
	{"main-gateway", "localhost:9080"}, {"auth-gateway", "localhost:9081"}, {"admin-gateway", "localhost:9082"},
}

// opsSetting resolves the ops listeners: --ops, COMFORTCTL_OPS, the
// session's, or defaultOps; each value is a base URL.
func (a *app) opsSetting(saved session.Session) map[string]string {
	ops := a.ops
	if len(ops) == 0 {
		if env := a.getenv("COMFORTCTL_OPS"); env != "" {
			ops = map[string]string{}
			for item := range strings.SplitSeq(env, ",") {
				if part, addr, ok := strings.Cut(strings.TrimSpace(item), "="); ok {
					ops[part] = addr
				}
			}
		}
	}
	if len(ops) == 0 {
		ops = saved.Ops
	}
	if len(ops) == 0 {
		ops = map[string]string{}
		for _, o := range defaultOps {
			ops[o.part] = o.addr
		}
	}
	urls := make(map[string]string, len(ops))
	for part, addr := range ops {
		if !strings.Contains(addr, "://") {
			addr = "http://" + addr
		}
		urls[part] = strings.TrimRight(addr, "/")
	}
	return urls
}

// statusTimeout bounds the questions to one part.
const statusTimeout = 10 * time.Second

// partStatus is one part's health.
type partStatus struct {
	Part string `json:"part"`
	URL  string `json:"url"`
	// Live: /healthz answered 200. Ready: /readyz answered 200.
	Live  bool `json:"live"`
	Ready bool `json:"ready"`
	// Checks are the readiness checks: "ok" or what failed.
	Checks map[string]string `json:"checks,omitempty"`
	// Error is why the part could not be asked.
	Error string `json:"error,omitempty"`
}

// failing lists what keeps the part from being ready.
func (p partStatus) failing() string {
	if p.Error != "" {
		return p.Error
	}
	var out []string
	for name, v := range p.Checks {
		if v != "ok" {
			out = append(out, name+": "+v)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Health and readiness of every part, from its ops listener",
		Long: `Ask every part's ops listener for /healthz (alive) and /readyz (its
dependencies reachable, with one line per check) and list them. Exits 1 when
a part is not ready or cannot be reached.

The listeners are --ops part=host:port,..., COMFORTCTL_OPS, the ones saved
at login, or make run's: devstack 9070, data 9071, device 9072, notify 9073,
main-gateway 9080, auth-gateway 9081, admin-gateway 9082 on localhost.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ops := a.opsSetting(a.saved())
			parts := make([]string, 0, len(ops))
			for part := range ops {
				parts = append(parts, part)
			}
			sort.Slice(parts, func(i, j int) bool {
				oi, oj := opsOrder(parts[i]), opsOrder(parts[j])
				if oi != oj {
					return oi < oj
				}
				return parts[i] < parts[j]
			})
			statuses := make([]partStatus, len(parts))
			var wg sync.WaitGroup
			for i, part := range parts {
				wg.Go(func() { statuses[i] = a.partStatus(cmd.Context(), part, ops[part]) })
			}
			wg.Wait()
			var notReady []string
			for _, s := range statuses {
				if !s.Ready {
					notReady = append(notReady, s.Part)
				}
			}
			report := struct {
				Ready bool         `json:"ready"`
				Parts []partStatus `json:"parts"`
			}{len(notReady) == 0, statuses}
			err := a.print(report, func(w io.Writer) {
				rows := make([][]string, 0, len(statuses))
				for _, s := range statuses {
					rows = append(rows, []string{s.Part, s.URL, yesNo(s.Live), yesNo(s.Ready), orDash(s.failing())})
				}
				writeTable(w, []string{"PART", "OPS", "LIVE", "READY", "FAILING"}, rows)
			})
			if err != nil {
				return err
			}
			if len(notReady) > 0 {
				return exitError{ExitFailure, fmt.Errorf("not ready: %s", strings.Join(notReady, ", "))}
			}
			return nil
		},
	}
}

// opsOrder places known parts in defaultOps order, others after them.
func opsOrder(part string) int {
	i := slices.IndexFunc(defaultOps, func(o struct{ part, addr string }) bool { return o.part == part })
	if i < 0 {
		return len(defaultOps)
	}
	return i
}

// partStatus asks one part's ops listener.
func (a *app) partStatus(ctx context.Context, part, base string) partStatus {
	// A readiness check gives up after a few seconds; a part that takes
	// longer to answer is as good as down.
	ctx, cancel := context.WithTimeout(ctx, min(a.timeout, statusTimeout))
	defer cancel()
	s := partStatus{Part: part, URL: base}
	resp, err := a.get(ctx, base+"/healthz")
	if err != nil {
		s.Error = err.Error()
		return s
	}
	_ = resp.Body.Close()
	s.Live = resp.StatusCode == http.StatusOK
	resp, err = a.get(ctx, base+"/readyz")
	if err != nil {
		s.Error = err.Error()
		return s
	}
	defer resp.Body.Close()
	var report health.Report
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil {
		s.Error = fmt.Sprintf("/readyz answered %s without a readiness report", resp.Status)
		return s
	}
	s.Ready, s.Checks = resp.StatusCode == http.StatusOK && report.Ready, report.Checks
	if !s.Ready && s.failing() == "" {
		s.Error = "/readyz answered " + resp.Status
	}
	return s
}

func (a *app) get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return a.http.Do(req)
}
