package idpstore

import (
	"context"
	"database/sql"
)

// Realm is a Keycloak realm: a namespace of clients, roles, users and keys.
type Realm struct {
	ID      string
	Name    string
	Enabled bool
	// AccessTokenLifespan, SSOSessionIdleTimeout and SSOSessionMaxLifespan
	// are in seconds, as in Keycloak's realm representation.
	AccessTokenLifespan   int
	SSOSessionIdleTimeout int
	SSOSessionMaxLifespan int
	// PasswordPolicy is Keycloak's policy string, e.g.
	// "length(8) and digits(1) and notUsername".
	PasswordPolicy string
	// DefaultRoleID is the composite role every new user is mapped to.
	DefaultRoleID string
	CreatedMs     int64
}

const realmCols = `id, name, enabled, access_token_lifespan, sso_session_idle_timeout,
	sso_session_max_lifespan, password_policy, default_role_id, created_ms`

func scanRealm(row interface{ Scan(...any) error }) (*Realm, error) {
	var r Realm
	err := row.Scan(&r.ID, &r.Name, &r.Enabled, &r.AccessTokenLifespan, &r.SSOSessionIdleTimeout,
		&r.SSOSessionMaxLifespan, &r.PasswordPolicy, &r.DefaultRoleID, &r.CreatedMs)
	return &r, err
}

// CreateRealm inserts a realm.
func (s *Store) CreateRealm(ctx context.Context, r *Realm) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO realms (`+realmCols+`) VALUES (?,?,?,?,?,?,?,?,?)`,
		r.ID, r.Name, b2i(r.Enabled), r.AccessTokenLifespan, r.SSOSessionIdleTimeout,
		r.SSOSessionMaxLifespan, r.PasswordPolicy, r.DefaultRoleID, r.CreatedMs)
	return mapErr("create realm", err)
}

// SetRealmDefaultRole records the realm's default role.
func (s *Store) SetRealmDefaultRole(ctx context.Context, realmID, roleID string) error {
	res, err := s.q.ExecContext(ctx, `UPDATE realms SET default_role_id = ? WHERE id = ?`, roleID, realmID)
	return affected("set default role", res, err)
}

// RealmByName returns the realm called name.
func (s *Store) RealmByName(ctx context.Context, name string) (*Realm, error) {
	r, err := scanRealm(s.q.QueryRowContext(ctx, `SELECT `+realmCols+` FROM realms WHERE name = ?`, name))
	if err != nil {
		return nil, mapErr("realm by name", err)
	}
	return r, nil
}

// RealmExists reports whether a realm called name exists.
func (s *Store) RealmExists(ctx context.Context, name string) (bool, error) {
	var one int
	err := s.q.QueryRowContext(ctx, `SELECT 1 FROM realms WHERE name = ?`, name).Scan(&one)
	if err == sql.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, mapErr("realm exists", err)
	}
	return true, nil
}
