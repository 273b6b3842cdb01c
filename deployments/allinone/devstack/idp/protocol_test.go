package idp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Nerzal/gocloak/v13"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp"
	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
)

// answer is a raw HTTP answer.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func call(t *testing.T, method, u string, form url.Values, header map[string]string) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") || strings.HasSuffix(ct, "+json") {
		if err := json.Unmarshal(raw, &a.body); err != nil && !strings.HasPrefix(string(raw), "[") && !strings.HasPrefix(string(raw), "\"") {
			t.Fatalf("%s %s: JSON body %q: %v", method, u, raw, err)
		}
	} else if len(raw) > 0 && strings.HasPrefix(strings.TrimSpace(string(raw)), "{") {
		t.Fatalf("%s %s: JSON body under Content-Type %q", method, u, resp.Header.Get("Content-Type"))
	}
	return a
}

func TestDiscoveryAndKeys(t *testing.T) {
	t.Parallel()
	srv := idptest.Start(t)
	o := srv.Issuer() + "/protocol/openid-connect"

	d := call(t, "GET", srv.Issuer()+"/.well-known/openid-configuration", nil, nil)
	if d.status != 200 || d.body["issuer"] != srv.Issuer() {
		t.Fatalf("discovery = %d %v", d.status, d.body["issuer"])
	}
	for k, want := range map[string]string{
		"authorization_endpoint": o + "/auth", "token_endpoint": o + "/token", "introspection_endpoint": o + "/token/introspect",
		"userinfo_endpoint": o + "/userinfo", "end_session_endpoint": o + "/logout", "jwks_uri": o + "/certs",
		"revocation_endpoint": o + "/revoke", "check_session_iframe": o + "/login-status-iframe.html",
		"registration_endpoint": srv.Issuer() + "/clients-registrations/openid-connect",
	} {
		if d.body[k] != want {
			t.Errorf("%s = %v, want %s", k, d.body[k], want)
		}
	}
	grants := d.body["grant_types_supported"].([]any)
	for _, g := range []string{"authorization_code", "implicit", "refresh_token", "password", "client_credentials",
		"urn:openid:params:grant-type:ciba", "urn:ietf:params:oauth:grant-type:device_code"} {
		if !containsAny(grants, g) {
			t.Errorf("grant_types_supported lacks %s", g)
		}
	}
	if s := d.body["scopes_supported"].([]any); s[0] != "openid" {
		t.Errorf("scopes_supported = %v", s)
	}
	if d.body["mtls_endpoint_aliases"] == nil || d.body["claims_parameter_supported"] != true {
		t.Error("mtls_endpoint_aliases or claims_parameter_supported missing")
	}

	certs := call(t, "GET", o+"/certs", nil, nil)
	if certs.header.Get("Content-Type") != "application/json" || len(certs.body["keys"].([]any)) != 2 {
		t.Fatalf("certs = %s %v", certs.header.Get("Content-Type"), certs.raw)
	}
	jwkSet := call(t, "GET", o+"/certs", nil, map[string]string{"Accept": "application/jwk-set+json"})
	if jwkSet.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("certs with jwk-set Accept = %s", jwkSet.header.Get("Content-Type"))
	}

	for _, path := range []string{"/realms/nowhere", "/realms/nowhere/.well-known/openid-configuration", "/realms/nowhere/protocol/openid-connect/certs"} {
		a := call(t, "GET", srv.URL+path, nil, nil)
		if a.status != 404 || a.body["error"] != "Realm does not exist" {
			t.Errorf("GET %s = %d %s", path, a.status, a.raw)
		}
	}
}

func containsAny(list []any, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestTokenEndpointWire(t *testing.T) {
	t.Parallel()
	srv := idptest.Start(t)
	tokenURL := srv.Issuer() + "/protocol/openid-connect/token"
	user := srv.CreateUser(t, "+79070000001")
	secret := srv.ClientSecret(t, mainGateway)

	tests := []struct {
		name   string
		form   url.Values
		header map[string]string
		status int
		err    string
		desc   string
	}{
		{"no grant_type", url.Values{"client_id": {appClient}}, nil, 400, "invalid_request", "Missing form parameter: grant_type"},
		{"unknown grant", url.Values{"grant_type": {"magic"}, "client_id": {appClient}}, nil, 400, "unsupported_grant_type", "Unsupported grant_type"},
		{"no client_id", url.Values{"grant_type": {"password"}}, nil, 400, "invalid_client", "Missing client_id parameter"},
		{"client_secret_post", url.Values{"grant_type": {"client_credentials"}, "client_id": {mainGateway}, "client_secret": {secret}}, nil, 200, "", ""},
		{"Basic with URL-encoded parts", url.Values{"grant_type": {"client_credentials"}},
			map[string]string{"Authorization": basic(url.QueryEscape(mainGateway), url.QueryEscape(secret))}, 200, "", ""},
		{"form client_id overrides Basic", url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}},
			map[string]string{"Authorization": basic(mainGateway, secret)}, 401, "invalid_client", "Invalid client or Invalid client credentials"},
		{"public client cannot use client_credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {appClient}}, nil, 401, "unauthorized_client", ""},
		{"unknown parameters are ignored", url.Values{"grant_type": {"password"}, "client_id": {appClient}, "username": {user.Username},
			"password": {user.Password}, "response_type": {"token"}, "foo": {"bar"}}, nil, 200, "", ""},
		{"invalid scope", url.Values{"grant_type": {"password"}, "client_id": {appClient}, "username": {user.Username},
			"password": {user.Password}, "scope": {"openid nonsense"}}, nil, 400, "invalid_scope", ""},
		{"bearer-only client", url.Values{"grant_type": {"password"}, "client_id": {"realm-management"}}, nil, 400, "invalid_client", "Bearer-only not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := call(t, "POST", tokenURL, tc.form, tc.header)
			if a.status != tc.status || a.header.Get("Content-Type") != "application/json" {
				t.Fatalf("= %d %s %s", a.status, a.header.Get("Content-Type"), a.raw)
			}
			if tc.err != "" && (a.body["error"] != tc.err || (tc.desc != "" && a.body["error_description"] != tc.desc)) {
				t.Fatalf("body = %s", a.raw)
			}
			if tc.status == 200 {
				if _, isFloat := a.body["expires_in"].(float64); !isFloat || strings.Contains(a.raw, `"expires_in":300.`) {
					t.Fatalf("expires_in = %v", a.body["expires_in"])
				}
			}
		})
	}
}

func basic(id, secret string) string {
	req, _ := http.NewRequest("GET", "http://x", nil)
	req.SetBasicAuth(id, secret)
	return req.Header.Get("Authorization")
}

func TestUserinfoAndIntrospectionWire(t *testing.T) {
	t.Parallel()
	srv := idptest.Start(t)
	o := srv.Issuer() + "/protocol/openid-connect"
	user := srv.CreateUser(t, "+79080000001")
	tok := srv.Login(t, user.Username, user.Password)
	svcSecret := srv.ClientSecret(t, mainGateway)
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	a := call(t, "GET", o+"/userinfo", nil, nil)
	if a.status != 401 || a.header.Get("WWW-Authenticate") != `Bearer realm="comfortech"` || a.raw != "" {
		t.Fatalf("no token = %d %q %q", a.status, a.header.Get("WWW-Authenticate"), a.raw)
	}
	a = call(t, "GET", o+"/userinfo", nil, bearer("x.y.z"))
	if a.status != 401 || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token", error_description="Token verification failed"`) {
		t.Fatalf("bad token = %d %q", a.status, a.header.Get("WWW-Authenticate"))
	}
	svc := srv.ServiceToken(t, mainGateway)
	a = call(t, "GET", o+"/userinfo", nil, bearer(svc))
	if a.status != 403 || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="insufficient_scope", error_description="Missing openid scope"`) {
		t.Fatalf("no openid scope = %d %q", a.status, a.header.Get("WWW-Authenticate"))
	}
	a = call(t, "POST", o+"/userinfo", url.Values{"access_token": {tok.AccessToken}}, nil)
	if a.status != 200 || a.body["sub"] != user.ID {
		t.Fatalf("userinfo by form = %d %s", a.status, a.raw)
	}

	introspect := func(form url.Values, auth map[string]string) answer {
		return call(t, "POST", o+"/token/introspect", form, auth)
	}
	svcAuth := map[string]string{"Authorization": basic(mainGateway, svcSecret)}
	a = introspect(url.Values{"token": {tok.AccessToken}, "client_id": {appClient}}, nil)
	if a.status != 403 || a.body["error"] != "invalid_request" || a.body["error_description"] != "Client not allowed." {
		t.Fatalf("public client = %d %s", a.status, a.raw)
	}
	a = introspect(url.Values{}, svcAuth)
	if a.status != 400 || a.body["error_description"] != "Token not provided." {
		t.Fatalf("no token = %d %s", a.status, a.raw)
	}
	a = introspect(url.Values{"token": {tok.AccessToken}, "token_type_hint": {"x"}}, svcAuth)
	if a.status != 400 || a.body["error_description"] != "Unsupported token type [x]." {
		t.Fatalf("bad hint = %d %s", a.status, a.raw)
	}
	a = introspect(url.Values{"token": {tok.AccessToken}}, svcAuth)
	if a.status != 200 || a.body["active"] != true || a.body["username"] != user.Username || a.body["client_id"] != appClient || a.body["token_type"] != "Bearer" {
		t.Fatalf("active = %s", a.raw)
	}
	a = introspect(url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, svcAuth)
	if a.status != 200 || a.body["active"] != true || a.body["typ"] != "Refresh" {
		t.Fatalf("refresh token = %s", a.raw)
	}
	a = introspect(url.Values{"token": {"garbage"}}, svcAuth)
	if a.status != 200 || a.raw != `{"active":false}` {
		t.Fatalf("garbage = %s", a.raw)
	}

	// Revocation: the access token first, then the session by its refresh token.
	revoke := func(tok string) answer {
		return call(t, "POST", o+"/revoke", url.Values{"token": {tok}, "client_id": {appClient}}, nil)
	}
	tok2 := srv.Login(t, user.Username, user.Password)
	if a := revoke(tok2.AccessToken); a.status != 200 {
		t.Fatalf("revoke = %d %s", a.status, a.raw)
	}
	if a := introspect(url.Values{"token": {tok2.AccessToken}}, svcAuth); a.body["active"] != false {
		t.Fatalf("revoked access token = %s", a.raw)
	}
	if a := revoke(tok2.RefreshToken); a.status != 200 {
		t.Fatalf("revoke refresh = %d %s", a.status, a.raw)
	}
	a = call(t, "POST", o+"/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {appClient}, "refresh_token": {tok2.RefreshToken}}, nil)
	if a.status != 400 || a.body["error_description"] != "Session not active" {
		t.Fatalf("refresh after revoke = %d %s", a.status, a.raw)
	}

	// A disabled user: userinfo says so.
	master := srv.MasterToken(t)
	gc := gocloak.NewClient(srv.URL)
	if err := gc.UpdateUser(context.Background(), master, realm, gocloak.User{ID: &user.ID, Enabled: gocloak.BoolP(false)}); err != nil {
		t.Fatal(err)
	}
	a = call(t, "GET", o+"/userinfo", nil, bearer(tok.AccessToken))
	if a.status != 401 || !strings.Contains(a.header.Get("WWW-Authenticate"), `error_description="User disabled"`) {
		t.Fatalf("disabled = %d %q", a.status, a.header.Get("WWW-Authenticate"))
	}
	// Browser logout (no refresh token) is a page, not JSON.
	a = call(t, "POST", o+"/logout", url.Values{"client_id": {appClient}}, nil)
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Fatalf("browser logout = %d %s", a.status, a.header.Get("Content-Type"))
	}
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Now()}
	srv := idptest.Start(t, func(c *idp.Config) { c.Clock = clk.now })
	ctx := context.Background()
	gc := gocloak.NewClient(srv.URL)
	user := srv.CreateUser(t, "+79090000001")
	svcSecret := srv.ClientSecret(t, authGateway)

	tok := must[*gocloak.JWT](t)(gc.Login(ctx, appClient, "", realm, user.Username, user.Password))
	clk.advance(301 * time.Second)
	res := must[*gocloak.IntroSpectTokenResult](t)(gc.RetrospectToken(ctx, tok.AccessToken, authGateway, svcSecret, realm))
	if *res.Active {
		t.Fatal("expired access token active")
	}
	// Refreshing inside the idle timeout keeps the session alive...
	tok = must[*gocloak.JWT](t)(gc.RefreshToken(ctx, tok.RefreshToken, appClient, "", realm))
	clk.advance(1700 * time.Second)
	tok = must[*gocloak.JWT](t)(gc.RefreshToken(ctx, tok.RefreshToken, appClient, "", realm))
	// ...and idling past it ends it.
	clk.advance(1801 * time.Second)
	_, err := gc.RefreshToken(ctx, tok.RefreshToken, appClient, "", realm)
	apiError(t, err, 400, "invalid_grant: Token is not active")
}
