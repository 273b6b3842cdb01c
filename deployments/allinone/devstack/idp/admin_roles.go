package idp

import (
	"errors"
	"net/http"
	"strings"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idpstore"
)

// roleOut is Keycloak's RoleRepresentation; the brief form has no
// attributes.
type roleOut struct {
	ID          string               `json:"id"`
	Name        string               `json:"name"`
	Description string               `json:"description,omitempty"`
	Composite   bool                 `json:"composite"`
	ClientRole  bool                 `json:"clientRole"`
	ContainerID string               `json:"containerId"`
	Attributes  *map[string][]string `json:"attributes,omitempty"`
}

func toRoleOut(r *idpstore.Role, brief bool) roleOut {
	out := roleOut{ID: r.ID, Name: r.Name, Description: r.Description, Composite: r.Composite,
		ClientRole: r.ClientUUID != "", ContainerID: r.ClientUUID}
	if out.ContainerID == "" {
		out.ContainerID = r.RealmID
	}
	if !brief {
		attrs := r.Attributes
		if attrs == nil {
			attrs = map[string][]string{}
		}
		out.Attributes = &attrs
	}
	return out
}

func toRolesOut(roles []*idpstore.Role, brief bool) []roleOut {
	out := make([]roleOut, 0, len(roles))
	for _, r := range roles {
		out = append(out, toRoleOut(r, brief))
	}
	return out
}

// clientOut is Keycloak's ClientRepresentation.
type clientOut struct {
	ID                        string            `json:"id"`
	ClientID                  string            `json:"clientId"`
	Name                      string            `json:"name,omitempty"`
	SurrogateAuthRequired     bool              `json:"surrogateAuthRequired"`
	Enabled                   bool              `json:"enabled"`
	AlwaysDisplayInConsole    bool              `json:"alwaysDisplayInConsole"`
	ClientAuthenticatorType   string            `json:"clientAuthenticatorType"`
	Secret                    string            `json:"secret,omitempty"`
	RedirectURIs              []string          `json:"redirectUris"`
	WebOrigins                []string          `json:"webOrigins"`
	NotBefore                 int               `json:"notBefore"`
	BearerOnly                bool              `json:"bearerOnly"`
	ConsentRequired           bool              `json:"consentRequired"`
	StandardFlowEnabled       bool              `json:"standardFlowEnabled"`
	ImplicitFlowEnabled       bool              `json:"implicitFlowEnabled"`
	DirectAccessGrantsEnabled bool              `json:"directAccessGrantsEnabled"`
	ServiceAccountsEnabled    bool              `json:"serviceAccountsEnabled"`
	PublicClient              bool              `json:"publicClient"`
	FrontchannelLogout        bool              `json:"frontchannelLogout"`
	Protocol                  string            `json:"protocol"`
	Attributes                map[string]string `json:"attributes"`
	FullScopeAllowed          bool              `json:"fullScopeAllowed"`
	NodeReRegistrationTimeout int               `json:"nodeReRegistrationTimeout"`
	DefaultClientScopes       []string          `json:"defaultClientScopes"`
	OptionalClientScopes      []string          `json:"optionalClientScopes"`
	Access                    map[string]bool   `json:"access"`
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func toClientOut(c *idpstore.Client, a *admin) clientOut {
	out := clientOut{
		ID: c.ID, ClientID: c.ClientID, Name: c.Name, Enabled: c.Enabled, ClientAuthenticatorType: "client-secret",
		RedirectURIs: nonNil(c.RedirectURIs), WebOrigins: nonNil(c.WebOrigins), BearerOnly: c.BearerOnly,
		StandardFlowEnabled: c.StandardFlow, DirectAccessGrantsEnabled: c.DirectAccessGrants,
		ServiceAccountsEnabled: c.ServiceAccounts, PublicClient: c.PublicClient, FrontchannelLogout: true,
		Protocol: c.Protocol, Attributes: c.Attributes, FullScopeAllowed: c.FullScopeAllowed,
		NodeReRegistrationTimeout: -1, DefaultClientScopes: nonNil(c.DefaultScopes),
		OptionalClientScopes: nonNil(c.OptionalScopes),
		Access:               map[string]bool{"view": a.canViewClients(), "configure": a.can(roleManageClients), "manage": a.can(roleManageClients)},
	}
	if out.Attributes == nil {
		out.Attributes = map[string]string{}
	}
	// The secret is shown to those who may manage clients, as in the
	// admin console.
	if !c.PublicClient && a.can(roleManageClients) {
		out.Secret = c.Secret
	}
	return out
}

func briefParam(r *http.Request) bool {
	v := r.URL.Query().Get("briefRepresentation")
	return v == "" || strings.EqualFold(v, "true")
}

func (p *Provider) listRealmRoles(w http.ResponseWriter, r *http.Request, a *admin) {
	if !a.canListRoles() {
		forbidden(w)
		return
	}
	first, limit := paging(r, -1)
	roles, err := p.store.ListRoles(r.Context(), a.realm.ID, "", r.URL.Query().Get("search"), first, limit)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRolesOut(roles, briefParam(r)))
}

func (p *Provider) getRealmRole(w http.ResponseWriter, r *http.Request, a *admin) {
	if !a.canViewRealm() {
		forbidden(w)
		return
	}
	role, err := p.store.RoleByName(r.Context(), a.realm.ID, "", r.PathValue("name"))
	if errors.Is(err, idpstore.ErrNotFound) {
		adminError(w, http.StatusNotFound, "Could not find role")
		return
	}
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRoleOut(role, false))
}

func (p *Provider) listClients(w http.ResponseWriter, r *http.Request, a *admin) {
	if !a.canQueryClients() {
		forbidden(w)
		return
	}
	q := r.URL.Query()
	first, limit := paging(r, -1)
	clients, err := p.store.ListClients(r.Context(), a.realm.ID, q.Get("clientId"), strings.EqualFold(q.Get("search"), "true"), first, limit)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	out := make([]clientOut, 0, len(clients))
	for _, c := range clients {
		out = append(out, toClientOut(c, a))
	}
	writeJSON(w, http.StatusOK, out)
}

// clientFromPath resolves {id} (the client's internal id). An unknown id is
// 404 for callers who may list clients and 403 otherwise.
func (p *Provider) clientFromPath(w http.ResponseWriter, r *http.Request, a *admin) *idpstore.Client {
	c, err := p.store.ClientByID(r.Context(), a.realm.ID, r.PathValue("id"))
	if errors.Is(err, idpstore.ErrNotFound) {
		if a.canQueryClients() || a.canListRoles() {
			adminError(w, http.StatusNotFound, "Could not find client")
		} else {
			forbidden(w)
		}
		return nil
	}
	if err != nil {
		p.serverError(w, r, err)
		return nil
	}
	return c
}

func (p *Provider) getClient(w http.ResponseWriter, r *http.Request, a *admin) {
	c := p.clientFromPath(w, r, a)
	if c == nil {
		return
	}
	if !a.canViewClients() {
		forbidden(w)
		return
	}
	writeJSON(w, http.StatusOK, toClientOut(c, a))
}

func (p *Provider) listClientRoles(w http.ResponseWriter, r *http.Request, a *admin) {
	c := p.clientFromPath(w, r, a)
	if c == nil {
		return
	}
	if !a.canListRoles() {
		forbidden(w)
		return
	}
	first, limit := paging(r, -1)
	roles, err := p.store.ListRoles(r.Context(), a.realm.ID, c.ID, r.URL.Query().Get("search"), first, limit)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRolesOut(roles, briefParam(r)))
}

func (p *Provider) getClientRole(w http.ResponseWriter, r *http.Request, a *admin) {
	c := p.clientFromPath(w, r, a)
	if c == nil {
		return
	}
	if !a.canViewClients() {
		forbidden(w)
		return
	}
	role, err := p.store.RoleByName(r.Context(), a.realm.ID, c.ID, r.PathValue("name"))
	if errors.Is(err, idpstore.ErrNotFound) {
		adminError(w, http.StatusNotFound, "Could not find role")
		return
	}
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRoleOut(role, false))
}

// mappingContainer resolves the role container of a role-mappings path:
// the realm, or the client named by {client} (internal id).
func (p *Provider) mappingContainer(w http.ResponseWriter, r *http.Request, a *admin) (clientUUID string, ok bool) {
	id := r.PathValue("client")
	if id == "" {
		return "", true
	}
	c, err := p.store.ClientByID(r.Context(), a.realm.ID, id)
	if errors.Is(err, idpstore.ErrNotFound) {
		adminError(w, http.StatusNotFound, "Client not found")
		return "", false
	}
	if err != nil {
		p.serverError(w, r, err)
		return "", false
	}
	return c.ID, true
}

func (p *Provider) getRoleMappings(w http.ResponseWriter, r *http.Request, a *admin, u *idpstore.User) {
	if !a.canViewUsers() {
		forbidden(w)
		return
	}
	container, ok := p.mappingContainer(w, r, a)
	if !ok {
		return
	}
	direct, err := p.store.UserRoles(r.Context(), u.ID)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	var out []*idpstore.Role
	for _, role := range direct {
		if role.ClientUUID == container {
			out = append(out, role)
		}
	}
	writeJSON(w, http.StatusOK, toRolesOut(out, true))
}

// mappedRoles resolves a role-mapping request body: each role is looked up
// by name in the container and must carry that role's id (Keycloak).
func (p *Provider) mappedRoles(w http.ResponseWriter, r *http.Request, a *admin) ([]*idpstore.Role, bool) {
	if !a.canManageUsers() {
		forbidden(w)
		return nil, false
	}
	container, ok := p.mappingContainer(w, r, a)
	if !ok {
		return nil, false
	}
	var reps []roleRep
	if !decodeBody(w, r, &reps) {
		return nil, false
	}
	var roles []*idpstore.Role
	for _, rep := range reps {
		role, err := p.store.RoleByName(r.Context(), a.realm.ID, container, rep.Name)
		if errors.Is(err, idpstore.ErrNotFound) || (err == nil && role.ID != rep.ID) {
			adminError(w, http.StatusNotFound, "Role not found")
			return nil, false
		}
		if err != nil {
			p.serverError(w, r, err)
			return nil, false
		}
		if !p.mayMap(r, a, role) {
			forbidden(w)
			return nil, false
		}
		roles = append(roles, role)
	}
	return roles, true
}

// mayMap is Keycloak's admin-role guard: realm-management roles can be
// granted only by a master admin or a caller who holds them.
func (p *Provider) mayMap(r *http.Request, a *admin, role *idpstore.Role) bool {
	if a.master || role.ClientUUID == "" {
		return true
	}
	c, err := p.store.ClientByID(r.Context(), a.realm.ID, role.ClientUUID)
	if err != nil || c.ClientID != realmManagementClient {
		return err == nil
	}
	return a.roles[role.Name]
}

func roleIDs(roles []*idpstore.Role) []string {
	ids := make([]string, len(roles))
	for i, r := range roles {
		ids[i] = r.ID
	}
	return ids
}

func (p *Provider) addRoleMappings(w http.ResponseWriter, r *http.Request, a *admin, u *idpstore.User) {
	roles, ok := p.mappedRoles(w, r, a)
	if !ok {
		return
	}
	if err := p.store.AddUserRoles(r.Context(), u.ID, roleIDs(roles)...); err != nil {
		p.serverError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (p *Provider) deleteRoleMappings(w http.ResponseWriter, r *http.Request, a *admin, u *idpstore.User) {
	roles, ok := p.mappedRoles(w, r, a)
	if !ok {
		return
	}
	if err := p.store.RemoveUserRoles(r.Context(), u.ID, roleIDs(roles)...); err != nil {
		p.serverError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
