package obscheck_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// root is the repository, from this package's directory.
const root = "../.."

var (
	dashboardDir  = filepath.Join(root, "deployments/grafana/dashboards")
	rulesGlob     = filepath.Join(root, "deployments/prometheus/rules/*.yml")
	ruleTestsGlob = filepath.Join(root, "deployments/prometheus/tests/*.yml")
	scrapeConfig  = filepath.Join(root, "deployments/prometheus/prometheus.yml")
	inventoryFile = filepath.Join(root, "deployments/prometheus/metrics.txt")
)

// parts are the platform's parts with the ops port Prometheus scrapes them
// on (the architecture brief's dev ports, each part's default OPS_ADDR).
var parts = map[string]string{
	"data": "9071", "device": "9072", "notify": "9073",
	"main-gateway": "9080", "auth-gateway": "9081", "admin-gateway": "9082",
}

// builtin are series Prometheus makes itself.
var builtin = map[string]string{
	"up": "gauge", "ALERTS": "gauge", "ALERTS_FOR_STATE": "gauge",
	"scrape_duration_seconds": "gauge", "scrape_samples_scraped": "gauge",
}

var promql = parser.NewParser(parser.Options{})

// catalog is what an expression may refer to.
type catalog struct {
	types map[string]string // metric name → counter, gauge, histogram, summary
	jobs  map[string]bool   // scrape job names
}

func loadCatalog(t *testing.T) catalog {
	t.Helper()
	c := catalog{types: map[string]string{}, jobs: scrapeJobs(t)}
	b, err := os.ReadFile(inventoryFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
			c.types[f[0]] = f[1]
		}
	}
	if len(c.types) < 20 {
		t.Fatalf("%s lists only %d metrics", inventoryFile, len(c.types))
	}
	for name, typ := range builtin {
		c.types[name] = typ
	}
	for _, g := range loadRules(t) {
		for _, r := range g.Rules {
			if r.Record != "" {
				c.types[r.Record] = "gauge"
			}
		}
	}
	return c
}

// scrapeJobs returns the job names of prometheus.yml.
func scrapeJobs(t *testing.T) map[string]bool {
	t.Helper()
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, scrapeConfig, &cfg)
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
		if port, ok := parts[sc.JobName]; ok {
			want := sc.JobName + ":" + port
			if len(sc.StaticConfigs) != 1 || !slices.Equal(sc.StaticConfigs[0].Targets, []string{want}) {
				t.Errorf("prometheus.yml: job %s scrapes %+v, want %s", sc.JobName, sc.StaticConfigs, want)
			}
		}
	}
	for part := range parts {
		if !jobs[part] {
			t.Errorf("prometheus.yml does not scrape %s", part)
		}
	}
	return jobs
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadRules(t *testing.T) []rulefmt.RuleGroup {
	t.Helper()
	files, err := filepath.Glob(rulesGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files at %s (%v)", rulesGlob, err)
	}
	var groups []rulefmt.RuleGroup
	for _, f := range files {
		rgs, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
		for _, err := range errs {
			t.Errorf("%v", err)
		}
		if rgs != nil {
			groups = append(groups, rgs.Groups...)
		}
	}
	return groups
}

// check parses expr and reports every problem with what it refers to.
func (c catalog) check(expr string) []string {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			problems = append(problems, c.selector(n)...)
		case *parser.Call:
			problems = append(problems, c.call(n)...)
		}
		return nil
	})
	return problems
}

// selector checks a selector's metric name and job matchers.
func (c catalog) selector(vs *parser.VectorSelector) []string {
	var problems []string
	if vs.Name == "" {
		return []string{fmt.Sprintf("%s selects no metric by name", vs)}
	}
	if _, ok := c.types[vs.Name]; !ok {
		problems = append(problems, fmt.Sprintf("%s: no part exports %s (see %s)", vs, vs.Name, inventoryFile))
	}
	for _, m := range vs.LabelMatchers {
		if m.Name != "job" {
			continue
		}
		var values []string
		switch m.Type {
		case labels.MatchEqual:
			values = []string{m.Value}
		case labels.MatchRegexp:
			values = strings.Split(m.Value, "|")
		}
		for _, v := range values {
			if !c.jobs[v] {
				problems = append(problems, fmt.Sprintf("%s: no scrape job %q in prometheus.yml", vs, v))
			}
		}
	}
	return problems
}

// call checks that counter functions get counters and histogram_quantile
// gets buckets.
func (c catalog) call(call *parser.Call) []string {
	names := func(e parser.Expr) []string {
		var out []string
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				out = append(out, vs.Name)
			}
			return nil
		})
		return out
	}
	var problems []string
	switch call.Func.Name {
	case "rate", "irate", "increase":
		for _, name := range names(call.Args[0]) {
			if typ := c.types[name]; typ == "gauge" {
				problems = append(problems, fmt.Sprintf("%s(%s): %s is a gauge", call.Func.Name, name, name))
			}
		}
	case "histogram_quantile":
		for _, name := range names(call.Args[1]) {
			if !strings.HasSuffix(name, "_bucket") || c.types[name] != "histogram" {
				problems = append(problems, fmt.Sprintf("histogram_quantile over %s, which is not a histogram's buckets", name))
			}
		}
	}
	return problems
}

// grafanaVars are Grafana's variables and this repository's dashboard
// variables, with a value that makes the expression valid PromQL.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "${__rate_interval}", "5m", "$__interval", "1m", "$__range", "1h",
	"${instance:regex}", ".*", "${instance}", ".*", "$instance", ".*",
)

type dashboard struct {
	UID        string   `json:"uid"`
	Title      string   `json:"title"`
	Tags       []string `json:"tags"`
	Panels     []panel  `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// wantDashboards: one per part and an overview.
var wantDashboards = []string{"admin-gateway.json", "auth-gateway.json", "data.json", "device.json",
	"main-gateway.json", "notify.json", "overview.json"}

// TestDashboards parses every dashboard and checks every panel's queries.
func TestDashboards(t *testing.T) {
	c := loadCatalog(t)
	files, err := filepath.Glob(filepath.Join(dashboardDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if !slices.Equal(names, wantDashboards) {
		t.Errorf("dashboards %v, want %v", names, wantDashboards)
	}
	uids := map[string]string{}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for _, f := range files {
		name := filepath.Base(f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if d.UID == "" || d.Title == "" || !slices.Contains(d.Tags, "comfortech") {
			t.Errorf("%s: uid %q, title %q, tags %v: each needs a uid, a title and the comfortech tag", name, d.UID, d.Title, d.Tags)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %s", name, other, d.UID)
		}
		uids[d.UID] = name
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			var q struct{ Query string }
			if err := json.Unmarshal(v.Query, &q); err != nil {
				_ = json.Unmarshal(v.Query, &q.Query)
			}
			m := labelValues.FindStringSubmatch(q.Query)
			if m == nil {
				t.Errorf("%s: variable %s: query %q is not label_values(selector, label)", name, v.Name, q.Query)
				continue
			}
			for _, p := range c.check(m[1]) {
				t.Errorf("%s: variable %s: %s", name, v.Name, p)
			}
		}
		queries, ids := 0, map[int]bool{}
		var walk func(ps []panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				where := fmt.Sprintf("%s: panel %d %q", name, p.ID, p.Title)
				if ids[p.ID] {
					t.Errorf("%s: duplicate panel id", where)
				}
				ids[p.ID] = true
				if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
					t.Errorf("%s: gridPos %+v outside the 24-column grid", where, p.GridPos)
				}
				if p.Type == "row" {
					walk(p.Panels)
					continue
				}
				if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
					t.Errorf("%s: datasource %+v, want the dashboard's ${datasource} (Prometheus)", where, p.Datasource)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: no query", where)
				}
				for _, tg := range p.Targets {
					queries++
					if strings.TrimSpace(tg.Expr) == "" {
						t.Errorf("%s: query %s is empty", where, tg.RefID)
						continue
					}
					for _, problem := range c.check(grafanaVars.Replace(tg.Expr)) {
						t.Errorf("%s: query %s: %s", where, tg.RefID, problem)
					}
				}
			}
		}
		walk(d.Panels)
		if queries == 0 {
			t.Errorf("%s: no queries", name)
		}
	}
}

// TestRules checks every rule's expression against the inventory and that
// each alert says how bad it is and what happened.
func TestRules(t *testing.T) {
	c := loadCatalog(t)
	seen := map[string]bool{}
	for _, g := range loadRules(t) {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			if seen[name] {
				t.Errorf("rule %s is defined twice", name)
			}
			seen[name] = true
			for _, p := range c.check(r.Expr) {
				t.Errorf("rule %s: %s", name, p)
			}
			if r.Alert == "" {
				continue
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s needs a summary and a description", r.Alert)
			}
		}
	}
}

// ruleTestFile is the part of promtool's unit-test format this check reads.
type ruleTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTest []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// TestEveryAlertIsTested checks that each alert has a promtool test case
// in which it fires and one in which it never does, that each rule file is
// tested and each recording rule evaluated by a test.
func TestEveryAlertIsTested(t *testing.T) {
	files, err := filepath.Glob(ruleTestsGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule tests at %s (%v)", ruleTestsGlob, err)
	}
	fires, silent, exprs, tested := map[string]bool{}, map[string]bool{}, "", map[string]bool{}
	for _, f := range files {
		var tf ruleTestFile
		readYAML(t, f, &tf)
		for _, rf := range tf.RuleFiles {
			tested[filepath.Clean(filepath.Join(filepath.Dir(f), rf))] = true
		}
		for _, tc := range tf.Tests {
			// A case is silent for an alert when the alert fires at none
			// of its evaluation times: an empty exp_alerts before a firing
			// one only checks the `for` duration.
			fired := map[string]bool{}
			for _, at := range tc.AlertRuleTest {
				fired[at.Alertname] = fired[at.Alertname] || len(at.ExpAlerts) > 0
			}
			for alert, f := range fired {
				if f {
					fires[alert] = true
				} else {
					silent[alert] = true
				}
			}
			for _, et := range tc.PromQLExprTest {
				exprs += " " + et.Expr
			}
		}
	}
	ruleFiles, _ := filepath.Glob(rulesGlob)
	for _, rf := range ruleFiles {
		if !tested[filepath.Clean(rf)] {
			t.Errorf("%s is in no test's rule_files", rf)
		}
	}
	for _, g := range loadRules(t) {
		for _, r := range g.Rules {
			switch {
			case r.Record != "" && !strings.Contains(exprs, r.Record):
				t.Errorf("recording rule %s is evaluated by no promql_expr_test", r.Record)
			case r.Alert != "" && !fires[r.Alert]:
				t.Errorf("alert %s has no test in which it fires", r.Alert)
			case r.Alert != "" && !silent[r.Alert]:
				t.Errorf("alert %s has no test in which it stays silent", r.Alert)
			}
		}
	}
}
