package allinone_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// accountJSON is an account as the admin API answers it.
type accountJSON struct {
	ID            string `json:"id"`
	Phone         string `json:"phone"`
	Status        string `json:"status"`
	SuspendReason string `json:"suspend_reason"`
}

// TestAdminAccountsAPI drives the data service's account administration
// through the admin gateway: every endpoint refuses anonymous callers
// (401) and app users (403) and answers 400 naming the field for bad
// input; an administrator finds an account and sees its homes and devices;
// a suspended account cannot log in (nor refresh its tokens) until it is
// reinstated; both changes are in the audit log with their reasons.
func TestAdminAccountsAPI(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	mainAPI := call{t, "http://" + p.Addr("main-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}
	admin := adminToken(t, p, authAPI)
	stamp := time.Now().UnixNano() % 1_000_000
	phone := fmt.Sprintf("+7957%06d1", stamp)
	const password = "Comfort-2026"
	user := newAppUser(t, authAPI, mainAPI, phone)
	other := newAppUser(t, authAPI, mainAPI, fmt.Sprintf("+7957%06d2", stamp))
	id := subject(t, user.token)
	login := map[string]string{"username": phone, "password": password}
	refresh := authAPI.tokens("/v1/auth/login", login).RefreshToken

	dev := provisionOne(t, adminAPI, admin, fmt.Sprintf("CT-ACC-%d", stamp))
	if code, env := mainAPI.do(http.MethodPost, "/v1/devices:claim", user.token,
		map[string]string{"serial": dev.Serial, "claim_code": dev.ClaimCode}); code != http.StatusOK {
		t.Fatalf("claim: %d %+v", code, env.Error)
	}
	if code, env := mainAPI.do(http.MethodPost, "/v1/homes", user.token, map[string]string{"name": "Dacha"}); code != http.StatusOK {
		t.Fatalf("create home: %d %+v", code, env.Error)
	}

	account := "/v1/accounts/" + id
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/v1/accounts?phone=" + strings.Replace(phone, "+", "%2B", 1), nil},
		{http.MethodGet, account, nil},
		{http.MethodPost, account + ":suspend", map[string]string{"reason": "test"}},
		{http.MethodPost, account + ":reinstate", map[string]string{"reason": "test"}},
	} {
		expectAdminOnly(t, adminAPI, other.token, c.method, c.path, c.body)
	}
	for _, c := range []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"phone not in E.164", http.MethodGet, "/v1/accounts?phone=89510000000", nil, "phone"},
		{"page too large", http.MethodGet, "/v1/accounts?page_size=501", nil, "page_size"},
		{"account id that is no UUID", http.MethodGet, "/v1/accounts/not-a-uuid", nil, "account_id"},
		{"suspension without a reason", http.MethodPost, account + ":suspend", map[string]string{}, "reason"},
		{"reason too long", http.MethodPost, account + ":reinstate", map[string]string{"reason": strings.Repeat("x", 501)}, "reason"},
	} {
		code, env := adminAPI.do(c.method, c.path, admin, c.body)
		expectInvalid(t, c.name, code, env, c.field)
	}
	code, env := adminAPI.do(http.MethodGet, "/v1/accounts/"+newUUID(t), admin, nil)
	expect(t, "unknown account", code, env, http.StatusNotFound, "NOT_FOUND")

	// Found by exact phone and by part of it; the overview.
	for _, q := range []string{"phone=" + strings.Replace(phone, "+", "%2B", 1), "query=" + phone[5:]} {
		code, env := adminAPI.do(http.MethodGet, "/v1/accounts?"+q, admin, nil)
		items := decode[struct{ Items []accountJSON }](t, env).Items
		if code != http.StatusOK || len(items) != 1 || items[0].ID != id || items[0].Status != "ACCOUNT_STATUS_ACTIVE" {
			t.Errorf("accounts?%s: %d %s", q, code, env.Data)
		}
	}
	code, env = adminAPI.do(http.MethodGet, account, admin, nil)
	overview := decode[struct {
		Account accountJSON
		Homes   []struct{ Name string }
		Devices []struct {
			ID         string `json:"id"`
			AccessRole string `json:"access_role"`
		}
	}](t, env)
	if code != http.StatusOK || overview.Account.Phone != phone || len(overview.Homes) != 1 || overview.Homes[0].Name != "Dacha" ||
		len(overview.Devices) != 1 || overview.Devices[0].ID != dev.DeviceID || overview.Devices[0].AccessRole != "ACCESS_ROLE_OWNER" {
		t.Errorf("overview: %d %s", code, env.Data)
	}

	// Suspended: recorded with its reason, listed as such; the user can
	// no longer log in nor refresh.
	code, env = adminAPI.do(http.MethodPost, account+":suspend", admin, map[string]string{"reason": "chargeback"})
	if acc := decode[struct{ Account accountJSON }](t, env).Account; code != http.StatusOK ||
		acc.Status != "ACCOUNT_STATUS_SUSPENDED" || acc.SuspendReason != "chargeback" {
		t.Fatalf("suspend: %d %s %+v", code, env.Data, env.Error)
	}
	code, env = adminAPI.do(http.MethodGet, "/v1/accounts?status=ACCOUNT_STATUS_SUSPENDED", admin, nil)
	if items := decode[struct{ Items []accountJSON }](t, env).Items; code != http.StatusOK || len(items) != 1 || items[0].ID != id {
		t.Errorf("suspended accounts: %d %s", code, env.Data)
	}
	waitEnabled(t, authAPI, admin, id, false)
	code, env = authAPI.do(http.MethodPost, "/v1/auth/login", "", login)
	expect(t, "login of a suspended account", code, env, http.StatusForbidden, "PERMISSION_DENIED")
	code, env = authAPI.do(http.MethodPost, "/v1/auth/refresh", "", map[string]string{"refresh_token": refresh})
	if code == http.StatusOK {
		t.Errorf("refresh of a suspended account answered %d", code)
	}

	// Reinstated: the same password works again.
	code, env = adminAPI.do(http.MethodPost, account+":reinstate", admin, map[string]string{"reason": "paid"})
	if acc := decode[struct{ Account accountJSON }](t, env).Account; code != http.StatusOK ||
		acc.Status != "ACCOUNT_STATUS_ACTIVE" || acc.SuspendReason != "" {
		t.Fatalf("reinstate: %d %s %+v", code, env.Data, env.Error)
	}
	waitEnabled(t, authAPI, admin, id, true)
	authAPI.tokens("/v1/auth/login", login)

	// Both changes are in the audit log with the operator's reason, after
	// the two refused attempts above.
	evs := auditLog(t, adminAPI, admin, "resource_type=account&resource_id="+id, func(evs []auditEvent) bool { return len(evs) >= 4 })
	if len(evs) != 4 || evs[2].Outcome != "AUDIT_OUTCOME_FAILED" || evs[3].Outcome != "AUDIT_OUTCOME_FAILED" {
		t.Fatalf("account %s: audit events %+v, want two refused attempts, a suspension and a reinstatement", id, evs)
	}
	reinstate, suspend := evs[0], evs[1] // newest first
	if suspend.Action != "account.suspend" || suspend.Reason != "chargeback" || suspend.Outcome != "AUDIT_OUTCOME_SUCCEEDED" ||
		suspend.Before["status"] != "ACCOUNT_STATUS_ACTIVE" || suspend.After["status"] != "ACCOUNT_STATUS_SUSPENDED" ||
		suspend.Actor.AccountID != subject(t, admin) {
		t.Errorf("suspension audit event %+v", suspend)
	}
	if reinstate.Action != "account.reinstate" || reinstate.Reason != "paid" || reinstate.After["status"] != "ACCOUNT_STATUS_ACTIVE" {
		t.Errorf("reinstatement audit event %+v", reinstate)
	}
}

// waitEnabled waits until the identity provider's user of an account is
// enabled or disabled as want: suspensions reach it through
// account.events. (Polling the login instead would run into its rate
// limit.)
func waitEnabled(t testing.TB, authAPI call, admin, id string, want bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, env := authAPI.do(http.MethodGet, "/v1/admin/users/"+id, admin, nil)
		if code != http.StatusOK {
			t.Fatalf("get user: %d %+v", code, env.Error)
		}
		if decode[struct {
			User struct{ Enabled bool }
		}](t, env).User.Enabled == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("user %s never became enabled=%v", id, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
