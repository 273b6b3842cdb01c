package idp

import (
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idpstore"
)

// userOut is Keycloak's UserRepresentation as GET returns it; unset names
// and email are left out, attributes appear only when set.
type userOut struct {
	ID                         string              `json:"id"`
	Username                   string              `json:"username"`
	FirstName                  string              `json:"firstName,omitempty"`
	LastName                   string              `json:"lastName,omitempty"`
	Email                      string              `json:"email,omitempty"`
	EmailVerified              bool                `json:"emailVerified"`
	Attributes                 map[string][]string `json:"attributes,omitempty"`
	CreatedTimestamp           int64               `json:"createdTimestamp"`
	Enabled                    bool                `json:"enabled"`
	Totp                       bool                `json:"totp"`
	DisableableCredentialTypes []string            `json:"disableableCredentialTypes"`
	RequiredActions            []string            `json:"requiredActions"`
	NotBefore                  int                 `json:"notBefore"`
	Access                     map[string]bool     `json:"access,omitempty"`
}

// toUserOut renders a user for the caller; the brief form (briefRepresentation=true)
// has no attributes.
func toUserOut(u *idpstore.User, a *admin, brief bool) userOut {
	out := userOut{
		ID: u.ID, Username: u.Username, FirstName: u.FirstName, LastName: u.LastName, Email: u.Email,
		EmailVerified: u.EmailVerified, CreatedTimestamp: u.CreatedMs, Enabled: u.Enabled,
		DisableableCredentialTypes: []string{}, RequiredActions: u.RequiredActions,
	}
	if len(u.Attributes) > 0 && !brief {
		out.Attributes = u.Attributes
	}
	if out.RequiredActions == nil {
		out.RequiredActions = []string{}
	}
	manage := a.canManageUsers()
	out.Access = map[string]bool{
		"manageGroupMembership": manage, "view": a.canViewUsers(), "mapRoles": manage,
		"impersonate": a.master || a.can("impersonation"), "manage": manage,
	}
	return out
}

// userIn is a UserRepresentation sent by a client; pointers tell a field
// that was not sent (kept on update) from one sent empty.
type userIn struct {
	Username        *string              `json:"username"`
	Email           *string              `json:"email"`
	FirstName       *string              `json:"firstName"`
	LastName        *string              `json:"lastName"`
	Enabled         *bool                `json:"enabled"`
	EmailVerified   *bool                `json:"emailVerified"`
	Attributes      *map[string][]string `json:"attributes"`
	RequiredActions *[]string            `json:"requiredActions"`
	Credentials     []credentialRep      `json:"credentials"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// fieldError is Keycloak's user-profile validation error body.
func fieldError(w http.ResponseWriter, field, msg string, params ...string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"field": field, "errorMessage": msg, "params": params})
}

func validEmail(e string) bool {
	a, err := mail.ParseAddress(e)
	return err == nil && a.Address == e
}

// userFilter reads GET /users query parameters the way Keycloak does:
// "search" wins over the per-field filters.
func userFilter(r *http.Request) idpstore.UserFilter {
	q := r.URL.Query()
	first, limit := paging(r, 100)
	f := idpstore.UserFilter{First: first, Max: limit}
	if search := strings.TrimSpace(q.Get("search")); search != "" {
		if search == "*" {
			return f
		}
		for _, term := range strings.Fields(strings.ToLower(search)) {
			f.SearchTerms = append(f.SearchTerms, searchPattern(term))
		}
		return f
	}
	f.Username, f.Email, f.FirstName, f.LastName = q.Get("username"), q.Get("email"), q.Get("firstName"), q.Get("lastName")
	f.Exact = strings.EqualFold(q.Get("exact"), "true")
	f.Enabled, f.EmailVerified = boolParam(r, "enabled"), boolParam(r, "emailVerified")
	return f
}

// searchPattern turns one search term into a LIKE pattern: "x" in quotes
// is exact, '*' is a wildcard, anything else is a prefix.
func searchPattern(term string) string {
	if len(term) >= 2 && term[0] == '"' && term[len(term)-1] == '"' {
		return likeLiteral(term[1 : len(term)-1])
	}
	p := strings.ReplaceAll(likeLiteral(term), "*", "%")
	if !strings.HasSuffix(p, "%") {
		p += "%"
	}
	return p
}

func likeLiteral(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func (p *Provider) listUsers(w http.ResponseWriter, r *http.Request, a *admin) {
	if !a.canQueryUsers() {
		forbidden(w)
		return
	}
	users, err := p.store.ListUsers(r.Context(), a.realm.ID, userFilter(r))
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	brief := strings.EqualFold(r.URL.Query().Get("briefRepresentation"), "true")
	out := make([]userOut, 0, len(users))
	for _, u := range users {
		out = append(out, toUserOut(u, a, brief))
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *Provider) countUsers(w http.ResponseWriter, r *http.Request, a *admin) {
	if !a.canQueryUsers() {
		forbidden(w)
		return
	}
	n, err := p.store.CountUsers(r.Context(), a.realm.ID, userFilter(r))
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (p *Provider) getUser(w http.ResponseWriter, _ *http.Request, a *admin, u *idpstore.User) {
	if !a.canViewUsers() {
		forbidden(w)
		return
	}
	writeJSON(w, http.StatusOK, toUserOut(u, a, false))
}

// passwordFrom returns the password credential of a create request.
func passwordFrom(creds []credentialRep) *credentialRep {
	for i := range creds {
		if creds[i].Type == "" || creds[i].Type == "password" {
			return &creds[i]
		}
	}
	return nil
}

// applyFlags copies the fields that were sent (Keycloak keeps the others)
// of the flags, attributes and required actions onto u.
func (in *userIn) applyFlags(u *idpstore.User) {
	if in.Enabled != nil {
		u.Enabled = *in.Enabled
	}
	if in.EmailVerified != nil {
		u.EmailVerified = *in.EmailVerified
	}
	if in.Attributes != nil {
		u.Attributes = *in.Attributes
	}
	if in.RequiredActions != nil {
		u.RequiredActions = *in.RequiredActions
	}
}

func (p *Provider) createUser(w http.ResponseWriter, r *http.Request, a *admin) {
	if !a.canManageUsers() {
		forbidden(w)
		return
	}
	var in userIn
	if !decodeBody(w, r, &in) {
		return
	}
	ctx := r.Context()
	username := strings.ToLower(strings.TrimSpace(str(in.Username)))
	if username == "" {
		adminErrorMessage(w, http.StatusBadRequest, "User name is missing")
		return
	}
	email := strings.ToLower(strings.TrimSpace(str(in.Email)))
	if conflict, err := p.duplicate(r, a.realm.ID, "", username, email); err != nil {
		p.serverError(w, r, err)
		return
	} else if conflict != "" {
		adminErrorMessage(w, http.StatusConflict, conflict)
		return
	}
	if email != "" && !validEmail(email) {
		fieldError(w, "email", "invalidEmailMessage", "email", email)
		return
	}
	u := &idpstore.User{ID: uuid.NewString(), RealmID: a.realm.ID, Username: username, Email: email,
		FirstName: str(in.FirstName), LastName: str(in.LastName), CreatedMs: p.now().UnixMilli()}
	// A new user is disabled unless "enabled":true is sent.
	in.applyFlags(u)
	var hash string
	if cred := passwordFrom(in.Credentials); cred != nil {
		if pe := checkPasswordPolicy(a.realm.PasswordPolicy, cred.Value, username, email); pe != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": pe.key, "error_description": pe.text})
			return
		}
		var err error
		if hash, err = hashPassword(cred.Value, p.hash); err != nil {
			p.serverError(w, r, err)
			return
		}
		if cred.Temporary {
			u.RequiredActions = appendOnce(u.RequiredActions, "UPDATE_PASSWORD")
		}
	}
	err := p.store.InTx(ctx, func(tx *idpstore.Store) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		if hash != "" {
			if err := tx.SetPasswordHash(ctx, u.ID, hash, u.CreatedMs); err != nil {
				return err
			}
		}
		return tx.AddUserRoles(ctx, u.ID, a.realm.DefaultRoleID)
	})
	if errors.Is(err, idpstore.ErrConflict) {
		// Lost a race with a concurrent create of the same user.
		adminErrorMessage(w, http.StatusConflict, "User exists with same username")
		return
	}
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	p.log.Info("idp: user created", zapRealm(a.realm.Name), zap.String("user_id", u.ID))
	w.Header().Set("Location", p.baseURL(r)+"/admin/realms/"+a.realm.Name+"/users/"+u.ID)
	w.WriteHeader(http.StatusCreated)
}

// duplicate returns Keycloak's conflict message when another user (not
// selfID) has the username or the email.
func (p *Provider) duplicate(r *http.Request, realmID, selfID, username, email string) (string, error) {
	ctx := r.Context()
	if username != "" {
		u, err := p.store.UserByUsername(ctx, realmID, username)
		if err == nil && u.ID != selfID {
			return "User exists with same username", nil
		}
		if err != nil && !errors.Is(err, idpstore.ErrNotFound) {
			return "", err
		}
	}
	if email != "" {
		u, err := p.store.UserByEmail(ctx, realmID, email)
		if err == nil && u.ID != selfID {
			return "User exists with same email", nil
		}
		if err != nil && !errors.Is(err, idpstore.ErrNotFound) {
			return "", err
		}
	}
	return "", nil
}

func (p *Provider) updateUser(w http.ResponseWriter, r *http.Request, a *admin, u *idpstore.User) {
	if !a.canManageUsers() {
		forbidden(w)
		return
	}
	var in userIn
	if !decodeBody(w, r, &in) {
		return
	}
	// Keycloak's default user profile makes the username read-only
	// (editUsernameAllowed is off).
	if in.Username != nil && *in.Username != "" && !strings.EqualFold(*in.Username, u.Username) {
		fieldError(w, "username", "error-user-attribute-read-only", "username")
		return
	}
	if in.Email != nil {
		email := strings.ToLower(strings.TrimSpace(*in.Email))
		if email != u.Email {
			if conflict, err := p.duplicate(r, a.realm.ID, u.ID, "", email); err != nil {
				p.serverError(w, r, err)
				return
			} else if conflict != "" {
				adminErrorMessage(w, http.StatusConflict, conflict)
				return
			}
			if email != "" && !validEmail(email) {
				fieldError(w, "email", "invalidEmailMessage", "email", email)
				return
			}
			u.Email, u.EmailVerified = email, false
		}
	}
	if in.FirstName != nil {
		u.FirstName = *in.FirstName
	}
	if in.LastName != nil {
		u.LastName = *in.LastName
	}
	in.applyFlags(u)
	if err := p.store.UpdateUser(r.Context(), u); err != nil {
		if errors.Is(err, idpstore.ErrConflict) {
			adminErrorMessage(w, http.StatusConflict, "User exists with same email")
			return
		}
		p.serverError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (p *Provider) deleteUser(w http.ResponseWriter, r *http.Request, a *admin, u *idpstore.User) {
	if !a.canManageUsers() {
		forbidden(w)
		return
	}
	if err := p.store.DeleteUser(r.Context(), a.realm.ID, u.ID); err != nil {
		p.serverError(w, r, err)
		return
	}
	p.log.Info("idp: user deleted", zapRealm(a.realm.Name), zap.String("user_id", u.ID))
	w.WriteHeader(http.StatusNoContent)
}

func (p *Provider) resetPassword(w http.ResponseWriter, r *http.Request, a *admin, u *idpstore.User) {
	if !a.canManageUsers() {
		forbidden(w)
		return
	}
	var cred struct {
		Type      string  `json:"type"`
		Value     *string `json:"value"`
		Temporary *bool   `json:"temporary"`
	}
	if !decodeBody(w, r, &cred) {
		return
	}
	if cred.Value == nil {
		adminError(w, http.StatusBadRequest, "No password provided")
		return
	}
	if strings.TrimSpace(*cred.Value) == "" {
		adminError(w, http.StatusBadRequest, "Empty password")
		return
	}
	if pe := checkPasswordPolicy(a.realm.PasswordPolicy, *cred.Value, u.Username, u.Email); pe != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": pe.key, "error_description": pe.text})
		return
	}
	hash, err := hashPassword(*cred.Value, p.hash)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	// A temporary password makes the user change it at next login; a
	// permanent one clears that requirement.
	if cred.Temporary != nil && *cred.Temporary {
		u.RequiredActions = appendOnce(u.RequiredActions, "UPDATE_PASSWORD")
	} else {
		u.RequiredActions = slices.DeleteFunc(u.RequiredActions, func(s string) bool { return s == "UPDATE_PASSWORD" })
	}
	ctx := r.Context()
	err = p.store.InTx(ctx, func(tx *idpstore.Store) error {
		if err := tx.SetPasswordHash(ctx, u.ID, hash, p.now().UnixMilli()); err != nil {
			return err
		}
		return tx.UpdateUser(ctx, u)
	})
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// requiredActions Keycloak 26 knows by default.
var requiredActions = []string{
	"CONFIGURE_TOTP", "TERMS_AND_CONDITIONS", "UPDATE_PASSWORD", "UPDATE_PROFILE", "VERIFY_EMAIL",
	"delete_account", "webauthn-register", "webauthn-register-passwordless", "VERIFY_PROFILE",
	"delete_credential", "update_user_locale", "UPDATE_EMAIL", "CONFIGURE_RECOVERY_AUTHN_CODES",
}

func (p *Provider) executeActionsEmail(w http.ResponseWriter, r *http.Request, a *admin, u *idpstore.User) {
	if !a.canManageUsers() {
		forbidden(w)
		return
	}
	var actions []string
	if !decodeBody(w, r, &actions) {
		return
	}
	q := r.URL.Query()
	clientID, redirect := q.Get("client_id"), q.Get("redirect_uri")
	lifespan := 12 * time.Hour
	if v, err := strconv.Atoi(q.Get("lifespan")); err == nil && v > 0 {
		lifespan = time.Duration(v) * time.Second
	}
	switch {
	case u.Email == "":
		adminErrorMessage(w, http.StatusBadRequest, "User email missing")
		return
	case !u.Enabled:
		adminErrorMessage(w, http.StatusBadRequest, "User is disabled")
		return
	case redirect != "" && clientID == "":
		adminErrorMessage(w, http.StatusBadRequest, "Client id missing")
		return
	}
	if clientID == "" {
		clientID = accountClient
	}
	c, err := p.store.ClientByClientID(r.Context(), a.realm.ID, clientID)
	if errors.Is(err, idpstore.ErrNotFound) {
		adminErrorMessage(w, http.StatusBadRequest, "Client doesn't exist")
		return
	}
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	if !c.Enabled {
		adminErrorMessage(w, http.StatusBadRequest, "Client is not enabled")
		return
	}
	if redirect != "" && !redirectAllowed(c.RedirectURIs, redirect) {
		adminErrorMessage(w, http.StatusBadRequest, "Invalid redirect uri.")
		return
	}
	for _, act := range actions {
		if !slices.Contains(requiredActions, act) {
			adminErrorMessage(w, http.StatusBadRequest, "Provided invalid required actions")
			return
		}
	}
	if p.cfg.ActionsEmail == nil {
		// What Keycloak answers when the realm has no SMTP server.
		adminErrorMessage(w, http.StatusInternalServerError, "Failed to send execute actions email: Please provide a valid address")
		return
	}
	err = p.cfg.ActionsEmail(r.Context(), ActionsEmail{Realm: a.realm.Name, UserID: u.ID, Username: u.Username,
		Email: u.Email, Actions: actions, ClientID: clientID, RedirectURI: redirect, Lifespan: lifespan})
	if err != nil {
		p.log.Warn("idp: actions email failed", zapRealm(a.realm.Name), zap.String("user_id", u.ID), zap.Error(err))
		adminErrorMessage(w, http.StatusInternalServerError, fmt.Sprintf("Failed to send execute actions email: %v", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// redirectAllowed matches Keycloak's redirect URI patterns: exact, or a
// prefix ending in '*'.
func redirectAllowed(patterns []string, uri string) bool {
	for _, pt := range patterns {
		if pt == uri || pt == "*" || (strings.HasSuffix(pt, "*") && strings.HasPrefix(uri, strings.TrimSuffix(pt, "*"))) {
			return true
		}
	}
	return false
}

func (p *Provider) logoutUser(w http.ResponseWriter, r *http.Request, a *admin, u *idpstore.User) {
	if !a.canManageUsers() {
		forbidden(w)
		return
	}
	if err := p.store.DeleteUserSessions(r.Context(), u.ID); err != nil {
		p.serverError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
