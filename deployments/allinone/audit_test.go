package allinone_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// auditEvent is an audit event as GET /v1/audit lists it.
type auditEvent struct {
	ID           string
	Action       string
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
	Outcome      string
	Reason       string
	Actor        struct {
		AccountID string `json:"account_id"`
		Username  string
		ClientID  string `json:"client_id"`
		Roles     []string
		IP        string
	}
	Before, After map[string]any
}

// auditLog polls GET /v1/audit with query until want(events) holds.
func auditLog(t *testing.T, adminAPI call, token, query string, want func([]auditEvent) bool) []auditEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, env := adminAPI.do(http.MethodGet, "/v1/audit?"+query, token, nil)
		if code != http.StatusOK {
			t.Fatalf("audit log %s: %d %+v", query, code, env.Error)
		}
		evs := decode[struct{ Items []auditEvent }](t, env).Items
		if want(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit log %s: %+v", query, evs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAuditLog: operator actions on the device, data and notify services
// and the auth gateway's user administration reach the audit log — who, what, on which resource, before and after,
// never a secret — and GET /v1/audit filters and pages it, for
// administrators only.
func TestAuditLog(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}
	admin := adminToken(t, p, authAPI)
	stamp := time.Now().UnixNano() % 1_000_000
	user := authAPI.tokens("/v1/auth/register", map[string]string{"phone": fmt.Sprintf("+7957%06d1", stamp), "password": "Comfort-2026"}).AccessToken
	code, env := authAPI.do(http.MethodGet, "/v1/auth/me", user, nil)
	userID := decode[struct{ User struct{ ID string } }](t, env).User.ID
	if code != http.StatusOK || userID == "" {
		t.Fatalf("me: %d %+v", code, env.Error)
	}

	// Actions on three services.
	dev := provisionOne(t, adminAPI, admin, fmt.Sprintf("CT-AUD-%d", stamp))
	if code, env := adminAPI.do(http.MethodPost, "/v1/fleet/devices/"+dev.DeviceID+":revoke-secret", admin, map[string]string{"reason": "lost in transit"}); code != http.StatusOK {
		t.Fatalf("revoke: %d %+v", code, env.Error)
	}
	model := map[string]any{"title": "Audit thermostat", "commands": []string{"reboot"}}
	for _, title := range []string{"Audit thermostat", "Audit thermostat v2"} {
		model["title"] = title
		if code, env := adminAPI.do(http.MethodPut, "/v1/device-models/audit-t1", admin, model); code != http.StatusOK {
			t.Fatalf("put model: %d %+v", code, env.Error)
		}
	}
	if code, env := adminAPI.do(http.MethodPut, "/v1/notifications/applications/audited", admin, map[string]any{
		"title": "Audited", "event_types": []map[string]any{{"id": "ping", "title": "Ping", "levels": []string{"info"}}},
	}); code != http.StatusOK {
		t.Fatalf("put application: %d %+v", code, env.Error)
	}
	// A refused action is recorded too.
	if code, _ := adminAPI.do(http.MethodPost, "/v1/fleet/devices/"+dev.DeviceID+":rotate-secret", admin, map[string]any{"grace_period": "0s"}); code != http.StatusOK {
		t.Logf("rotation of a revoked device answered %d", code)
	}

	// User administration, in the auth gateway.
	if code, env := authAPI.do(http.MethodPost, "/v1/admin/users/"+userID+":reset-password", admin,
		map[string]any{"new_password": "Secret-Pass-9", "temporary": false}); code != http.StatusOK {
		t.Fatalf("reset password: %d %+v", code, env.Error)
	}
	if code, env := authAPI.do(http.MethodPost, "/v1/admin/users/"+userID+":disable", admin, map[string]string{"reason": "chargeback"}); code != http.StatusOK {
		t.Fatalf("disable user: %d %+v", code, env.Error)
	}
	users := auditLog(t, adminAPI, admin, "resource_type=user&resource_id="+userID, func(evs []auditEvent) bool { return len(evs) >= 2 })
	if disable, reset := users[0], users[1]; disable.Action != "user.disable" || disable.Reason != "chargeback" ||
		disable.Before["enabled"] != true || disable.After["enabled"] != nil || // false is left out of protojson
		reset.Action != "user.reset_password" || reset.Before["id"] != userID || strings.Contains(fmt.Sprint(reset), "Secret-Pass-9") {
		t.Errorf("user administration events: %+v", users)
	}

	byDevice := auditLog(t, adminAPI, admin, "resource_type=device&resource_id="+dev.DeviceID, func(evs []auditEvent) bool { return len(evs) >= 3 })
	if len(byDevice) != 3 {
		t.Fatalf("device %s has %d audit events, want provision, revoke, rotate: %+v", dev.DeviceID, len(byDevice), byDevice)
	}
	rotate, revoke, provision := byDevice[0], byDevice[1], byDevice[2] // newest first
	if provision.Action != "device.provision" || provision.Outcome != "AUDIT_OUTCOME_SUCCEEDED" || provision.Before != nil ||
		provision.After["device_id"] != dev.DeviceID || provision.After["serial"] != dev.Serial {
		t.Errorf("provision event: %+v", provision)
	}
	if revoke.Action != "device.revoke_secret" || revoke.Reason != "lost in transit" ||
		revoke.Before["revoked"] != false || revoke.Before["secret_set"] != true {
		t.Errorf("revoke event: %+v", revoke)
	}
	if rotate.Action != "device.rotate_secret" || rotate.Before["revoked"] != true {
		t.Errorf("rotate event (after a revoke): %+v", rotate)
	}
	for _, e := range byDevice {
		a := e.Actor
		if a.Username != "admin" || a.AccountID == "" || a.ClientID == "" || a.IP == "" || !strings.Contains(strings.Join(a.Roles, ","), "admin") {
			t.Errorf("%s: actor %+v", e.Action, a)
		}
		for _, secret := range []string{dev.Secret, dev.ClaimCode} {
			if strings.Contains(fmt.Sprint(e.Before, e.After), secret) {
				t.Errorf("%s: a secret is in the audit log: %+v", e.Action, e)
			}
		}
	}

	models := auditLog(t, adminAPI, admin, "action=device_model.put&resource_id=audit-t1", func(evs []auditEvent) bool { return len(evs) >= 2 })
	if len(models) != 2 || models[0].Before["title"] != "Audit thermostat" || models[0].After["title"] != "Audit thermostat v2" || models[1].Before != nil {
		t.Errorf("device model events: %+v", models)
	}
	apps := auditLog(t, adminAPI, admin, "resource_type=notification_application", func(evs []auditEvent) bool { return len(evs) >= 1 })
	if apps[0].ResourceID != "audited" || apps[0].Action != "notification_application.put" {
		t.Errorf("catalog event: %+v", apps[0])
	}

	// Filters: an area prefix, the actor, a time window; paging.
	actor := byDevice[0].Actor.AccountID
	area := auditLog(t, adminAPI, admin, "action=device.&actor_id="+actor, func(evs []auditEvent) bool { return len(evs) >= 3 })
	for _, e := range area {
		if !strings.HasPrefix(e.Action, "device.") {
			t.Errorf("action=device. listed %s", e.Action)
		}
	}
	future := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	auditLog(t, adminAPI, admin, "start_time="+future, func(evs []auditEvent) bool { return len(evs) == 0 })
	code, env = adminAPI.do(http.MethodGet, "/v1/audit?page_size=2", admin, nil)
	page := decode[struct {
		Items []auditEvent
		Next  string `json:"next_page_token"`
	}](t, env)
	if code != http.StatusOK || len(page.Items) != 2 || page.Next == "" {
		t.Fatalf("first page: %d %+v", code, page)
	}
	code, env = adminAPI.do(http.MethodGet, "/v1/audit?page_size=2&page_token="+url.QueryEscape(page.Next), admin, nil)
	next := decode[struct{ Items []auditEvent }](t, env).Items
	if code != http.StatusOK || len(next) == 0 || next[0].ID == page.Items[0].ID || next[0].ID == page.Items[1].ID {
		t.Fatalf("second page: %d %+v", code, next)
	}

	for _, c := range []struct{ query, field string }{{"page_size=5000", "page_size"}, {"actor_id=anna", "actor_id"}, {"page_token=nope", "page_token"}} {
		code, env := adminAPI.do(http.MethodGet, "/v1/audit?"+c.query, admin, nil)
		expectInvalid(t, c.query, code, env, c.field)
	}
	for _, path := range []string{"/v1/audit", "/v1/device-models", "/v1/device-models/audit-t1"} {
		expectAdminOnly(t, adminAPI, user, http.MethodGet, path, nil)
	}
	for _, c := range []struct{ method, path string }{{http.MethodPut, "/v1/device-models/audit-t1"}, {http.MethodDelete, "/v1/device-models/audit-t1"}} {
		code, env := adminAPI.do(c.method, c.path, user, model)
		expect(t, "app user "+c.method+" "+c.path, code, env, http.StatusForbidden, "PERMISSION_DENIED")
	}
	if code, env := adminAPI.do(http.MethodDelete, "/v1/device-models/audit-t1", admin, nil); code != http.StatusOK {
		t.Fatalf("delete model: %d %+v", code, env.Error)
	}
	auditLog(t, adminAPI, admin, "action=device_model.delete", func(evs []auditEvent) bool {
		return len(evs) == 1 && evs[0].Before["title"] == "Audit thermostat v2" && evs[0].After == nil
	})
}
