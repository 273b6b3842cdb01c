package idp_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/Nerzal/gocloak/v13"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp"
	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
)

// realmFile is the part of the realm export the test compares against.
type realmFile struct {
	Realm               string `json:"realm"`
	AccessTokenLifespan int    `json:"accessTokenLifespan"`
	Clients             []struct {
		ClientID                  string `json:"clientId"`
		Secret                    string `json:"secret"`
		PublicClient              bool   `json:"publicClient"`
		BearerOnly                bool   `json:"bearerOnly"`
		DirectAccessGrantsEnabled bool   `json:"directAccessGrantsEnabled"`
		ServiceAccountsEnabled    bool   `json:"serviceAccountsEnabled"`
	} `json:"clients"`
	Roles struct {
		Realm  []struct{ Name string } `json:"realm"`
		Client map[string][]struct {
			Name string
		} `json:"client"`
	} `json:"roles"`
	Users []struct {
		Username               string              `json:"username"`
		ServiceAccountClientID string              `json:"serviceAccountClientId"`
		ClientRoles            map[string][]string `json:"clientRoles"`
	} `json:"users"`
}

func TestRepositoryRealmFileLoads(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(idptest.RealmFile(t))
	if err != nil {
		t.Fatal(err)
	}
	var file realmFile
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	// Every client secret is an env placeholder with an [A-Za-z0-9] default.
	secrets := map[string]string{}
	for _, c := range file.Clients {
		if c.Secret == "" {
			continue
		}
		name, def, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(c.Secret, "${"), "}"), ":")
		if !ok || !strings.HasPrefix(c.Secret, "${") || strings.Trim(def, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
			t.Errorf("client %s: secret %q is not ${VAR:alnum-default}", c.ClientID, c.Secret)
		}
		secrets[name] = "fromEnv" + strings.ReplaceAll(c.ClientID, "-", "")
	}
	srv := idptest.Start(t, func(c *idp.Config) {
		c.Env = func(k string) (string, bool) { v, ok := secrets[k]; return v, ok }
	})
	ctx := context.Background()
	gc := gocloak.NewClient(srv.URL)
	master := srv.MasterToken(t)

	for _, fc := range file.Clients {
		got := must[[]*gocloak.Client](t)(gc.GetClients(ctx, master, realm, gocloak.GetClientsParams{ClientID: gocloak.StringP(fc.ClientID)}))
		if len(got) != 1 {
			t.Fatalf("client %s: %d found", fc.ClientID, len(got))
		}
		c := got[0]
		if *c.PublicClient != fc.PublicClient || *c.BearerOnly != fc.BearerOnly ||
			*c.DirectAccessGrantsEnabled != fc.DirectAccessGrantsEnabled || *c.ServiceAccountsEnabled != fc.ServiceAccountsEnabled {
			t.Errorf("client %s flags differ from the file", fc.ClientID)
		}
		for _, r := range file.Roles.Client[fc.ClientID] {
			if _, err := gc.GetClientRole(ctx, master, realm, *c.ID, r.Name); err != nil {
				t.Errorf("role %s of %s: %v", r.Name, fc.ClientID, err)
			}
		}
		if fc.ServiceAccountsEnabled {
			name := strings.TrimSuffix(strings.TrimPrefix(fc.Secret, "${"), "}")
			name, _, _ = strings.Cut(name, ":")
			if *c.Secret != secrets[name] {
				t.Errorf("client %s secret = %q, want the env value", fc.ClientID, *c.Secret)
			}
			tok, err := gc.LoginClient(ctx, fc.ClientID, secrets[name], realm)
			if err != nil {
				t.Fatalf("LoginClient %s: %v", fc.ClientID, err)
			}
			c := claimsOf(t, gc, tok.AccessToken)
			for _, u := range file.Users {
				if u.ServiceAccountClientID != fc.ClientID {
					continue
				}
				if c["preferred_username"] != u.Username {
					t.Errorf("service account of %s = %v", fc.ClientID, c["preferred_username"])
				}
				for client, want := range u.ClientRoles {
					ra, _ := c["resource_access"].(map[string]any)
					entry, _ := ra[client].(map[string]any)
					roles, _ := entry["roles"].([]any)
					for _, w := range want {
						if !slices.Contains(roles, any(w)) {
							t.Errorf("%s lacks %s/%s (has %v)", u.Username, client, w, roles)
						}
					}
				}
			}
		}
	}
	for _, r := range file.Roles.Realm {
		if _, err := gc.GetRealmRole(ctx, master, realm, r.Name); err != nil {
			t.Errorf("realm role %s: %v", r.Name, err)
		}
	}
	// The default role's composites reach a new user's token.
	u := srv.CreateUser(t, "+79100000001")
	c := claimsOf(t, gc, srv.Login(t, u.Username, u.Password).AccessToken)
	realmRoles := c["realm_access"].(map[string]any)["roles"].([]any)
	for _, want := range []string{"default-roles-comfortech", "offline_access", "uma_authorization"} {
		if !slices.Contains(realmRoles, any(want)) {
			t.Errorf("realm_access lacks %s: %v", want, realmRoles)
		}
	}
	account := c["resource_access"].(map[string]any)["account"].(map[string]any)["roles"].([]any)
	if !slices.Equal(account, []any{"manage-account", "manage-account-links", "view-profile"}) {
		t.Errorf("account roles = %v", account)
	}
}

func TestRealmFilePlaceholders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "realm.json")
	doc := `{
	  "realm": "${REALM_NAME:demo}", "enabled": true, "accessTokenLifespan": 120,
	  "clients": [
	    {"clientId": "svc-a", "secret": "${SECRET_A}", "serviceAccountsEnabled": true, "publicClient": false},
	    {"clientId": "svc-b", "secret": "${SECRET_B:fallbackB}", "serviceAccountsEnabled": true, "publicClient": false},
	    {"clientId": "svc-c", "secret": "${env.SECRET_C}", "serviceAccountsEnabled": true, "publicClient": false},
	    {"clientId": "app", "publicClient": true, "directAccessGrantsEnabled": true}
	  ],
	  "roles": {"realm": [{"name": "reader", "description": "${role_reader}"}]},
	  "users": [{"username": "Alice", "email": "Alice@Example.com", "enabled": true,
	             "credentials": [{"type": "password", "value": "${ALICE_PASSWORD:alicePass1}"}],
	             "realmRoles": ["reader"]}]
	}`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SECRET_A": "fromEnvA", "SECRET_C": "fromEnvC"}
	srv := idptest.Start(t, func(c *idp.Config) {
		c.RealmFiles = []string{file}
		c.Users = nil
		c.Env = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	})
	ctx := context.Background()
	for client, want := range map[string]string{"svc-a": "fromEnvA", "svc-b": "fallbackB", "svc-c": "fromEnvC"} {
		got, err := srv.Provider.ClientSecret(ctx, "demo", client)
		if err != nil || got != want {
			t.Errorf("secret of %s = %q, %v; want %q", client, got, err, want)
		}
	}
	gc := gocloak.NewClient(srv.URL)
	tok, err := gc.Login(ctx, "app", "", "demo", "alice", "alicePass1")
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresIn != 120 {
		t.Errorf("expires_in = %d", tok.ExpiresIn)
	}
	_, c, err := gc.DecodeAccessToken(ctx, tok.AccessToken, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if (*c)["email"] != "alice@example.com" || !slices.Contains((*c)["realm_access"].(map[string]any)["roles"].([]any), any("reader")) {
		t.Errorf("claims = %v", *c)
	}
	master := srv.MasterToken(t)
	role, err := gc.GetRealmRole(ctx, master, "demo", "reader")
	if err != nil || *role.Description != "${role_reader}" {
		t.Errorf("localisation key changed: %v %v", role, err)
	}

	// An existing realm is not imported again: its secrets stay.
	db := filepath.Join(dir, "idp.db")
	for i, secret := range []string{"first", "second"} {
		p, err := idp.New(ctx, idptest.Config(t, func(c *idp.Config) {
			c.DBPath, c.RealmFiles, c.Users = db, []string{file}, nil
			c.Env = func(k string) (string, bool) { return secret, k == "SECRET_A" }
		}))
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.ClientSecret(ctx, "demo", "svc-a")
		_ = p.Close()
		if err != nil || got != "first" {
			t.Fatalf("start %d: secret = %q, %v; want the first import's", i+1, got, err)
		}
	}
}
