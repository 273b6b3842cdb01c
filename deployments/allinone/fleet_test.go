package allinone_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
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
		expectAdminOnly(t, adminAPI, user, c.method, c.path, c.body)
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

// fleetDevice is a device as the fleet registry answers it.
type fleetDevice struct {
	ID             string `json:"id"`
	Serial         string `json:"serial"`
	Model          string `json:"model"`
	OwnerAccountID string `json:"owner_account_id"`
	HomeID         string `json:"home_id"`
	Online         bool   `json:"online"`
}

// fleetPage is one page of GET /v1/fleet/devices.
type fleetPage struct {
	Items         []fleetDevice `json:"items"`
	NextPageToken string        `json:"next_page_token"`
	TotalSize     string        `json:"total_size"` // int64: a JSON string
}

// TestAdminFleetRegistry drives the data service's fleet registry through
// the admin gateway: both endpoints refuse anonymous callers (401) and app
// users (403); an administrator lists the devices provisioned through the
// device service with filters and paging, and sees a claimed device with
// its owner, home, state and alert rules; bad filters answer 400 naming
// the field.
func TestAdminFleetRegistry(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	mainAPI := call{t, "http://" + p.Addr("main-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}
	admin := adminToken(t, p, authAPI)
	stamp := time.Now().UnixNano() % 1_000_000
	owner := newAppUser(t, authAPI, mainAPI, fmt.Sprintf("+7956%06d1", stamp))

	prefix := fmt.Sprintf("CT-REG-%d", stamp)
	var devices []provisioned
	for i := range 3 {
		devices = append(devices, provisionOne(t, adminAPI, admin, fmt.Sprintf("%s-%d", prefix, i)))
	}
	code, env := mainAPI.do(http.MethodPost, "/v1/homes", owner.token, map[string]string{"name": "Flat"})
	if code != http.StatusOK {
		t.Fatalf("create home: %d %+v", code, env.Error)
	}
	home := decode[struct {
		Home struct{ ID string } `json:"home"`
	}](t, env).Home.ID
	claimed := devices[1]
	code, env = mainAPI.do(http.MethodPost, "/v1/devices:claim", owner.token,
		map[string]string{"serial": claimed.Serial, "claim_code": claimed.ClaimCode, "home_id": home})
	if code != http.StatusOK {
		t.Fatalf("claim: %d %+v", code, env.Error)
	}

	list := "/v1/fleet/devices?serial_prefix=" + prefix
	one := "/v1/fleet/devices/" + claimed.DeviceID
	for _, path := range []string{list, one} {
		expectAdminOnly(t, adminAPI, owner.token, http.MethodGet, path, nil)
	}

	// Pages of two by serial, the total on each.
	var serials []string
	path := list + "&page_size=2"
	for range 3 {
		code, env := adminAPI.do(http.MethodGet, path, admin, nil)
		if code != http.StatusOK {
			t.Fatalf("list %s: %d %+v", path, code, env.Error)
		}
		page := decode[fleetPage](t, env)
		if page.TotalSize != "3" {
			t.Errorf("total_size %s, want 3", page.TotalSize)
		}
		for _, d := range page.Items {
			serials = append(serials, d.Serial)
		}
		if page.NextPageToken == "" {
			break
		}
		path = list + "&page_size=2&page_token=" + url.QueryEscape(page.NextPageToken)
	}
	if want := fmt.Sprintf("[%[1]s-0 %[1]s-1 %[1]s-2]", prefix); fmt.Sprint(serials) != want {
		t.Errorf("paged serials %v, want %s", serials, want)
	}
	// Every kind of filter in a query string: the claimed device alone.
	code, env = adminAPI.do(http.MethodGet, list+"&claimed=true&online=false&model=thermostat-t1&firmware_version=1.0.0"+
		"&owner_account_id="+subject(t, owner.token)+"&home_id="+home+"&last_seen_before=2100-01-01T00:00:00Z", admin, nil)
	if page := decode[fleetPage](t, env); code != http.StatusOK || len(page.Items) != 1 || page.Items[0].ID != claimed.DeviceID ||
		page.Items[0].HomeID != home || page.TotalSize != "1" {
		t.Errorf("filtered list: %d %s", code, env.Data)
	}
	code, env = adminAPI.do(http.MethodGet, list+"&claimed=false", admin, nil)
	if page := decode[fleetPage](t, env); code != http.StatusOK || len(page.Items) != 2 || page.TotalSize != "2" {
		t.Errorf("unclaimed devices: %d %s", code, env.Data)
	}

	code, env = adminAPI.do(http.MethodGet, one, admin, nil)
	if code != http.StatusOK {
		t.Fatalf("get fleet device: %d %+v", code, env.Error)
	}
	fd := decode[struct {
		Device struct {
			Device fleetDevice            `json:"device"`
			Owner  struct{ Phone string } `json:"owner"`
			Home   struct{ Name string }  `json:"home"`
			State  struct {
				DeviceID string `json:"device_id"`
			} `json:"state"`
			AlertRules []json.RawMessage          `json:"alert_rules"`
			Latest     map[string]json.RawMessage `json:"latest_telemetry"`
		} `json:"device"`
	}](t, env).Device
	if fd.Device.ID != claimed.DeviceID || fd.Device.OwnerAccountID != subject(t, owner.token) || fd.Owner.Phone != owner.phone ||
		fd.Home.Name != "Flat" || fd.State.DeviceID != claimed.DeviceID || fd.AlertRules == nil || fd.Latest == nil {
		t.Errorf("fleet device: %s", env.Data)
	}

	for _, c := range []struct{ name, path, field string }{
		{"page too large", "/v1/fleet/devices?page_size=1001", "page_size"},
		{"model that is no model id", "/v1/fleet/devices?model=Thermostat%20T1", "model"},
		{"owner that is no UUID", "/v1/fleet/devices?owner_account_id=nope", "owner_account_id"},
		{"home that is no UUID", "/v1/fleet/devices?home_id=nope", "home_id"},
		{"prefix no serial can have", "/v1/fleet/devices?serial_prefix=CT_1", "serial_prefix"},
		{"empty time range", "/v1/fleet/devices?last_seen_after=2026-01-02T00:00:00Z&last_seen_before=2026-01-01T00:00:00Z", "last_seen_before"},
		{"foreign page token", "/v1/fleet/devices?page_token=e30", "page_token"},
		{"device id that is no UUID", "/v1/fleet/devices/not-a-uuid", "device_id"},
	} {
		code, env := adminAPI.do(http.MethodGet, c.path, admin, nil)
		expectInvalid(t, c.name, code, env, c.field)
	}
	code, env = adminAPI.do(http.MethodGet, "/v1/fleet/devices/"+newUUID(t), admin, nil)
	expect(t, "unknown device", code, env, http.StatusNotFound, "NOT_FOUND")
}

// subject returns the sub claim (the account id) of an access token the
// platform issued.
func subject(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct{ Sub string }
	if err == nil {
		err = json.Unmarshal(payload, &claims)
	}
	if err != nil || claims.Sub == "" {
		t.Fatalf("token claims: %v", err)
	}
	return claims.Sub
}
