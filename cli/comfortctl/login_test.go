package comfortctl_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/comfortech/platform/cli/comfortctl"
	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/web"
)

// TestLoginClientCredentials logs the ops client in at the embedded
// identity provider (the repository realm): its token is one the
// platform's guard accepts as an administrator's; an expired token is
// replaced by a new grant; a wrong secret is refused.
func TestLoginClientCredentials(t *testing.T) {
	t.Parallel()
	idp := idptest.Start(t)
	secret := idp.ClientSecret(t, "comfortech-ops")
	verifier, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: idp.Issuer(), AllowedClients: auth.DefaultAllowedClients()})
	if err != nil {
		t.Fatal(err)
	}
	// An admin gateway that answers only administrators, as the real
	// one's guard decides.
	var seen []string
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		p, err := verifier.Verify(r.Context(), token)
		if err != nil || !p.IsAdmin() || p.ClientID != "comfortech-ops" {
			http.Error(w, `{"success":false,"error":{"code":"PERMISSION_DENIED","message":"admin only"}}`, http.StatusForbidden)
			return
		}
		seen = append(seen, token)
		web.WriteData(w, http.StatusOK, map[string]any{"items": []any{}})
	}))
	defer admin.Close()
	config := filepath.Join(t.TempDir(), "session.json")
	flags := []string{"--config", config, "--issuer", idp.Issuer(), "--admin-url", admin.URL}

	r := run(t, "wrong\n", append(flags, "login", "--client-id", "comfortech-ops", "--client-secret-stdin")...)
	r.want(t, comfortctl.ExitFailure, "wrong secret")
	if !strings.Contains(r.stderr, "unauthorized_client") && !strings.Contains(r.stderr, "invalid_client") {
		t.Errorf("wrong secret: %s", r.stderr)
	}
	run(t, "", append(flags, "login", "--client-id", "comfortech-ops")...).want(t, comfortctl.ExitUsage, "no secret")

	run(t, secret+"\n", append(flags, "login", "--client-id", "comfortech-ops", "--client-secret-stdin")...).want(t, 0, "login")
	run(t, "", append(flags, "devices", "list")...).want(t, 0, "list as the ops client")

	// Expire the token in the session file: the next call gets a new one.
	raw, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	_ = json.Unmarshal(raw, &s)
	if s["grant"] != "client_credentials" || s["client_secret"] != secret || s["refresh_token"] != nil {
		t.Fatalf("session: %s", raw)
	}
	s["expiry"] = time.Now().Add(-time.Minute).Format(time.RFC3339)
	raw, _ = json.Marshal(s)
	if err := os.WriteFile(config, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "", append(flags, "devices", "list")...).want(t, 0, "list after expiry")
	if len(seen) != 2 || seen[0] == seen[1] {
		t.Fatalf("tokens used: %d, renewed %v", len(seen), len(seen) == 2 && seen[0] != seen[1])
	}
}
