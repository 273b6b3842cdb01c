package idp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idpstore"
)

// masterAdminRole is the master realm role that administers every realm.
const masterAdminRole = "admin"

// ensureMaster creates the master realm (admin-cli, the admin role, 60 s
// access tokens as in Keycloak) and its "admin" user when missing.
func (p *Provider) ensureMaster(ctx context.Context) error {
	enabled, lifespan := true, 60
	rep := &realmRep{
		Realm: MasterRealm, Enabled: &enabled, AccessTokenLifespan: &lifespan,
		Roles: &rolesRep{Realm: []roleRep{
			{Name: masterAdminRole, Description: "${role_admin}"},
			{Name: "create-realm", Description: "${role_create-realm}"},
		}},
	}
	if err := p.importRealm(ctx, rep); err != nil {
		return err
	}
	realm, err := p.store.RealmByName(ctx, MasterRealm)
	if err != nil {
		return fmt.Errorf("idp: master realm: %w", err)
	}
	if _, err := p.store.UserByUsername(ctx, realm.ID, "admin"); err == nil {
		return nil
	} else if !errors.Is(err, idpstore.ErrNotFound) {
		return fmt.Errorf("idp: master admin: %w", err)
	}
	if p.cfg.MasterAdminPassword == "" {
		return errors.New("idp: Config.MasterAdminPassword is required to create the master admin user")
	}
	return p.ensureUser(ctx, BootstrapUser{Realm: MasterRealm, Username: "admin", Password: p.cfg.MasterAdminPassword,
		RealmRoles: []string{masterAdminRole, "create-realm"}})
}

// ensureUser creates a bootstrap user unless one with the same username
// exists. The password policy is not applied: these users come from the
// operator, like Keycloak's bootstrap admin.
func (p *Provider) ensureUser(ctx context.Context, b BootstrapUser) error {
	realm, err := p.store.RealmByName(ctx, b.Realm)
	if err != nil {
		return fmt.Errorf("idp: bootstrap user %s: realm %q: %w", b.Username, b.Realm, err)
	}
	username := strings.ToLower(b.Username)
	if _, err := p.store.UserByUsername(ctx, realm.ID, username); err == nil {
		return nil
	} else if !errors.Is(err, idpstore.ErrNotFound) {
		return fmt.Errorf("idp: bootstrap user %s: %w", b.Username, err)
	}
	if b.Password == "" {
		return fmt.Errorf("idp: bootstrap user %s: no password", b.Username)
	}
	roleIDs := []string{realm.DefaultRoleID}
	for _, name := range b.RealmRoles {
		r, err := p.store.RoleByName(ctx, realm.ID, "", name)
		if err != nil {
			return fmt.Errorf("idp: bootstrap user %s: realm role %q: %w", b.Username, name, err)
		}
		roleIDs = append(roleIDs, r.ID)
	}
	for clientID, names := range b.ClientRoles {
		c, err := p.store.ClientByClientID(ctx, realm.ID, clientID)
		if err != nil {
			return fmt.Errorf("idp: bootstrap user %s: client %q: %w", b.Username, clientID, err)
		}
		for _, name := range names {
			r, err := p.store.RoleByName(ctx, realm.ID, c.ID, name)
			if err != nil {
				return fmt.Errorf("idp: bootstrap user %s: role %q of %q: %w", b.Username, name, clientID, err)
			}
			roleIDs = append(roleIDs, r.ID)
		}
	}
	hash, err := hashPassword(b.Password, p.hash)
	if err != nil {
		return err
	}
	now := p.now().UnixMilli()
	u := &idpstore.User{ID: uuid.NewString(), RealmID: realm.ID, Username: username, Email: strings.ToLower(b.Email),
		FirstName: b.FirstName, LastName: b.LastName, Enabled: true, CreatedMs: now}
	err = p.store.InTx(ctx, func(tx *idpstore.Store) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.SetPasswordHash(ctx, u.ID, hash, now); err != nil {
			return err
		}
		return tx.AddUserRoles(ctx, u.ID, roleIDs...)
	})
	if err != nil {
		return fmt.Errorf("idp: bootstrap user %s: %w", b.Username, err)
	}
	p.log.Info("idp: bootstrap user created", zapRealm(b.Realm), zap.String("user_id", u.ID))
	return nil
}

// effective is a user's effective roles, composites expanded.
type effective struct {
	realm  []string            // realm role names, sorted
	client map[string][]string // clientId → role names, sorted
	ids    map[string]bool     // every effective role id
}

// effectiveRoles expands the user's direct role mappings through
// composites, as the roles in Keycloak's tokens are.
func (p *Provider) effectiveRoles(ctx context.Context, realmID, userID string) (*effective, error) {
	direct, err := p.store.UserRoles(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("idp: roles: %w", err)
	}
	all, edges, err := p.store.RealmRoles(ctx, realmID)
	if err != nil {
		return nil, fmt.Errorf("idp: roles: %w", err)
	}
	byID := make(map[string]*idpstore.Role, len(all))
	for _, r := range all {
		byID[r.ID] = r
	}
	e := &effective{client: map[string][]string{}, ids: map[string]bool{}}
	var walk func(id string)
	walk = func(id string) {
		if e.ids[id] {
			return
		}
		e.ids[id] = true
		for _, c := range edges[id] {
			walk(c)
		}
	}
	for _, r := range direct {
		walk(r.ID)
	}
	clientNames := map[string]string{}
	for id := range e.ids {
		r := byID[id]
		if r == nil {
			continue
		}
		if r.ClientUUID == "" {
			e.realm = append(e.realm, r.Name)
			continue
		}
		name, ok := clientNames[r.ClientUUID]
		if !ok {
			c, err := p.store.ClientByID(ctx, realmID, r.ClientUUID)
			if err != nil {
				return nil, fmt.Errorf("idp: role client: %w", err)
			}
			name = c.ClientID
			clientNames[r.ClientUUID] = name
		}
		e.client[name] = append(e.client[name], r.Name)
	}
	slices.Sort(e.realm)
	for _, v := range e.client {
		slices.Sort(v)
	}
	return e, nil
}
