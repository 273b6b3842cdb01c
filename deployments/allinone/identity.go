package allinone

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/config"
)

// realm is the platform's realm in the identity provider.
const realm = "comfortech"

// serviceClients are the confidential clients of the realm file, one per
// part, with the placeholder that holds each one's secret. "ops" is no
// part: it is the operators' client (comfortctl, scripts), a service
// account with the admin role.
var serviceClients = []struct{ part, clientID, secretVar string }{
	{"auth-gateway", "comfortech-auth-gateway", "COMFORT_AUTH_GATEWAY_CLIENT_SECRET"},
	{"main-gateway", "comfortech-main-gateway", "COMFORT_MAIN_GATEWAY_CLIENT_SECRET"},
	{"admin-gateway", "comfortech-admin-gateway", "COMFORT_ADMIN_GATEWAY_CLIENT_SECRET"},
	{"data", "comfortech-data", "COMFORT_DATA_CLIENT_SECRET"},
	{"device", "comfortech-device", "COMFORT_DEVICE_CLIENT_SECRET"},
	{"notify", "comfortech-notify", "COMFORT_NOTIFY_CLIENT_SECRET"},
	{"ops", "comfortech-ops", "COMFORT_OPS_CLIENT_SECRET"},
}

// identity is the embedded identity provider and what every part needs to
// trust it and to call others as itself.
type identity struct {
	provider *idp.Provider
	// baseURL is the provider's base URL; issuer is the realm's.
	baseURL, issuer string
	// secrets maps a part to its service-account client secret.
	secrets map[string]string
}

// settings returns the guard settings of part.
func (id *identity) settings(part string) auth.Settings {
	s := auth.Settings{Issuer: id.issuer}
	for _, c := range serviceClients {
		if c.part == part {
			s.ClientID, s.ClientSecret = c.clientID, config.Secret(id.secrets[part])
		}
	}
	return s
}

// environment returns vars plus the AUTH_* variables of part, for parts
// whose configuration is parsed from an environment.
func (id *identity) environment(part string, vars map[string]string) map[string]string {
	s := id.settings(part)
	env := map[string]string{"AUTH_ISSUER": s.Issuer}
	if s.ClientID != "" {
		env["AUTH_CLIENT_ID"], env["AUTH_CLIENT_SECRET"] = s.ClientID, s.ClientSecret.Reveal()
	}
	for k, v := range vars {
		env[k] = v
	}
	return env
}

// startIdentity opens the provider on the data directory. Client secrets
// are generated on first start and kept, and fed to the realm file's
// placeholders, so the realm and the parts agree on them.
func startIdentity(ctx context.Context, st *starter, baseURL, adminPassword string, log *zap.Logger) (*identity, error) {
	id := &identity{baseURL: baseURL, issuer: baseURL + "/realms/" + realm, secrets: make(map[string]string)}
	vars := make(map[string]string)
	for _, c := range serviceClients {
		secret, _, err := st.secret("client-" + c.clientID)
		if err != nil {
			return nil, err
		}
		id.secrets[c.part] = secret
		vars[c.secretVar] = secret
	}
	dir := filepath.Join(st.cfg.DataDir, "idp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity provider: %w", err)
	}
	p, err := idp.New(ctx, idp.Config{
		DBPath:              filepath.Join(dir, "idp.db"),
		RealmFiles:          []string{st.cfg.RealmFile},
		Env:                 func(name string) (string, bool) { v, ok := vars[name]; return v, ok },
		MasterAdminPassword: adminPassword,
		Users: []idp.BootstrapUser{{
			Realm: realm, Username: "admin", Password: adminPassword,
			ClientRoles: map[string][]string{"comfortech": {auth.RoleAdmin, auth.RoleUser}},
		}},
		BaseURL: strings.TrimSuffix(baseURL, "/"),
		Logger:  log,
	})
	if err != nil {
		return nil, fmt.Errorf("identity provider: %w", err)
	}
	id.provider = p
	// A realm is imported once: a data directory older than a client of
	// the realm file lacks it, and logins with its kept secret fail.
	for _, c := range serviceClients {
		if secret, err := p.ClientSecret(ctx, realm, c.clientID); err != nil || secret != id.secrets[c.part] {
			log.Warn("the realm in the data directory lacks this client or its kept secret (it was imported from an older "+
				"realm file): its logins will be refused; a new data directory imports the current realm file",
				zap.String("client", c.clientID))
		}
	}
	return id, nil
}
