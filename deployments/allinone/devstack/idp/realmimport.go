package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idpstore"
)

// The subset of Keycloak's RealmRepresentation (realm-export JSON) that the
// provider imports. Unknown fields are ignored, so a full export loads.
type realmRep struct {
	ID                          string      `json:"id"`
	Realm                       string      `json:"realm"`
	Enabled                     *bool       `json:"enabled"`
	AccessTokenLifespan         *int        `json:"accessTokenLifespan"`
	SSOSessionIdleTimeout       *int        `json:"ssoSessionIdleTimeout"`
	SSOSessionMaxLifespan       *int        `json:"ssoSessionMaxLifespan"`
	PasswordPolicy              string      `json:"passwordPolicy"`
	Roles                       *rolesRep   `json:"roles"`
	DefaultRole                 *roleRep    `json:"defaultRole"`
	Clients                     []clientRep `json:"clients"`
	Users                       []userRep   `json:"users"`
	DefaultDefaultClientScopes  []string    `json:"defaultDefaultClientScopes"`
	DefaultOptionalClientScopes []string    `json:"defaultOptionalClientScopes"`
}

type rolesRep struct {
	Realm  []roleRep            `json:"realm"`
	Client map[string][]roleRep `json:"client"`
}

type roleRep struct {
	ID          string              `json:"id,omitempty"`
	Name        string              `json:"name"`
	Description string              `json:"description,omitempty"`
	Composite   bool                `json:"composite"`
	Composites  *compositesRep      `json:"composites,omitempty"`
	ClientRole  bool                `json:"clientRole"`
	ContainerID string              `json:"containerId,omitempty"`
	Attributes  map[string][]string `json:"attributes,omitempty"`
}

type compositesRep struct {
	Realm  []string            `json:"realm,omitempty"`
	Client map[string][]string `json:"client,omitempty"`
}

type clientRep struct {
	ID                        string            `json:"id"`
	ClientID                  string            `json:"clientId"`
	Name                      string            `json:"name"`
	Secret                    string            `json:"secret"`
	Enabled                   *bool             `json:"enabled"`
	PublicClient              bool              `json:"publicClient"`
	BearerOnly                bool              `json:"bearerOnly"`
	DirectAccessGrantsEnabled bool              `json:"directAccessGrantsEnabled"`
	ServiceAccountsEnabled    bool              `json:"serviceAccountsEnabled"`
	StandardFlowEnabled       *bool             `json:"standardFlowEnabled"`
	FullScopeAllowed          *bool             `json:"fullScopeAllowed"`
	Protocol                  string            `json:"protocol"`
	RedirectURIs              []string          `json:"redirectUris"`
	WebOrigins                []string          `json:"webOrigins"`
	Attributes                map[string]string `json:"attributes"`
	DefaultClientScopes       []string          `json:"defaultClientScopes"`
	OptionalClientScopes      []string          `json:"optionalClientScopes"`
}

type userRep struct {
	ID                     string              `json:"id"`
	Username               string              `json:"username"`
	Email                  string              `json:"email"`
	FirstName              string              `json:"firstName"`
	LastName               string              `json:"lastName"`
	Enabled                bool                `json:"enabled"`
	EmailVerified          bool                `json:"emailVerified"`
	CreatedTimestamp       int64               `json:"createdTimestamp"`
	Attributes             map[string][]string `json:"attributes"`
	RequiredActions        []string            `json:"requiredActions"`
	Credentials            []credentialRep     `json:"credentials"`
	RealmRoles             []string            `json:"realmRoles"`
	ClientRoles            map[string][]string `json:"clientRoles"`
	ServiceAccountClientID string              `json:"serviceAccountClientId"`
}

type credentialRep struct {
	Type      string `json:"type"`
	Value     string `json:"value"`
	Temporary bool   `json:"temporary"`
	// SecretData is set in exports of hashed credentials, which this
	// provider cannot verify (Keycloak's pbkdf2 format).
	SecretData string `json:"secretData"`
}

// Client scopes a realm gets when its file does not list them, as Keycloak
// 26 creates them.
var (
	builtinDefaultScopes  = []string{"acr", "basic", "email", "profile", "roles", "web-origins"}
	builtinOptionalScopes = []string{"address", "microprofile-jwt", "offline_access", "organization", "phone"}
)

// builtinRole is a role Keycloak creates in every realm, with the names of
// the roles (of the same container) it is a composite of.
type builtinRole struct {
	name        string
	description string
	composites  []string
}

// Clients Keycloak creates in every realm, and their roles.
const (
	accountClient         = "account"
	realmManagementClient = "realm-management"
	adminCLIClient        = "admin-cli"
)

var realmManagementRoles = []string{
	"create-client", "impersonation", "manage-authorization", "manage-clients", "manage-events",
	"manage-identity-providers", "manage-realm", "manage-users", "query-clients", "query-groups",
	"query-realms", "query-users", "view-authorization", "view-clients", "view-events",
	"view-identity-providers", "view-realm", "view-users",
}

func builtinClientRoles(client string) []builtinRole {
	switch client {
	case accountClient:
		return []builtinRole{
			{"delete-account", "${role_delete-account}", nil},
			{"manage-account", "${role_manage-account}", []string{"manage-account-links"}},
			{"manage-account-links", "${role_manage-account-links}", nil},
			{"manage-consent", "${role_manage-consent}", []string{"view-consent"}},
			{"view-applications", "${role_view-applications}", nil},
			{"view-consent", "${role_view-consent}", nil},
			{"view-groups", "${role_view-groups}", nil},
			{"view-profile", "${role_view-profile}", nil},
		}
	case realmManagementClient:
		out := []builtinRole{{"realm-admin", "${role_realm-admin}", realmManagementRoles}}
		for _, r := range realmManagementRoles {
			b := builtinRole{name: r, description: "${role_" + r + "}"}
			switch r {
			case "view-users":
				b.composites = []string{"query-users", "query-groups"}
			case "view-clients":
				b.composites = []string{"query-clients"}
			}
			out = append(out, b)
		}
		return out
	}
	return nil
}

func builtinClient(clientID string) clientRep {
	f := false
	c := clientRep{ClientID: clientID, Name: "${client_" + clientID + "}", PublicClient: true, StandardFlowEnabled: &f}
	switch clientID {
	case realmManagementClient:
		c.PublicClient, c.BearerOnly = false, true
	case adminCLIClient:
		c.DirectAccessGrantsEnabled = true
	}
	return c
}

// placeholder matches ${NAME} and ${NAME:default}.
var placeholder = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_.]*)(?::([^}]*))?\}`)

// resolvePlaceholders replaces ${VAR} and ${VAR:default} in every string
// value of the decoded JSON document, as Keycloak's import does (an
// "env." prefix is accepted too). Unresolvable placeholders without a
// default stay as written, which is also Keycloak's behaviour: realm files
// use the same syntax for localisation keys such as ${role_admin}.
func (p *Provider) resolvePlaceholders(v any) any {
	switch t := v.(type) {
	case string:
		return placeholder.ReplaceAllStringFunc(t, func(m string) string {
			sub := placeholder.FindStringSubmatch(m)
			name := strings.TrimPrefix(sub[1], "env.")
			if val, ok := p.env(name); ok {
				return val
			}
			if strings.Contains(m, ":") {
				return sub[2]
			}
			return m
		})
	case []any:
		for i := range t {
			t[i] = p.resolvePlaceholders(t[i])
		}
	case map[string]any:
		for k := range t {
			t[k] = p.resolvePlaceholders(t[k])
		}
	}
	return v
}

// parseRealmFile reads a realm export and resolves its placeholders.
func (p *Provider) parseRealmFile(path string) (*realmRep, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("idp: realm file: %w", err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("idp: realm file %s: %w", path, err)
	}
	doc = p.resolvePlaceholders(doc)
	resolved, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("idp: realm file %s: %w", path, err)
	}
	var rep realmRep
	if err := json.Unmarshal(resolved, &rep); err != nil {
		return nil, fmt.Errorf("idp: realm file %s: %w", path, err)
	}
	if rep.Realm == "" {
		return nil, fmt.Errorf("idp: realm file %s: no realm name", path)
	}
	return &rep, nil
}

func (p *Provider) importRealmFile(ctx context.Context, path string) error {
	rep, err := p.parseRealmFile(path)
	if err != nil {
		return err
	}
	return p.importRealm(ctx, rep)
}

// importRealm creates the realm described by rep unless it exists.
func (p *Provider) importRealm(ctx context.Context, rep *realmRep) error {
	exists, err := p.store.RealmExists(ctx, rep.Realm)
	if err != nil {
		return fmt.Errorf("idp: import %s: %w", rep.Realm, err)
	}
	if exists {
		p.log.Info("idp: realm exists, import skipped", zapRealm(rep.Realm))
		return nil
	}
	err = p.store.InTx(ctx, func(tx *idpstore.Store) error {
		im := &importer{p: p, tx: tx, rep: rep, clients: map[string]*idpstore.Client{}, roles: map[string]map[string]*idpstore.Role{}}
		return im.run(ctx)
	})
	if err != nil {
		return fmt.Errorf("idp: import %s: %w", rep.Realm, err)
	}
	p.log.Info("idp: realm imported", zapRealm(rep.Realm), zap.Int("clients", len(rep.Clients)), zap.Int("users", len(rep.Users)))
	return nil
}

// importer carries one realm import's lookups.
type importer struct {
	p       *Provider
	tx      *idpstore.Store
	rep     *realmRep
	realm   *idpstore.Realm
	clients map[string]*idpstore.Client          // by clientId
	roles   map[string]map[string]*idpstore.Role // container ("" or clientId) → name → role
	// defaultRoleName is the realm's default role, once created.
	defaultRoleName string
}

func orDefault(v *int, def int) int {
	if v == nil {
		return def
	}
	return *v
}

func newID(id string) string {
	if id != "" {
		return id
	}
	return uuid.NewString()
}

func (im *importer) run(ctx context.Context) error {
	rep := im.rep
	now := im.p.now()
	im.realm = &idpstore.Realm{
		ID: newID(rep.ID), Name: rep.Realm, Enabled: rep.Enabled != nil && *rep.Enabled,
		AccessTokenLifespan:   orDefault(rep.AccessTokenLifespan, 300),
		SSOSessionIdleTimeout: orDefault(rep.SSOSessionIdleTimeout, 1800),
		SSOSessionMaxLifespan: orDefault(rep.SSOSessionMaxLifespan, 36000),
		PasswordPolicy:        rep.PasswordPolicy, CreatedMs: now.UnixMilli(),
	}
	if err := im.tx.CreateRealm(ctx, im.realm); err != nil {
		return err
	}
	if err := im.createClients(ctx); err != nil {
		return err
	}
	if err := im.createRoles(ctx); err != nil {
		return err
	}
	if err := im.createDefaultRole(ctx); err != nil {
		return err
	}
	if err := im.createUsers(ctx); err != nil {
		return err
	}
	return generateRealmKeys(ctx, im.tx, im.realm.ID, im.realm.Name, now)
}

func (im *importer) createClients(ctx context.Context) error {
	reps := append([]clientRep(nil), im.rep.Clients...)
	have := map[string]bool{}
	for _, c := range reps {
		have[c.ClientID] = true
	}
	for _, b := range []string{accountClient, realmManagementClient, adminCLIClient} {
		if !have[b] && (b != realmManagementClient || im.rep.Realm != MasterRealm) {
			reps = append(reps, builtinClient(b))
		}
	}
	defScopes, optScopes := im.rep.DefaultDefaultClientScopes, im.rep.DefaultOptionalClientScopes
	if defScopes == nil {
		defScopes = builtinDefaultScopes
	}
	if optScopes == nil {
		optScopes = builtinOptionalScopes
	}
	for _, c := range reps {
		if c.ClientID == "" {
			return errors.New("client without clientId")
		}
		m := &idpstore.Client{
			ID: newID(c.ID), RealmID: im.realm.ID, ClientID: c.ClientID, Name: c.Name, Secret: c.Secret,
			Enabled: c.Enabled == nil || *c.Enabled, PublicClient: c.PublicClient, BearerOnly: c.BearerOnly,
			DirectAccessGrants: c.DirectAccessGrantsEnabled, ServiceAccounts: c.ServiceAccountsEnabled,
			StandardFlow:     c.StandardFlowEnabled == nil || *c.StandardFlowEnabled,
			FullScopeAllowed: c.FullScopeAllowed == nil || *c.FullScopeAllowed,
			Protocol:         c.Protocol, RedirectURIs: c.RedirectURIs, WebOrigins: c.WebOrigins, Attributes: c.Attributes,
			DefaultScopes: c.DefaultClientScopes, OptionalScopes: c.OptionalClientScopes,
		}
		if m.Protocol == "" {
			m.Protocol = "openid-connect"
		}
		if m.DefaultScopes == nil {
			m.DefaultScopes = defScopes
		}
		if m.OptionalScopes == nil {
			m.OptionalScopes = optScopes
		}
		if strings.Contains(m.Secret, "${") {
			im.p.log.Warn("idp: client secret placeholder has no value and no default", zapRealm(im.realm.Name),
				zap.String("client", c.ClientID))
		}
		if !m.PublicClient && !m.BearerOnly && m.Secret == "" {
			// Keycloak generates a secret for a confidential client
			// imported without one.
			m.Secret = strings.ReplaceAll(uuid.NewString(), "-", "")
		}
		if err := im.tx.CreateClient(ctx, m); err != nil {
			return fmt.Errorf("client %s: %w", c.ClientID, err)
		}
		im.clients[c.ClientID] = m
	}
	return nil
}

// createRoles creates the realm and client roles of the file plus the
// built-in ones it lacks, then links composites.
func (im *importer) createRoles(ctx context.Context) error {
	type pending struct {
		role       *idpstore.Role
		container  string
		composites *compositesRep
	}
	var all []pending
	add := func(container string, r roleRep) error {
		if im.roles[container] == nil {
			im.roles[container] = map[string]*idpstore.Role{}
		}
		if _, dup := im.roles[container][r.Name]; dup {
			return nil
		}
		m := &idpstore.Role{ID: newID(r.ID), RealmID: im.realm.ID, Name: r.Name, Description: r.Description, Attributes: r.Attributes}
		if container != "" {
			c, ok := im.clients[container]
			if !ok {
				return fmt.Errorf("roles of unknown client %q", container)
			}
			m.ClientUUID = c.ID
		}
		if err := im.tx.CreateRole(ctx, m); err != nil {
			return fmt.Errorf("role %s: %w", r.Name, err)
		}
		im.roles[container][r.Name] = m
		all = append(all, pending{m, container, r.Composites})
		return nil
	}
	var rr rolesRep
	if im.rep.Roles != nil {
		rr = *im.rep.Roles
	}
	for _, r := range rr.Realm {
		if err := add("", r); err != nil {
			return err
		}
	}
	for client, list := range rr.Client {
		for _, r := range list {
			if err := add(client, r); err != nil {
				return err
			}
		}
	}
	for _, name := range []string{"offline_access", "uma_authorization"} {
		if err := add("", roleRep{Name: name, Description: "${role_" + name + "}"}); err != nil {
			return err
		}
	}
	for _, client := range []string{accountClient, realmManagementClient} {
		if _, ok := im.clients[client]; !ok {
			continue
		}
		for _, b := range builtinClientRoles(client) {
			if _, ok := im.roles[client][b.name]; ok {
				continue
			}
			comp := &compositesRep{Client: map[string][]string{client: b.composites}}
			if err := add(client, roleRep{Name: b.name, Description: b.description, Composites: comp}); err != nil {
				return err
			}
		}
	}
	for _, pr := range all {
		if pr.composites == nil {
			continue
		}
		for _, name := range pr.composites.Realm {
			if err := im.link(ctx, pr.role, "", name); err != nil {
				return err
			}
		}
		for client, names := range pr.composites.Client {
			for _, name := range names {
				if err := im.link(ctx, pr.role, client, name); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (im *importer) link(ctx context.Context, parent *idpstore.Role, container, name string) error {
	child, ok := im.roles[container][name]
	if !ok {
		return fmt.Errorf("composite %s: unknown role %q of %q", parent.Name, name, container)
	}
	return im.tx.AddComposite(ctx, parent.ID, child.ID)
}

// createDefaultRole makes sure default-roles-{realm} exists (with
// Keycloak's composites when the file does not define it) and records it.
func (im *importer) createDefaultRole(ctx context.Context) error {
	name := "default-roles-" + im.realm.Name
	if im.rep.DefaultRole != nil && im.rep.DefaultRole.Name != "" {
		name = im.rep.DefaultRole.Name
	}
	role, ok := im.roles[""][name]
	if !ok {
		role = &idpstore.Role{ID: uuid.NewString(), RealmID: im.realm.ID, Name: name, Description: "${role_default-roles}"}
		if err := im.tx.CreateRole(ctx, role); err != nil {
			return fmt.Errorf("default role: %w", err)
		}
		im.roles[""][name] = role
		for _, c := range []struct{ container, name string }{
			{"", "offline_access"}, {"", "uma_authorization"}, {accountClient, "view-profile"}, {accountClient, "manage-account"},
		} {
			if _, ok := im.roles[c.container][c.name]; ok {
				if err := im.link(ctx, role, c.container, c.name); err != nil {
					return err
				}
			}
		}
	}
	im.realm.DefaultRoleID, im.defaultRoleName = role.ID, name
	return im.tx.SetRealmDefaultRole(ctx, im.realm.ID, role.ID)
}

func (im *importer) createUsers(ctx context.Context) error {
	hasSA := map[string]bool{}
	for _, u := range im.rep.Users {
		if err := im.createUser(ctx, u); err != nil {
			return fmt.Errorf("user %s: %w", u.Username, err)
		}
		if u.ServiceAccountClientID != "" {
			hasSA[u.ServiceAccountClientID] = true
		}
	}
	// Keycloak creates the service-account user of a client that enables
	// service accounts when the file does not contain it.
	for _, c := range im.rep.Clients {
		if c.ServiceAccountsEnabled && !c.PublicClient && !hasSA[c.ClientID] {
			u := userRep{Username: "service-account-" + c.ClientID, Enabled: true, ServiceAccountClientID: c.ClientID,
				RealmRoles: []string{im.defaultRoleName}}
			if err := im.createUser(ctx, u); err != nil {
				return fmt.Errorf("service account of %s: %w", c.ClientID, err)
			}
		}
	}
	return nil
}

func (im *importer) createUser(ctx context.Context, u userRep) error {
	if u.Username == "" {
		return errors.New("user without username")
	}
	m := &idpstore.User{
		ID: newID(u.ID), RealmID: im.realm.ID, Username: strings.ToLower(u.Username), Email: strings.ToLower(u.Email),
		FirstName: u.FirstName, LastName: u.LastName, Enabled: u.Enabled, EmailVerified: u.EmailVerified,
		CreatedMs: u.CreatedTimestamp, Attributes: u.Attributes, RequiredActions: u.RequiredActions,
	}
	if m.CreatedMs == 0 {
		m.CreatedMs = im.p.now().UnixMilli()
	}
	if u.ServiceAccountClientID != "" {
		c, ok := im.clients[u.ServiceAccountClientID]
		if !ok {
			return fmt.Errorf("service account of unknown client %q", u.ServiceAccountClientID)
		}
		m.ServiceAccountClient = c.ID
	}
	if err := im.tx.CreateUser(ctx, m); err != nil {
		return err
	}
	for _, cred := range u.Credentials {
		if cred.Type != "" && cred.Type != "password" {
			continue
		}
		if cred.Value == "" {
			im.p.log.Warn("idp: hashed credential in realm file not supported; user has no password",
				zapRealm(im.realm.Name), zap.String("user_id", m.ID))
			continue
		}
		h, err := hashPassword(cred.Value, im.p.hash)
		if err != nil {
			return err
		}
		if err := im.tx.SetPasswordHash(ctx, m.ID, h, m.CreatedMs); err != nil {
			return err
		}
		if cred.Temporary {
			m.RequiredActions = appendOnce(m.RequiredActions, "UPDATE_PASSWORD")
			if err := im.tx.UpdateUser(ctx, m); err != nil {
				return err
			}
		}
	}
	var ids []string
	for _, name := range u.RealmRoles {
		r, ok := im.roles[""][name]
		if !ok {
			return fmt.Errorf("unknown realm role %q", name)
		}
		ids = append(ids, r.ID)
	}
	for client, names := range u.ClientRoles {
		for _, name := range names {
			r, ok := im.roles[client][name]
			if !ok {
				return fmt.Errorf("unknown role %q of client %q", name, client)
			}
			ids = append(ids, r.ID)
		}
	}
	return im.tx.AddUserRoles(ctx, m.ID, ids...)
}

func appendOnce(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}
