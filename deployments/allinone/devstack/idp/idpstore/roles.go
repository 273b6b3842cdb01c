package idpstore

import (
	"context"
	"strings"
)

// Role is a realm role (ClientUUID == "") or a client role.
type Role struct {
	ID          string
	RealmID     string
	ClientUUID  string
	Name        string
	Description string
	Attributes  map[string][]string
	// Composite is filled by the list and lookup calls: whether the role
	// has children.
	Composite bool
}

const roleCols = `r.id, r.realm_id, r.client_uuid, r.name, r.description, r.attributes,
	EXISTS (SELECT 1 FROM role_composites c WHERE c.parent_id = r.id)`

func scanRole(row interface{ Scan(...any) error }) (*Role, error) {
	var (
		r     Role
		attrs string
	)
	if err := row.Scan(&r.ID, &r.RealmID, &r.ClientUUID, &r.Name, &r.Description, &attrs, &r.Composite); err != nil {
		return nil, err
	}
	if err := fromJSON("role", attrs, &r.Attributes); err != nil {
		return nil, err
	}
	return &r, nil
}

func (s *Store) queryRoles(ctx context.Context, op, q string, args ...any) ([]*Role, error) {
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapErr(op, err)
	}
	defer rows.Close()
	var out []*Role
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, mapErr(op, err)
		}
		out = append(out, r)
	}
	return out, mapErr(op, rows.Err())
}

// CreateRole inserts a role.
func (s *Store) CreateRole(ctx context.Context, r *Role) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO roles (id, realm_id, client_uuid, name, description, attributes)
		VALUES (?,?,?,?,?,?)`, r.ID, r.RealmID, r.ClientUUID, r.Name, r.Description, jsonText(r.Attributes))
	return mapErr("create role", err)
}

// AddComposite makes child part of the composite role parent.
func (s *Store) AddComposite(ctx context.Context, parentID, childID string) error {
	_, err := s.q.ExecContext(ctx,
		`INSERT INTO role_composites (parent_id, child_id) VALUES (?,?) ON CONFLICT DO NOTHING`, parentID, childID)
	return mapErr("add composite", err)
}

// RoleByID returns the role with id in the realm.
func (s *Store) RoleByID(ctx context.Context, realmID, id string) (*Role, error) {
	r, err := scanRole(s.q.QueryRowContext(ctx,
		`SELECT `+roleCols+` FROM roles r WHERE r.realm_id = ? AND r.id = ?`, realmID, id))
	if err != nil {
		return nil, mapErr("role by id", err)
	}
	return r, nil
}

// RoleByName returns the role called name in the container: the realm when
// clientUUID is "", the client otherwise.
func (s *Store) RoleByName(ctx context.Context, realmID, clientUUID, name string) (*Role, error) {
	r, err := scanRole(s.q.QueryRowContext(ctx,
		`SELECT `+roleCols+` FROM roles r WHERE r.realm_id = ? AND r.client_uuid = ? AND r.name = ?`,
		realmID, clientUUID, name))
	if err != nil {
		return nil, mapErr("role by name", err)
	}
	return r, nil
}

// ListRoles returns the container's roles ordered by name, optionally
// filtered by a case-insensitive substring of the name or description, as
// Keycloak's "search" does.
func (s *Store) ListRoles(ctx context.Context, realmID, clientUUID, search string, first, limit int) ([]*Role, error) {
	q := `SELECT ` + roleCols + ` FROM roles r WHERE r.realm_id = ? AND r.client_uuid = ?`
	args := []any{realmID, clientUUID}
	if search != "" {
		p := "%" + likeEscape(strings.ToLower(search)) + "%"
		q += ` AND (lower(r.name) LIKE ? ESCAPE '\' OR lower(r.description) LIKE ? ESCAPE '\')`
		args = append(args, p, p)
	}
	q += ` ORDER BY r.name LIMIT ? OFFSET ?`
	args = append(args, limit, first)
	return s.queryRoles(ctx, "list roles", q, args...)
}

// RealmRoles returns every role of the realm, realm and client roles alike,
// with the composite edges as a parent id → child ids map. Effective-role
// expansion for tokens works on this snapshot.
func (s *Store) RealmRoles(ctx context.Context, realmID string) ([]*Role, map[string][]string, error) {
	roles, err := s.queryRoles(ctx, "realm roles",
		`SELECT `+roleCols+` FROM roles r WHERE r.realm_id = ?`, realmID)
	if err != nil {
		return nil, nil, err
	}
	rows, err := s.q.QueryContext(ctx, `SELECT c.parent_id, c.child_id FROM role_composites c
		JOIN roles r ON r.id = c.parent_id WHERE r.realm_id = ?`, realmID)
	if err != nil {
		return nil, nil, mapErr("realm composites", err)
	}
	defer rows.Close()
	edges := map[string][]string{}
	for rows.Next() {
		var p, c string
		if err := rows.Scan(&p, &c); err != nil {
			return nil, nil, mapErr("realm composites", err)
		}
		edges[p] = append(edges[p], c)
	}
	return roles, edges, mapErr("realm composites", rows.Err())
}

// AddUserRoles maps roles directly to the user; existing mappings stay.
func (s *Store) AddUserRoles(ctx context.Context, userID string, roleIDs ...string) error {
	for _, id := range roleIDs {
		if _, err := s.q.ExecContext(ctx,
			`INSERT INTO user_roles (user_id, role_id) VALUES (?,?) ON CONFLICT DO NOTHING`, userID, id); err != nil {
			return mapErr("add user role", err)
		}
	}
	return nil
}

// RemoveUserRoles deletes direct role mappings; missing ones are ignored.
func (s *Store) RemoveUserRoles(ctx context.Context, userID string, roleIDs ...string) error {
	for _, id := range roleIDs {
		if _, err := s.q.ExecContext(ctx,
			`DELETE FROM user_roles WHERE user_id = ? AND role_id = ?`, userID, id); err != nil {
			return mapErr("remove user role", err)
		}
	}
	return nil
}

// UserRoles returns the roles mapped directly to the user, ordered by name.
func (s *Store) UserRoles(ctx context.Context, userID string) ([]*Role, error) {
	return s.queryRoles(ctx, "user roles", `SELECT `+roleCols+` FROM roles r
		JOIN user_roles ur ON ur.role_id = r.id WHERE ur.user_id = ? ORDER BY r.name`, userID)
}
