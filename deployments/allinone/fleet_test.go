package allinone_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/comfortech/platform/deployments/allinone"
)

// provisioned is a device as the admin API answers its provisioning.
type provisioned struct {
	DeviceID  string `json:"device_id"`
	Serial    string `json:"serial"`
	Model     string `json:"model"`
	Secret    string `json:"secret"`
	ClaimCode string `json:"claim_code"`
}

// adminToken logs the platform admin in through the auth gateway.
func adminToken(t testing.TB, p *allinone.Platform, authAPI call) string {
	t.Helper()
	return authAPI.tokens("/v1/auth/login", map[string]string{"username": "admin", "password": p.AdminPassword.Reveal()}).AccessToken
}

// provisionOne provisions one device with serial through the admin gateway.
func provisionOne(t testing.TB, adminAPI call, token, serial string) provisioned {
	t.Helper()
	code, env := adminAPI.do(http.MethodPost, "/v1/fleet/devices:provision", token,
		map[string]string{"serial": serial, "model": "thermostat-t1", "firmware_version": "1.0.0"})
	if code != http.StatusOK {
		t.Fatalf("provision %s: %d %+v", serial, code, env.Error)
	}
	d := decode[struct{ Device provisioned }](t, env).Device
	checkProvisioned(t, d, serial)
	return d
}

// checkProvisioned fails unless d is serial's device with its credentials.
func checkProvisioned(t testing.TB, d provisioned, serial string) {
	t.Helper()
	if d.DeviceID == "" || d.Secret == "" || d.ClaimCode == "" || d.Serial != serial || d.Model != "thermostat-t1" {
		t.Fatalf("provisioned %s: %+v", serial, d)
	}
}

// TestAdminFleetAPI drives the device service's operator API through the
// admin gateway: every endpoint is routed, refuses anonymous callers (401)
// and app users (403); an administrator provisions a device and a batch and
// gets each one's id, secret and claim code; bad input answers 400 naming
// the field, a serial provisioned twice 409.
func TestAdminFleetAPI(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}
	admin := adminToken(t, p, authAPI)

	// The gateway is ready only while the device service behind it is.
	resp, err := http.Get("http://" + p.Addr("admin-gateway", "ops") + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	err = json.NewDecoder(resp.Body).Decode(&ready)
	_ = resp.Body.Close()
	if err != nil || !ready.Ready || ready.Checks["device"] != "ok" {
		t.Fatalf("admin gateway readiness: %+v (%v), want the device service checked", ready, err)
	}
	stamp := time.Now().UnixNano() % 1_000_000
	user := authAPI.tokens("/v1/auth/register", map[string]string{"phone": fmt.Sprintf("+7955%06d1", stamp), "password": "Comfort-2026"}).AccessToken

	serial := fmt.Sprintf("CT-ADM-%d", stamp)
	one := provisionOne(t, adminAPI, admin, serial)
	batch := []map[string]string{
		{"serial": serial + "-1", "model": "thermostat-t1"},
		{"serial": serial + "-2", "model": "thermostat-t1", "claim_code": "PRINTED-0002"},
	}
	code, env := adminAPI.do(http.MethodPost, "/v1/fleet/devices:batch-provision", admin, map[string]any{"requests": batch})
	if code != http.StatusOK {
		t.Fatalf("batch provision: %d %+v", code, env.Error)
	}
	items := decode[struct{ Items []provisioned }](t, env).Items
	if len(items) != len(batch) {
		t.Fatalf("batch provision answered %d devices, want %d", len(items), len(batch))
	}
	for i, d := range items {
		checkProvisioned(t, d, batch[i]["serial"])
	}
	if items[1].ClaimCode != "PRINTED-0002" || items[0].DeviceID == items[1].DeviceID || items[0].Secret == items[1].Secret {
		t.Fatalf("batch devices: %+v", items)
	}

	// Every routed endpoint: refused to anonymous callers and app users,
	// served to the administrator (in this order: decommissioning last).
	dev := "/v1/fleet/devices/" + one.DeviceID
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/v1/fleet/devices:provision", map[string]string{"serial": serial + "-3", "model": "thermostat-t1"}},
		{http.MethodPost, "/v1/fleet/devices:batch-provision", map[string]any{"requests": []map[string]string{{"serial": serial + "-4", "model": "thermostat-t1"}}}},
		{http.MethodGet, dev + "/presence", nil},
		{http.MethodGet, dev + "/presence/events", nil},
		{http.MethodPost, dev + "/commands", map[string]any{"name": "reboot", "ttl": "60s"}},
		{http.MethodGet, dev + "/commands", nil},
		{http.MethodPost, dev + ":rotate-secret", map[string]any{"grace_period": "0s"}},
		{http.MethodPost, dev + ":revoke-secret", map[string]any{"reason": "test"}},
		{http.MethodDelete, dev, nil},
	} {
		what := c.method + " " + c.path
		code, env := adminAPI.do(c.method, c.path, "", c.body)
		expect(t, "anonymous "+what, code, env, http.StatusUnauthorized, "UNAUTHENTICATED")
		code, env = adminAPI.do(c.method, c.path, user, c.body)
		expect(t, "app user "+what, code, env, http.StatusForbidden, "PERMISSION_DENIED")
		if code, env := adminAPI.do(c.method, c.path, admin, c.body); code != http.StatusOK || !env.Success {
			t.Fatalf("admin %s: %d %+v", what, code, env.Error)
		}
	}
	code, env = adminAPI.do(http.MethodGet, dev+"/presence", admin, nil)
	expect(t, "presence of a decommissioned device", code, env, http.StatusNotFound, "NOT_FOUND")

	for _, c := range []struct {
		name, path string
		body       any
		wantCode   int
		wantError  string
		field      string
	}{
		{"short serial", "/v1/fleet/devices:provision", map[string]string{"serial": "x", "model": "thermostat-t1"},
			http.StatusBadRequest, "INVALID_ARGUMENT", "serial"},
		{"bad model", "/v1/fleet/devices:provision", map[string]string{"serial": serial + "-5", "model": "Thermostat T1"},
			http.StatusBadRequest, "INVALID_ARGUMENT", "model"},
		{"bad claim code", "/v1/fleet/devices:provision", map[string]string{"serial": serial + "-5", "model": "thermostat-t1", "claim_code": "a b"},
			http.StatusBadRequest, "INVALID_ARGUMENT", "claim_code"},
		{"empty batch", "/v1/fleet/devices:batch-provision", map[string]any{"requests": []any{}},
			http.StatusBadRequest, "INVALID_ARGUMENT", "requests"},
		{"bad item in a batch", "/v1/fleet/devices:batch-provision", map[string]any{"requests": []map[string]string{
			{"serial": serial + "-6", "model": "thermostat-t1"}, {"serial": "x", "model": "thermostat-t1"}}},
			http.StatusBadRequest, "INVALID_ARGUMENT", "requests[1].serial"},
		{"bad device id", "/v1/fleet/devices/not-a-uuid:rotate-secret", map[string]any{},
			http.StatusBadRequest, "INVALID_ARGUMENT", "device_id"},
		{"serial provisioned twice", "/v1/fleet/devices:provision", map[string]string{"serial": serial + "-1", "model": "thermostat-t1"},
			http.StatusConflict, "ALREADY_EXISTS", ""},
	} {
		code, env := adminAPI.do(http.MethodPost, c.path, admin, c.body)
		expect(t, c.name, code, env, c.wantCode, c.wantError)
		if c.field != "" && (len(env.Error.Details) == 0 || env.Error.Details[0].Field != c.field) {
			t.Errorf("%s: details %+v, want the field %s", c.name, env.Error.Details, c.field)
		}
	}
	// The failed batch left nothing behind: its valid serial is still free.
	code, env = adminAPI.do(http.MethodPost, "/v1/fleet/devices:provision", admin, map[string]string{"serial": serial + "-6", "model": "thermostat-t1"})
	if code != http.StatusOK {
		t.Fatalf("serial of a refused batch: %d %+v", code, env.Error)
	}
}
