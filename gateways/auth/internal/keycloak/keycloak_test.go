package keycloak_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/comfortech/platform/gateways/auth/internal/app"
	"github.com/comfortech/platform/gateways/auth/internal/keycloak"
)

// These tests pin the mapping of every Keycloak answer the adapter relies
// on (contracts/keycloak-subset.md §5) by serving those answers, byte for
// byte as the contract documents them, to the real gocloak client.

const realm = "comfortech"

// answer is one HTTP answer of the fake server.
type answer struct {
	status int
	body   string // JSON unless ctype says otherwise
	ctype  string
}

func (a answer) write(w http.ResponseWriter) {
	ct := a.ctype
	if ct == "" && a.body != "" {
		ct = "application/json"
	}
	if ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

// server fakes the token endpoint's client-credentials grant (counting the
// tokens it issues) and hands every other request to fn.
type server struct {
	*httptest.Server
	tokens atomic.Int32
}

func serve(t *testing.T, fn func(w http.ResponseWriter, r *http.Request)) (*server, *keycloak.Client) {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/protocol/openid-connect/token") {
			_ = r.ParseForm()
			if r.PostForm.Get("grant_type") == "client_credentials" {
				n := s.tokens.Add(1)
				answer{200, fmt.Sprintf(`{"access_token":"svc-%d","expires_in":300,"refresh_expires_in":0,"token_type":"Bearer","not-before-policy":0,"scope":"profile email"}`, n), ""}.write(w)
				return
			}
		}
		fn(w, r)
	}))
	t.Cleanup(s.Close)
	c, err := keycloak.New(keycloak.Config{BaseURL: s.URL, Realm: realm, AppClient: "comfortech",
		ClientID: "comfortech-auth-gateway", ClientSecret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

const tokenAnswer = `{"access_token":"a.b.c","expires_in":300,"refresh_expires_in":1800,"refresh_token":"r.r.r","token_type":"Bearer","id_token":"i.i.i","not-before-policy":0,"session_state":"s","scope":"openid email profile"}`

// errInternal marks the answers that must map to no sentinel at all: the
// gateway's configuration or a bug, never the user's mistake.
var errInternal = errors.New("internal")

func check(t *testing.T, name string, err, want error) {
	t.Helper()
	sentinels := []error{app.ErrInvalid, app.ErrInvalidCredentials, app.ErrInvalidToken, app.ErrAccountDisabled,
		app.ErrAccountNotReady, app.ErrAlreadyExists, app.ErrNotFound, app.ErrUnavailable}
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: %v, want success", name, err)
	case want == errInternal:
		for _, s := range sentinels {
			if errors.Is(err, s) {
				t.Errorf("%s: %v maps to %v, want an internal error", name, err, s)
			}
		}
		if err == nil {
			t.Errorf("%s: success, want an internal error", name)
		}
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s: %v, want %v", name, err, want)
	}
}

func TestLoginAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		a    answer
		want error
	}{
		{"success", answer{200, tokenAnswer, ""}, nil},
		{"wrong password", answer{401, `{"error":"invalid_grant","error_description":"Invalid user credentials"}`, ""}, app.ErrInvalidCredentials},
		{"unknown user (26.x)", answer{401, `{"error":"invalid_grant","error_description":"Invalid user credentials"}`, ""}, app.ErrInvalidCredentials},
		{"unknown user (main)", answer{400, `{"error":"invalid_grant","error_description":"Invalid user credentials"}`, ""}, app.ErrInvalidCredentials},
		{"disabled user", answer{400, `{"error":"invalid_grant","error_description":"Account disabled"}`, ""}, app.ErrAccountDisabled},
		{"required actions", answer{400, `{"error":"invalid_grant","error_description":"Account is not fully set up"}`, ""}, app.ErrAccountNotReady},
		{"brute-force lock", answer{400, `{"error":"invalid_grant","error_description":"Account temporarily disabled"}`, ""}, app.ErrInvalidCredentials},
		{"no username", answer{401, `{"error":"invalid_request","error_description":"Missing parameter: username"}`, ""}, errInternal},
		{"bad client secret", answer{401, `{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}`, ""}, errInternal},
		{"unknown client", answer{401, `{"error":"invalid_client","error_description":"Invalid client or Invalid client credentials"}`, ""}, errInternal},
		{"direct grants off", answer{400, `{"error":"unauthorized_client","error_description":"Client not allowed for direct access grants"}`, ""}, errInternal},
		{"unknown realm", answer{404, `{"error":"Realm does not exist"}`, ""}, errInternal},
		{"server error", answer{503, "", "text/html"}, app.ErrUnavailable},
		{"not JSON", answer{200, "<html>login</html>", "text/html"}, errInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if r.PostFormValue("grant_type") != "password" || r.PostFormValue("client_id") != "comfortech" || r.Header.Get("Authorization") != "" {
					t.Errorf("password grant sent %v, Authorization %q", r.PostForm, r.Header.Get("Authorization"))
				}
				tc.a.write(w)
			})
			tok, err := c.Login(t.Context(), "+79516519741", "pw")
			check(t, tc.name, err, tc.want)
			if tc.want == nil && (tok.AccessToken != "a.b.c" || tok.RefreshToken != "r.r.r" || tok.ExpiresIn != 300 || tok.RefreshExpiresIn != 1800 || tok.TokenType != "Bearer") {
				t.Errorf("tokens %+v", tok)
			}
		})
	}
}

func TestRefreshAndLogoutAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		logout bool
		a      answer
		want   error
	}{
		{"refreshed", false, answer{200, tokenAnswer, ""}, nil},
		{"malformed", false, answer{400, `{"error":"invalid_grant","error_description":"Invalid refresh token"}`, ""}, app.ErrInvalidToken},
		{"expired", false, answer{400, `{"error":"invalid_grant","error_description":"Token is not active"}`, ""}, app.ErrInvalidToken},
		{"after logout", false, answer{400, `{"error":"invalid_grant","error_description":"Session not active"}`, ""}, app.ErrInvalidToken},
		{"other client", false, answer{400, `{"error":"invalid_grant","error_description":"Invalid refresh token. Token client and authorized client don't match"}`, ""}, app.ErrInvalidToken},
		{"user disabled", false, answer{400, `{"error":"invalid_grant","error_description":"User disabled"}`, ""}, app.ErrAccountDisabled},
		{"no token", false, answer{400, `{"error":"invalid_request","error_description":"No refresh token"}`, ""}, app.ErrInvalidToken},
		{"client refused", false, answer{401, `{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}`, ""}, errInternal},
		{"logged out", true, answer{204, "", ""}, nil},
		{"logout bad token", true, answer{400, `{"error":"invalid_grant","error_description":"Invalid refresh token"}`, ""}, app.ErrInvalidToken},
		{"logout down", true, answer{502, "", ""}, app.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, c := serve(t, func(w http.ResponseWriter, _ *http.Request) { tc.a.write(w) })
			var err error
			if tc.logout {
				err = c.Logout(t.Context(), "r.r.r")
			} else {
				_, err = c.Refresh(t.Context(), "r.r.r")
			}
			check(t, tc.name, err, tc.want)
		})
	}
}

func TestAdminAnswers(t *testing.T) {
	t.Parallel()
	const uid = "5f0c8d3e-0000-4000-8000-000000000001"
	for _, tc := range []struct {
		name string
		call func(c *keycloak.Client) error
		a    answer
		want error
	}{
		{"user not found", func(c *keycloak.Client) error { _, err := c.User(t.Context(), uid); return err },
			answer{404, `{"error":"User not found"}`, ""}, app.ErrNotFound},
		{"delete unknown", func(c *keycloak.Client) error { return c.DeleteUser(t.Context(), uid) },
			answer{404, `{"error":"User not found"}`, ""}, app.ErrNotFound},
		{"duplicate username", func(c *keycloak.Client) error {
			_, err := c.CreateUser(t.Context(), app.NewUser{Username: "+7"})
			return err
		},
			answer{409, `{"errorMessage":"User exists with same username"}`, ""}, &app.ConflictError{Field: "phone"}},
		{"duplicate email", func(c *keycloak.Client) error {
			_, err := c.CreateUser(t.Context(), app.NewUser{Username: "+7"})
			return err
		},
			answer{409, `{"errorMessage":"User exists with same email"}`, ""}, &app.ConflictError{Field: "email"}},
		{"password policy", func(c *keycloak.Client) error { return c.SetPassword(t.Context(), uid, "x", false) },
			answer{400, `{"error":"invalidPasswordMinLengthMessage","error_description":"Invalid password: minimum length 8."}`, ""}, app.ErrInvalid},
		{"no username", func(c *keycloak.Client) error { _, err := c.CreateUser(t.Context(), app.NewUser{}); return err },
			answer{400, `{"errorMessage":"User name is missing"}`, ""}, errInternal},
		{"forbidden", func(c *keycloak.Client) error { _, err := c.User(t.Context(), uid); return err },
			answer{403, `{"error":"HTTP 403 Forbidden"}`, ""}, errInternal},
		{"unknown realm", func(c *keycloak.Client) error { _, err := c.User(t.Context(), uid); return err },
			answer{404, `{"error":"Realm not found."}`, ""}, errInternal},
		{"token refused twice", func(c *keycloak.Client) error { _, err := c.User(t.Context(), uid); return err },
			answer{401, `{"error":"HTTP 401 Unauthorized"}`, ""}, errInternal},
		{"server down", func(c *keycloak.Client) error { return c.DeleteUser(t.Context(), uid) },
			answer{500, `{"error":"unknown_error"}`, ""}, app.ErrUnavailable},
		{"created", func(c *keycloak.Client) error {
			id, err := c.CreateUser(t.Context(), app.NewUser{Username: "+7"})
			if err == nil && id != uid {
				err = fmt.Errorf("id %q", id)
			}
			return err
		}, answer{201, "", ""}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer svc-") {
					t.Errorf("admin call without the service token: %q", r.Header.Get("Authorization"))
				}
				if tc.a.status == 201 {
					w.Header().Set("Location", "http://x/admin/realms/"+realm+"/users/"+uid)
				}
				tc.a.write(w)
			})
			err := tc.call(c)
			var wantConflict *app.ConflictError
			if errors.As(tc.want, &wantConflict) {
				var got *app.ConflictError
				if !errors.As(err, &got) || got.Field != wantConflict.Field {
					t.Errorf("%s: %v, want conflict on %s", tc.name, err, wantConflict.Field)
				}
				return
			}
			check(t, tc.name, err, tc.want)
		})
	}
}

func TestTransportFailureIsUnavailable(t *testing.T) {
	t.Parallel()
	s, c := serve(t, func(http.ResponseWriter, *http.Request) {})
	s.Close()
	_, err := c.Login(t.Context(), "+79516519741", "pw")
	check(t, "login", err, app.ErrUnavailable)
	_, err = c.User(t.Context(), "x")
	check(t, "admin", err, app.ErrUnavailable)
	if err := c.Ping(t.Context()); err == nil {
		t.Error("ping succeeded against a closed server")
	}
}

// TestServiceToken checks that the service token is fetched once, shared,
// and fetched again when the admin API refuses it.
func TestServiceToken(t *testing.T) {
	t.Parallel()
	var refuse atomic.Bool
	s, c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if refuse.CompareAndSwap(true, false) {
			answer{401, `{"error":"HTTP 401 Unauthorized"}`, ""}.write(w)
			return
		}
		answer{204, "", ""}.write(w)
	})
	for range 5 {
		if err := c.DeleteUser(t.Context(), "u"); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.tokens.Load(); n != 1 {
		t.Fatalf("%d tokens fetched for 5 calls, want 1", n)
	}
	refuse.Store(true)
	if err := c.DeleteUser(t.Context(), "u"); err != nil {
		t.Fatalf("after one 401: %v", err)
	}
	if n := s.tokens.Load(); n != 2 {
		t.Fatalf("%d tokens fetched, want a second one after the 401", n)
	}
}

// TestRoleMapping checks the lookups behind a grant: the client's UUID,
// then its roles, then the mapping with the role exactly as listed; and
// that a stale role (recreated with a new id) is looked up again.
func TestRoleMapping(t *testing.T) {
	t.Parallel()
	var (
		roleID     atomic.Value
		lookups    atomic.Int32
		mapped     atomic.Value
		deleteSeen atomic.Bool
	)
	roleID.Store("role-1")
	_, c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/admin/realms/"+realm)
		switch {
		case r.Method == http.MethodGet && p == "/clients":
			if r.URL.Query().Get("clientId") != "comfortech" {
				t.Errorf("clients query %q", r.URL.RawQuery)
			}
			answer{200, `[{"id":"client-uuid","clientId":"comfortech"}]`, ""}.write(w)
		case r.Method == http.MethodGet && p == "/clients/client-uuid/roles":
			lookups.Add(1)
			answer{200, fmt.Sprintf(`[{"id":%q,"name":"user","clientRole":true,"containerId":"client-uuid"},{"id":"role-2","name":"admin","clientRole":true,"containerId":"client-uuid"}]`, roleID.Load()), ""}.write(w)
		case p == "/users/u1/role-mappings/clients/client-uuid":
			var roles []map[string]any
			_ = json.NewDecoder(r.Body).Decode(&roles)
			if len(roles) != 1 || roles[0]["name"] != "user" {
				t.Errorf("mapping body %v", roles)
			}
			if r.Method == http.MethodDelete {
				deleteSeen.Store(true)
			}
			if roles[0]["id"] != roleID.Load() {
				answer{404, `{"error":"Role not found"}`, ""}.write(w)
				return
			}
			mapped.Store(roles[0]["id"])
			answer{204, "", ""}.write(w)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
			answer{404, `{"error":"nope"}`, ""}.write(w)
		}
	})
	if err := c.GrantRole(t.Context(), "u1", "user"); err != nil {
		t.Fatal(err)
	}
	// The realm was rebuilt: the role now has id role-1b, the cache holds role-1.
	roleID.Store("role-1b")
	if err := c.GrantRole(t.Context(), "u1", "user"); err != nil {
		t.Fatal(err)
	}
	if mapped.Load() != "role-1b" || lookups.Load() != 2 {
		t.Fatalf("mapped %v after %d role lookups", mapped.Load(), lookups.Load())
	}
	if err := c.RevokeRole(t.Context(), "u1", "user"); err != nil || !deleteSeen.Load() {
		t.Fatalf("revoke: %v, DELETE sent: %v", err, deleteSeen.Load())
	}
}
