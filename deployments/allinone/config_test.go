package allinone_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// configChange is one item of an apply's answer.
type configChange struct {
	Kind, Name, Action, Diff string
}

// applyConfig posts a document to POST /v1/config:apply.
func applyConfig(t *testing.T, adminAPI call, token, doc string, dryRun, prune bool) ([]configChange, bool) {
	t.Helper()
	code, env := adminAPI.do(http.MethodPost, "/v1/config:apply", token, map[string]any{"document": doc, "dry_run": dryRun, "prune": prune})
	if code != http.StatusOK {
		t.Fatalf("apply (dry run %v): %d %+v", dryRun, code, env.Error)
	}
	r := decode[struct {
		Items   []configChange
		Changed bool
	}](t, env)
	return r.Items, r.Changed
}

// actions summarises changes as "Kind/name=ACTION" in order.
func actions(cs []configChange) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Kind+"/"+c.Name+"="+strings.TrimPrefix(c.Action, "CHANGE_ACTION_"))
	}
	return strings.Join(out, " ")
}

// TestEnvironmentConfig applies the sample environment through the admin
// gateway: a dry run shows every item created with its diff and changes
// nothing; the apply creates them; a second apply changes nothing; an edit
// is an update with its diff; prune deletes what the document leaves out;
// the exported configuration applies as unchanged; a bad document answers
// 400 naming the field; only administrators pass.
func TestEnvironmentConfig(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}
	admin := adminToken(t, p, authAPI)
	user := authAPI.tokens("/v1/auth/register", map[string]string{
		"phone": fmt.Sprintf("+7958%06d1", time.Now().UnixNano()%1_000_000), "password": "Comfort-2026"}).AccessToken
	b, err := os.ReadFile("../environments/sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sample := string(b)
	created := "DeviceModel/thermostat-t1=CREATE DeviceModel/air-purifier-a2=CREATE Application/maintenance=CREATE Subscription/crm-device-presence=CREATE"

	changes, changed := applyConfig(t, adminAPI, admin, sample, true, false)
	if got := actions(changes); got != created || !changed {
		t.Fatalf("dry run: %s (changed %v), want %s", got, changed, created)
	}
	if !strings.Contains(changes[0].Diff, "+title: Comfort T1 thermostat") || !strings.Contains(changes[2].Diff, "- CHANNEL_EMAIL") {
		t.Errorf("dry-run diffs:\n%s\n%s", changes[0].Diff, changes[2].Diff)
	}
	if code, env := adminAPI.do(http.MethodGet, "/v1/device-models/thermostat-t1", admin, nil); code != http.StatusNotFound {
		t.Fatalf("a dry run created the model: %d %+v", code, env)
	}

	if changes, changed := applyConfig(t, adminAPI, admin, sample, false, false); actions(changes) != created || !changed {
		t.Fatalf("apply: %s (changed %v)", actions(changes), changed)
	}
	code, env := adminAPI.do(http.MethodGet, "/v1/device-models/thermostat-t1", admin, nil)
	model := decode[struct {
		Model struct {
			Title             string
			DefaultAlertRules []struct{ Name string } `json:"default_alert_rules"`
		}
	}](t, env).Model
	if code != http.StatusOK || model.Title != "Comfort T1 thermostat" || len(model.DefaultAlertRules) != 2 {
		t.Fatalf("applied model: %d %+v", code, model)
	}
	code, env = adminAPI.do(http.MethodGet, "/v1/notifications/applications/maintenance", admin, nil)
	if code != http.StatusOK || !strings.Contains(string(env.Data), `"CHANNEL_EMAIL"`) {
		t.Fatalf("applied application: %d %s", code, env.Data)
	}
	code, env = adminAPI.do(http.MethodGet, "/v1/subscriptions/crm-device-presence", admin, nil)
	if code != http.StatusOK || !strings.Contains(string(env.Data), `"FILTER_OPERATOR_EXACT"`) {
		t.Fatalf("applied subscription: %d %s", code, env.Data)
	}

	unchanged := "DeviceModel/thermostat-t1=UNCHANGED DeviceModel/air-purifier-a2=UNCHANGED Application/maintenance=UNCHANGED Subscription/crm-device-presence=UNCHANGED"
	if changes, changed := applyConfig(t, adminAPI, admin, sample, false, false); actions(changes) != unchanged || changed {
		t.Fatalf("second apply: %s (changed %v), want %s", actions(changes), changed, unchanged)
	}

	edited := strings.Replace(sample, "title: Comfort A2 air purifier", "title: Comfort A2+ air purifier", 1)
	changes, _ = applyConfig(t, adminAPI, admin, edited, false, false)
	if got := actions(changes); got != strings.Replace(unchanged, "air-purifier-a2=UNCHANGED", "air-purifier-a2=UPDATE", 1) ||
		!strings.Contains(changes[1].Diff, "-title: Comfort A2 air purifier\n+title: Comfort A2+ air purifier") {
		t.Fatalf("edit: %s\n%s", got, changes[1].Diff)
	}

	// Prune, on the device models only: the document lists no applications.
	if code, env := adminAPI.do(http.MethodPut, "/v1/device-models/legacy-x", admin, map[string]any{"title": "Legacy"}); code != http.StatusOK {
		t.Fatalf("put legacy model: %d %+v", code, env.Error)
	}
	modelsOnly := sample[:strings.Index(sample, "# Notification applications")]
	if !strings.Contains(modelsOnly, "device_models:") || strings.Contains(modelsOnly, "subscriptions:") {
		t.Fatalf("the sample's sections moved:\n%s", modelsOnly)
	}
	changes, _ = applyConfig(t, adminAPI, admin, modelsOnly, true, true)
	if got := actions(changes); !strings.Contains(got, "DeviceModel/legacy-x=DELETE") || strings.Contains(got, "Application") {
		t.Fatalf("prune dry run: %s", got)
	}
	if code, _ := adminAPI.do(http.MethodGet, "/v1/device-models/legacy-x", admin, nil); code != http.StatusOK {
		t.Fatal("a dry run pruned the model")
	}
	applyConfig(t, adminAPI, admin, modelsOnly, false, true)
	if code, _ := adminAPI.do(http.MethodGet, "/v1/device-models/legacy-x", admin, nil); code != http.StatusNotFound {
		t.Fatalf("pruned model still there: %d", code)
	}

	code, env = adminAPI.do(http.MethodGet, "/v1/config", admin, nil)
	if code != http.StatusOK {
		t.Fatalf("export: %d %+v", code, env.Error)
	}
	exported := decode[struct{ Document string }](t, env).Document
	if changes, changed := applyConfig(t, adminAPI, admin, exported, false, true); changed {
		t.Fatalf("the exported configuration changes something: %s\n%s", actions(changes), exported)
	}

	for _, c := range []struct{ name, doc, field string }{
		{"no apiVersion", "device_models: []", "document"},
		{"unknown section", "apiVersion: comfortech/v1\nwidgets: []", "document"},
		{"not YAML", "apiVersion: [", "document"},
		{"section not a list", "apiVersion: comfortech/v1\ndevice_models: {id: x}", "device_models"},
		{"unknown item field", "apiVersion: comfortech/v1\ndevice_models:\n  - {id: x1, title: X, colour: red}", "device_models[0]"},
		{"invalid item field", "apiVersion: comfortech/v1\ndevice_models:\n  - {id: x1, title: ''}", "device_models[0].title"},
		{"listed twice", "apiVersion: comfortech/v1\ndevice_models:\n  - {id: x1, title: X}\n  - {id: x1, title: Y}", "device_models[1]"},
		{"bad channel", "apiVersion: comfortech/v1\napplications:\n  - {name: a1, title: A, event_types: [{id: e, title: E, levels: [info], default_channels: [pigeon]}]}", "applications[0]"},
	} {
		code, env := adminAPI.do(http.MethodPost, "/v1/config:apply", admin, map[string]any{"document": c.doc})
		expectInvalid(t, c.name, code, env, c.field)
	}
	if code, _ := adminAPI.do(http.MethodGet, "/v1/device-models/x1", admin, nil); code != http.StatusNotFound {
		t.Error("a refused document left an item behind")
	}

	for _, c := range []struct {
		method, path string
		body         any
	}{{http.MethodPost, "/v1/config:apply", map[string]any{"document": sample}}, {http.MethodGet, "/v1/config", nil}} {
		expectAdminOnly(t, adminAPI, user, c.method, c.path, c.body)
	}
}
