package allinone_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/comfortech/platform/deployments/allinone"
	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
)

// call sends a JSON request to the platform and decodes the envelope.
type call struct {
	t    testing.TB
	base string
}

type envelope struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Error   struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Field string `json:"field"`
		} `json:"details"`
	} `json:"error"`
}

func (c call) do(method, path, token string, body any) (int, envelope) {
	c.t.Helper()
	return c.doKey(method, path, token, "", body)
}

// doKey is do with an Idempotency-Key header when key is not empty.
func (c call) doKey(method, path, token, key string, body any) (int, envelope) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		c.t.Fatalf("%s %s: %d, not an envelope: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, env
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	TokenType    string `json:"token_type"`
}

func (c call) tokens(path string, body any) tokens {
	c.t.Helper()
	code, env := c.do(http.MethodPost, path, "", body)
	if code != http.StatusOK || !env.Success {
		c.t.Fatalf("POST %s: %d %+v", path, code, env.Error)
	}
	var tk tokens
	if err := json.Unmarshal(env.Data, &tk); err != nil {
		c.t.Fatal(err)
	}
	if tk.AccessToken == "" || tk.RefreshToken == "" || tk.TokenType != "Bearer" || tk.ExpiresIn <= 0 {
		c.t.Fatalf("POST %s answered %+v", path, tk)
	}
	return tk
}

func expect(t testing.TB, what string, code int, env envelope, wantCode int, wantError string) {
	t.Helper()
	if code != wantCode || env.Success || env.Error.Code != wantError {
		t.Fatalf("%s: %d %s %q, want %d %s", what, code, env.Error.Code, env.Error.Message, wantCode, wantError)
	}
}

// expectAdminOnly checks that method path is refused to anonymous callers
// (401) and to an app user's token (403).
func expectAdminOnly(t testing.TB, api call, user, method, path string, body any) {
	t.Helper()
	what := method + " " + path
	code, env := api.do(method, path, "", body)
	expect(t, "anonymous "+what, code, env, http.StatusUnauthorized, "UNAUTHENTICATED")
	code, env = api.do(method, path, user, body)
	expect(t, "app user "+what, code, env, http.StatusForbidden, "PERMISSION_DENIED")
}

// expectInvalid checks a 400 INVALID_ARGUMENT answer whose first detail
// names field.
func expectInvalid(t testing.TB, what string, code int, env envelope, field string) {
	t.Helper()
	expect(t, what, code, env, http.StatusBadRequest, "INVALID_ARGUMENT")
	if len(env.Error.Details) == 0 || env.Error.Details[0].Field != field {
		t.Errorf("%s: %q details %+v, want the field %s", what, env.Error.Message, env.Error.Details, field)
	}
}

// TestIdentityEndToEnd drives the identity flow through the running
// platform with a plain HTTP client: register, login, /me, refresh,
// logout, refresh refused; an admin disables the user and the login is
// refused in the envelope; and the main and admin gateways guard every
// path.
func TestIdentityEndToEnd(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	mainAPI := call{t, "http://" + p.Addr("main-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}

	phone := fmt.Sprintf("+7951%07d", time.Now().UnixNano()%10_000_000)
	const password = "Comfort-2026"
	reg := authAPI.tokens("/v1/auth/register", map[string]string{"phone": phone, "password": password, "name": "Anna"})
	if reg.AccessToken == "" {
		t.Fatal("register returned no token")
	}
	login := authAPI.tokens("/v1/auth/login", map[string]string{"username": phone, "password": password})

	code, env := authAPI.do(http.MethodGet, "/v1/auth/me", login.AccessToken, nil)
	var me struct {
		User struct {
			ID       string `json:"id"`
			Username string `json:"username"`
			Enabled  bool   `json:"enabled"`
		} `json:"user"`
	}
	if err := json.Unmarshal(env.Data, &me); code != http.StatusOK || err != nil || me.User.Username != phone || !me.User.Enabled {
		t.Fatalf("GET /me: %d %s", code, env.Data)
	}

	refreshed := authAPI.tokens("/v1/auth/refresh", map[string]string{"refresh_token": login.RefreshToken})
	if code, env := authAPI.do(http.MethodPost, "/v1/auth/logout", "", map[string]string{"refresh_token": refreshed.RefreshToken}); code != http.StatusOK {
		t.Fatalf("logout: %d %+v", code, env.Error)
	}
	code, env = authAPI.do(http.MethodPost, "/v1/auth/refresh", "", map[string]string{"refresh_token": refreshed.RefreshToken})
	expect(t, "refresh after logout", code, env, http.StatusUnauthorized, "UNAUTHENTICATED")

	admin := authAPI.tokens("/v1/auth/login", map[string]string{"username": "admin", "password": p.AdminPassword.Reveal()})
	code, env = authAPI.do(http.MethodPost, "/v1/admin/users/"+me.User.ID+":disable", admin.AccessToken, map[string]string{"reason": "test"})
	if code != http.StatusOK {
		t.Fatalf("disable: %d %+v", code, env.Error)
	}
	code, env = authAPI.do(http.MethodPost, "/v1/auth/login", "", map[string]string{"username": phone, "password": password})
	expect(t, "login of a disabled user", code, env, http.StatusForbidden, "PERMISSION_DENIED")

	// The guard of the other gateways: anonymous calls are refused, the
	// admin gateway takes only administrators, the documents are public.
	other := authAPI.tokens("/v1/auth/register", map[string]string{"phone": "+7953" + phone[5:], "password": password})
	for _, tc := range []struct {
		api   call
		path  string
		token string
		want  int
		code  string
	}{
		{mainAPI, "/v1/devices", "", http.StatusUnauthorized, "UNAUTHENTICATED"},
		{mainAPI, "/v1/devices", "not-a-token", http.StatusUnauthorized, "UNAUTHENTICATED"},
		{adminAPI, "/v1/fleet/devices", "", http.StatusUnauthorized, "UNAUTHENTICATED"},
		{adminAPI, "/v1/fleet/devices", other.AccessToken, http.StatusForbidden, "PERMISSION_DENIED"},
		{authAPI, "/v1/admin/users", other.AccessToken, http.StatusForbidden, "PERMISSION_DENIED"},
		{authAPI, "/v1/admin/users", "", http.StatusUnauthorized, "UNAUTHENTICATED"},
	} {
		code, env := tc.api.do(http.MethodGet, tc.path, tc.token, nil)
		expect(t, tc.api.base+tc.path, code, env, tc.want, tc.code)
	}
	for _, api := range []call{mainAPI, adminAPI, authAPI} {
		resp, err := http.Get(api.base + "/docs/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s/docs/openapi.json: %d", api.base, resp.StatusCode)
		}
	}
}

func newUUID(t testing.TB) string {
	t.Helper()
	return uuid.NewString()
}

// TestRealmLackingAClient starts the platform on a realm file without the
// comfortech-ops client, as a data directory imported before the client
// existed holds: the start warns about that client, and about no other.
func TestRealmLackingAClient(t *testing.T) {
	raw, err := os.ReadFile(idptest.RealmFile(t))
	if err != nil {
		t.Fatal(err)
	}
	var realm map[string]any
	if err := json.Unmarshal(raw, &realm); err != nil {
		t.Fatal(err)
	}
	without := func(key, field string) {
		var kept []any
		for _, item := range realm[key].([]any) {
			if v, _ := item.(map[string]any)[field].(string); v != "comfortech-ops" {
				kept = append(kept, item)
			}
		}
		realm[key] = kept
	}
	without("clients", "clientId")
	without("users", "serviceAccountClientId")
	raw, _ = json.Marshal(realm)
	file := filepath.Join(t.TempDir(), "realm.json")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := allinone.Start(ctx, allinone.Config{DataDir: t.TempDir(), Host: "127.0.0.1", EphemeralPorts: true,
		KafkaPartitions: 1, RealmFile: file, AdminPassword: "Admin-Passw0rd"}, zap.New(core))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer stop(t, p, cancel)
	var clients []string
	for _, e := range logs.FilterMessageSnippet("lacks this client").All() {
		clients = append(clients, e.ContextMap()["client"].(string))
	}
	if fmt.Sprint(clients) != "[comfortech-ops]" {
		t.Errorf("warned about %v, want comfortech-ops alone", clients)
	}
}
