package idp

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idpstore"
)

// adminPrefix is the root of a realm's admin REST API.
const adminPrefix = "/admin/realms/{realm}"

// realm-management client roles that grant admin permissions.
const (
	roleManageUsers   = "manage-users"
	roleViewUsers     = "view-users"
	roleQueryUsers    = "query-users"
	roleManageClients = "manage-clients"
	roleViewClients   = "view-clients"
	roleQueryClients  = "query-clients"
	roleManageRealm   = "manage-realm"
	roleViewRealm     = "view-realm"
)

// admin is an authenticated admin request: the target realm and what the
// caller may do there.
type admin struct {
	realm *idpstore.Realm
	// master is a master-realm administrator: everything, in every realm.
	master bool
	// roles are the caller's realm-management roles in the target realm
	// (composites expanded); empty when the token comes from another realm.
	roles map[string]bool
}

// can reports whether the caller holds any of the roles.
func (a *admin) can(roles ...string) bool {
	if a.master {
		return true
	}
	for _, r := range roles {
		if a.roles[r] {
			return true
		}
	}
	return false
}

func (a *admin) canQueryUsers() bool  { return a.can(roleQueryUsers, roleViewUsers, roleManageUsers) }
func (a *admin) canViewUsers() bool   { return a.can(roleViewUsers, roleManageUsers) }
func (a *admin) canManageUsers() bool { return a.can(roleManageUsers) }
func (a *admin) canQueryClients() bool {
	return a.can(roleQueryClients, roleViewClients, roleManageClients)
}
func (a *admin) canViewClients() bool { return a.can(roleViewClients, roleManageClients) }
func (a *admin) canViewRealm() bool   { return a.can(roleViewRealm, roleManageRealm) }

// canListRoles is Keycloak's RolePermissions.canList: any admin role.
func (a *admin) canListRoles() bool { return a.master || len(a.roles) > 0 }

type adminHandler func(w http.ResponseWriter, r *http.Request, a *admin)

func (p *Provider) adminRoutes(mux *http.ServeMux) {
	h := func(pattern string, fn adminHandler) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.Handle(method+" "+adminPrefix+path, p.withAdmin(fn))
	}
	h("GET /users", p.listUsers)
	h("POST /users", p.createUser)
	h("GET /users/count", p.countUsers)
	h("GET /users/{id}", p.withUser(p.getUser))
	h("PUT /users/{id}", p.withUser(p.updateUser))
	h("DELETE /users/{id}", p.withUser(p.deleteUser))
	h("PUT /users/{id}/reset-password", p.withUser(p.resetPassword))
	h("PUT /users/{id}/execute-actions-email", p.withUser(p.executeActionsEmail))
	h("POST /users/{id}/logout", p.withUser(p.logoutUser))
	h("GET /users/{id}/role-mappings/realm", p.withUser(p.getRoleMappings))
	h("POST /users/{id}/role-mappings/realm", p.withUser(p.addRoleMappings))
	h("DELETE /users/{id}/role-mappings/realm", p.withUser(p.deleteRoleMappings))
	h("GET /users/{id}/role-mappings/clients/{client}", p.withUser(p.getRoleMappings))
	h("POST /users/{id}/role-mappings/clients/{client}", p.withUser(p.addRoleMappings))
	h("DELETE /users/{id}/role-mappings/clients/{client}", p.withUser(p.deleteRoleMappings))
	h("GET /roles", p.listRealmRoles)
	h("GET /roles/{name}", p.getRealmRole)
	h("GET /clients", p.listClients)
	h("GET /clients/{id}", p.getClient)
	h("GET /clients/{id}/roles", p.listClientRoles)
	h("GET /clients/{id}/roles/{name}", p.getClientRole)
	mux.Handle("/admin/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Unable to find matching target resource method"})
	}))
}

// Admin API errors with Keycloak's bodies.
func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func adminErrorMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"errorMessage": msg})
}

func unauthorized(w http.ResponseWriter) {
	adminError(w, http.StatusUnauthorized, "HTTP 401 Unauthorized")
}
func forbidden(w http.ResponseWriter) { adminError(w, http.StatusForbidden, "HTTP 403 Forbidden") }

// withAdmin authenticates the bearer token against the realm named in its
// iss (so a master-realm admin-cli token works on every realm, as in
// Keycloak), then resolves the target realm and the caller's permissions.
func (p *Provider) withAdmin(h adminHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || raw == "" {
			unauthorized(w)
			return
		}
		tokenRealm, err := p.store.RealmByName(ctx, unverifiedRealm(raw))
		if errors.Is(err, idpstore.ErrNotFound) {
			unauthorized(w)
			return
		}
		if err != nil {
			p.serverError(w, r, err)
			return
		}
		tok, reason, err := p.checkAccessToken(ctx, r, tokenRealm, raw)
		if err != nil {
			p.serverError(w, r, err)
			return
		}
		if reason != nil {
			unauthorized(w)
			return
		}
		target, err := p.store.RealmByName(ctx, r.PathValue("realm"))
		if errors.Is(err, idpstore.ErrNotFound) {
			adminError(w, http.StatusNotFound, "Realm not found.")
			return
		}
		if err != nil {
			p.serverError(w, r, err)
			return
		}
		roles, err := p.effectiveRoles(ctx, tokenRealm.ID, tok.user.ID)
		if err != nil {
			p.serverError(w, r, err)
			return
		}
		a := &admin{realm: target, roles: map[string]bool{}}
		switch {
		case tokenRealm.Name == MasterRealm:
			a.master = containsString(roles.realm, masterAdminRole)
		case tokenRealm.ID == target.ID:
			for _, name := range roles.client[realmManagementClient] {
				a.roles[name] = true
			}
		}
		h(w, r, a)
	})
}

// unverifiedRealm reads the realm name from a token's iss without checking
// the signature; the token is then verified with that realm's keys.
func unverifiedRealm(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	i := strings.LastIndex(c.Iss, "/realms/")
	if i < 0 {
		return ""
	}
	return c.Iss[i+len("/realms/"):]
}

// withUser resolves {id}. An unknown id is 404 only for callers who may
// query users, 403 otherwise, so that ids cannot be probed (Keycloak).
func (p *Provider) withUser(h func(w http.ResponseWriter, r *http.Request, a *admin, u *idpstore.User)) adminHandler {
	return func(w http.ResponseWriter, r *http.Request, a *admin) {
		u, err := p.store.UserByID(r.Context(), a.realm.ID, r.PathValue("id"))
		if errors.Is(err, idpstore.ErrNotFound) {
			if a.canQueryUsers() {
				adminError(w, http.StatusNotFound, "User not found")
			} else {
				forbidden(w)
			}
			return
		}
		if err != nil {
			p.serverError(w, r, err)
			return
		}
		h(w, r, a, u)
	}
}

// paging reads first and max; max defaults to def (-1: unlimited).
func paging(r *http.Request, def int) (first, limit int) {
	q := r.URL.Query()
	first, _ = strconv.Atoi(q.Get("first"))
	if first < 0 {
		first = 0
	}
	limit = def
	if v, err := strconv.Atoi(q.Get("max")); err == nil {
		limit = v
	}
	if limit < 0 {
		limit = -1 // SQLite: no limit
	}
	return first, limit
}

func boolParam(r *http.Request, name string) *bool {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil
	}
	b := strings.EqualFold(v, "true")
	return &b
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// decodeBody decodes a JSON request body, answering 400 when it is not.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		adminError(w, http.StatusBadRequest, "unknown_error")
		return false
	}
	return true
}
