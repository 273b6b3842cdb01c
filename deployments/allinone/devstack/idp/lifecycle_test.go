package idp_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Nerzal/gocloak/v13"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp"
	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
	"github.com/comfortech/platform/libs/auth"
)

// newVerifier builds the gateways' verifier for the realm behind base and
// waits for its JWKS.
func newVerifier(t *testing.T, issuer string) *auth.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := auth.NewVerifier(ctx, auth.Config{
		Issuer:         issuer,
		AllowedClients: []string{appClient, "comfortech-admin", authGateway},
		// Each test builds a fresh verifier after key changes; no cache so
		// every Verify really checks the signature.
		CacheSize: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := v.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTokensVerifyWithLibsAuth(t *testing.T) {
	t.Parallel()
	srv := idptest.Start(t)
	ctx := context.Background()
	v := newVerifier(t, srv.Issuer())
	user := srv.CreateUser(t, "+79040000001")

	p, err := v.Verify(ctx, srv.Login(t, user.Username, user.Password).AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != user.ID || p.Username != user.Username || !p.HasRole(auth.RoleUser) || p.IsAdmin() || p.SessionID == "" {
		t.Fatalf("principal = %+v", p)
	}
	admin, err := v.Verify(ctx, srv.AdminLogin(t).AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if !admin.IsAdmin() {
		t.Fatalf("platform admin lacks the admin role: %+v", admin)
	}
	svc, err := v.Verify(ctx, srv.ServiceToken(t, authGateway))
	if err != nil {
		t.Fatal(err)
	}
	if svc.ClientID != authGateway || svc.Username != "service-account-"+authGateway {
		t.Fatalf("service principal = %+v", svc)
	}
	// Internal RPCs require the service role: service accounts hold it,
	// users and admins do not.
	if !svc.HasRole(auth.RoleService) || p.HasRole(auth.RoleService) || admin.HasRole(auth.RoleService) {
		t.Fatalf("service role: service %v, user %v, admin %v", svc.HasRole(auth.RoleService), p.HasRole(auth.RoleService), admin.HasRole(auth.RoleService))
	}
	// The ID token and the refresh token are not access tokens.
	tok := srv.Login(t, user.Username, user.Password)
	for name, raw := range map[string]string{"id": tok.IDToken, "refresh": tok.RefreshToken} {
		if _, err := v.Verify(ctx, raw); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("%s token verified: %v", name, err)
		}
	}
	// A token of the master realm is refused by the comfortech verifier.
	if _, err := v.Verify(ctx, srv.MasterToken(t)); err == nil {
		t.Error("master token verified against the comfortech issuer")
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "idp.db")
	cfg := func(c *idp.Config) { c.DBPath = db }
	ctx := context.Background()

	p1, err := idp.New(ctx, idptest.Config(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	srv1 := httptest.NewServer(p1.Handler())
	s1 := &idptest.Server{URL: srv1.URL, Provider: p1, MasterPassword: idptest.MasterPassword, AdminPassword: idptest.AdminPassword}
	user := s1.CreateUser(t, "+79050000001")
	tok := s1.Login(t, user.Username, user.Password)
	issuer := s1.Issuer()
	addr := srv1.Listener.Addr().String()
	srv1.Close()
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}

	// Same file, same address (the issuer is part of every token).
	p2, err := idp.New(ctx, idptest.Config(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	srv2 := httptest.NewUnstartedServer(p2.Handler())
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on the previous address again: %v", err)
	}
	srv2.Listener = l
	srv2.Start()
	defer srv2.Close()
	s2 := &idptest.Server{URL: srv2.URL, Provider: p2, MasterPassword: idptest.MasterPassword, AdminPassword: idptest.AdminPassword}
	if s2.Issuer() != issuer {
		t.Fatalf("issuer changed: %s → %s", issuer, s2.Issuer())
	}

	v := newVerifier(t, issuer)
	if _, err := v.Verify(ctx, tok.AccessToken); err != nil {
		t.Fatalf("token minted before the restart: %v", err)
	}
	gc := gocloak.NewClient(s2.URL)
	ref, err := gc.RefreshToken(ctx, tok.RefreshToken, appClient, "", realm)
	if err != nil {
		t.Fatalf("refresh after restart: %v", err)
	}
	if ref.SessionState != tok.SessionState {
		t.Fatalf("session changed: %s → %s", tok.SessionState, ref.SessionState)
	}
	s2.Login(t, user.Username, user.Password) // password survived
	// The master admin was not re-created with a new password.
	s2.MasterToken(t)
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	srv := idptest.Start(t)
	ctx := context.Background()
	user := srv.CreateUser(t, "+79060000001")
	old := srv.Login(t, user.Username, user.Password).AccessToken
	oldKID := kidOf(t, old)

	newKID, err := srv.Provider.RotateKeys(ctx, realm)
	if err != nil {
		t.Fatal(err)
	}
	fresh := srv.Login(t, user.Username, user.Password).AccessToken
	if kidOf(t, fresh) != newKID || newKID == oldKID {
		t.Fatalf("kid after rotation = %s, want %s (old %s)", kidOf(t, fresh), newKID, oldKID)
	}
	v := newVerifier(t, srv.Issuer())
	for name, tok := range map[string]string{"old": old, "new": fresh} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("%s token after rotation: %v", name, err)
		}
	}
	gc := gocloak.NewClient(srv.URL)
	if _, _, err := gc.DecodeAccessToken(ctx, old, realm); err != nil {
		t.Fatalf("gocloak, old token: %v", err)
	}

	if err := srv.Provider.RemoveKey(ctx, realm, newKID); !errors.Is(err, idp.ErrActiveKey) {
		t.Fatalf("removing the active key: %v", err)
	}
	if err := srv.Provider.RemoveKey(ctx, realm, oldKID); err != nil {
		t.Fatal(err)
	}
	v2 := newVerifier(t, srv.Issuer())
	if _, err := v2.Verify(ctx, old); err == nil {
		t.Fatal("token of a removed key still verifies")
	}
	if _, err := v2.Verify(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gocloak.NewClient(srv.URL).DecodeAccessToken(ctx, old, realm); err == nil ||
		!strings.Contains(err.Error(), "cannot find a key") {
		t.Fatalf("gocloak, removed key: %v", err)
	}
	if _, err := srv.Provider.RotateKeys(ctx, "nowhere"); !errors.Is(err, idp.ErrUnknownRealm) {
		t.Fatalf("unknown realm: %v", err)
	}
}

// kidOf reads the kid of a token's header.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}
