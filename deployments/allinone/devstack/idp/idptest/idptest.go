// Package idptest starts the embedded identity provider for tests: an
// httptest server with the repository's realm file, a known master admin
// password and a platform admin user, using cheap password hashing.
//
//	srv := idptest.Start(t)
//	v, _ := auth.NewVerifier(ctx, auth.Config{Issuer: srv.Issuer(), AllowedClients: []string{"comfortech"}})
//	user := srv.CreateUser(t, "+79516519741")
//	tok := srv.Login(t, user.Username, user.Password)
package idptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp"
)

// Names of the repository realm.
const (
	// Realm is the platform realm.
	Realm = "comfortech"
	// AppClient is the mobile app's public client.
	AppClient = "comfortech"
	// AdminUsername is the platform admin created by Start.
	AdminUsername = "admin"
	// MasterPassword and AdminPassword are the passwords Config sets for
	// the master admin and the platform admin.
	MasterPassword = "master-Passw0rd"
	AdminPassword  = "admin-Passw0rd"
)

// Server is a running provider.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL string
	// Provider is the provider behind the server.
	Provider *idp.Provider
	// MasterPassword is the master realm admin's password (admin-cli).
	MasterPassword string
	// AdminPassword is the platform admin's password (user "admin" in
	// the comfortech realm, client role admin on comfortech).
	AdminPassword string
}

// Start starts a provider on a free port and stops it when the test ends.
// By default the state is in memory, realm placeholders take their default
// values, and password hashing is cheap; opts may change any of it.
func Start(t testing.TB, opts ...func(*idp.Config)) *Server {
	t.Helper()
	p, err := idp.New(context.Background(), Config(t, opts...))
	if err != nil {
		t.Fatalf("idptest: %v", err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = p.Close()
	})
	return &Server{URL: srv.URL, Provider: p, MasterPassword: MasterPassword, AdminPassword: AdminPassword}
}

// Config returns the configuration Start uses, with opts applied: the
// repository realm file with placeholder defaults, the master admin and
// platform admin passwords above, cheap hashing, in-memory state.
func Config(t testing.TB, opts ...func(*idp.Config)) idp.Config {
	t.Helper()
	cfg := idp.Config{
		RealmFiles:          []string{RealmFile(t)},
		Env:                 func(string) (string, bool) { return "", false },
		MasterAdminPassword: MasterPassword,
		Users: []idp.BootstrapUser{{
			Realm: Realm, Username: AdminUsername, Password: AdminPassword, FirstName: "Platform", LastName: "Admin",
			ClientRoles: map[string][]string{AppClient: {"admin"}},
		}},
		PasswordHashing: idp.CheapHashParams,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// RealmFile returns the path of deployments/keycloak/realm-comfortech.json,
// found by walking up from the working directory to the one holding
// go.work.
func RealmFile(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("idptest: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return filepath.Join(dir, "deployments", "keycloak", "realm-comfortech.json")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("idptest: no go.work above the working directory")
		}
		dir = parent
	}
}

// Issuer is the comfortech realm's issuer, the iss of its tokens.
func (s *Server) Issuer() string { return s.URL + "/realms/" + Realm }

// ClientSecret returns a confidential client's secret in the comfortech realm.
func (s *Server) ClientSecret(t testing.TB, clientID string) string {
	t.Helper()
	sec, err := s.Provider.ClientSecret(context.Background(), Realm, clientID)
	if err != nil {
		t.Fatalf("idptest: %v", err)
	}
	return sec
}

// Token is a token endpoint answer.
type Token struct {
	AccessToken      string `json:"access_token"`
	RefreshToken     string `json:"refresh_token"`
	IDToken          string `json:"id_token"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	SessionState     string `json:"session_state"`
	Scope            string `json:"scope"`
}

// PostToken calls a realm's token endpoint with form and returns the
// token, or fails the test unless the answer is 200.
func (s *Server) PostToken(t testing.TB, realm string, form url.Values) *Token {
	t.Helper()
	resp, err := http.PostForm(s.URL+"/realms/"+realm+"/protocol/openid-connect/token", form)
	if err != nil {
		t.Fatalf("idptest: token: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		t.Fatalf("idptest: token: %s: %s", resp.Status, body.String())
	}
	var tok Token
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		t.Fatalf("idptest: token: %v", err)
	}
	return &tok
}

// Login logs a comfortech user in through the app client (password grant).
func (s *Server) Login(t testing.TB, username, password string) *Token {
	t.Helper()
	return s.PostToken(t, Realm, url.Values{"grant_type": {"password"}, "client_id": {AppClient},
		"username": {username}, "password": {password}, "scope": {"openid"}})
}

// AdminLogin logs the platform admin in through the app client.
func (s *Server) AdminLogin(t testing.TB) *Token {
	t.Helper()
	return s.Login(t, AdminUsername, s.AdminPassword)
}

// ServiceToken returns a client-credentials access token for a confidential
// client of the comfortech realm.
func (s *Server) ServiceToken(t testing.TB, clientID string) string {
	t.Helper()
	return s.PostToken(t, Realm, url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"client_secret": {s.ClientSecret(t, clientID)}}).AccessToken
}

// MasterToken returns an admin-cli access token of the master admin.
func (s *Server) MasterToken(t testing.TB) string {
	t.Helper()
	return s.PostToken(t, idp.MasterRealm, url.Values{"grant_type": {"password"}, "client_id": {"admin-cli"},
		"username": {"admin"}, "password": {s.MasterPassword}}).AccessToken
}

// User is a user created by CreateUser.
type User struct {
	ID, Username, Password string
}

// CreateUser creates an enabled comfortech user with the client role
// "user" on comfortech (plus extra roles of that client) and a generated
// password, through the admin API as the auth gateway does.
func (s *Server) CreateUser(t testing.TB, username string, extraRoles ...string) *User {
	t.Helper()
	admin := s.MasterToken(t)
	u := &User{Username: strings.ToLower(username), Password: "Pw1" + rand.Text()}
	body, _ := json.Marshal(map[string]any{"username": username, "enabled": true,
		"credentials": []map[string]any{{"type": "password", "value": u.Password, "temporary": false}}})
	resp := s.adminCall(t, admin, http.MethodPost, "/users", body, http.StatusCreated)
	loc := resp.Header.Get("Location")
	u.ID = loc[strings.LastIndex(loc, "/")+1:]
	var clients []struct {
		ID string `json:"id"`
	}
	s.adminJSON(t, admin, "/clients?clientId="+AppClient, &clients)
	if len(clients) != 1 {
		t.Fatalf("idptest: client %s not found", AppClient)
	}
	var roles []map[string]any
	for _, name := range append([]string{"user"}, extraRoles...) {
		var role map[string]any
		s.adminJSON(t, admin, "/clients/"+clients[0].ID+"/roles/"+url.PathEscape(name), &role)
		roles = append(roles, role)
	}
	body, _ = json.Marshal(roles)
	s.adminCall(t, admin, http.MethodPost, "/users/"+u.ID+"/role-mappings/clients/"+clients[0].ID, body, http.StatusNoContent)
	return u
}

func (s *Server) adminJSON(t testing.TB, token, path string, dst any) {
	t.Helper()
	resp := s.adminCall(t, token, http.MethodGet, path, nil, http.StatusOK)
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		t.Fatalf("idptest: GET %s: %v", path, err)
	}
}

func (s *Server) adminCall(t testing.TB, token, method, path string, body []byte, want int) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+"/admin/realms/"+Realm+path, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("idptest: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("idptest: %s %s: %v", method, path, err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != want {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		t.Fatalf("idptest: %s %s: %s: %s", method, path, resp.Status, b.String())
	}
	return resp
}
