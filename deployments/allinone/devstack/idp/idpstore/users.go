package idpstore

import (
	"context"
	"database/sql"
	"strings"
)

// User is a realm user. Username and Email are stored lower-cased by the
// caller, as Keycloak does.
type User struct {
	ID              string
	RealmID         string
	Username        string
	Email           string
	FirstName       string
	LastName        string
	Enabled         bool
	EmailVerified   bool
	CreatedMs       int64
	Attributes      map[string][]string
	RequiredActions []string
	// ServiceAccountClient is the internal id of the client whose service
	// account this user is, or "".
	ServiceAccountClient string
}

const userCols = `id, realm_id, username, email, first_name, last_name, enabled, email_verified,
	created_ms, attributes, required_actions, service_account_client`

func scanUser(row interface{ Scan(...any) error }) (*User, error) {
	var (
		u            User
		email        sql.NullString
		attrs, reqAc string
	)
	if err := row.Scan(&u.ID, &u.RealmID, &u.Username, &email, &u.FirstName, &u.LastName, &u.Enabled,
		&u.EmailVerified, &u.CreatedMs, &attrs, &reqAc, &u.ServiceAccountClient); err != nil {
		return nil, err
	}
	u.Email = email.String
	if err := fromJSON("user", attrs, &u.Attributes); err != nil {
		return nil, err
	}
	if err := fromJSON("user", reqAc, &u.RequiredActions); err != nil {
		return nil, err
	}
	return &u, nil
}

// nullable stores "" as NULL so that the partial unique index on email
// ignores users without one.
func nullable(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// CreateUser inserts a user. A duplicate username or email gives ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO users (`+userCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		u.ID, u.RealmID, u.Username, nullable(u.Email), u.FirstName, u.LastName, b2i(u.Enabled),
		b2i(u.EmailVerified), u.CreatedMs, jsonText(u.Attributes), jsonText(u.RequiredActions), u.ServiceAccountClient)
	return mapErr("create user", err)
}

// UpdateUser writes every field of u but its id, realm and creation time.
func (s *Store) UpdateUser(ctx context.Context, u *User) error {
	res, err := s.q.ExecContext(ctx, `UPDATE users SET username = ?, email = ?, first_name = ?, last_name = ?,
		enabled = ?, email_verified = ?, attributes = ?, required_actions = ? WHERE realm_id = ? AND id = ?`,
		u.Username, nullable(u.Email), u.FirstName, u.LastName, b2i(u.Enabled), b2i(u.EmailVerified),
		jsonText(u.Attributes), jsonText(u.RequiredActions), u.RealmID, u.ID)
	return affected("update user", res, err)
}

// DeleteUser deletes the user with its credentials, role mappings and
// sessions.
func (s *Store) DeleteUser(ctx context.Context, realmID, id string) error {
	res, err := s.q.ExecContext(ctx, `DELETE FROM users WHERE realm_id = ? AND id = ?`, realmID, id)
	return affected("delete user", res, err)
}

func (s *Store) userWhere(ctx context.Context, op, where string, args ...any) (*User, error) {
	u, err := scanUser(s.q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE `+where, args...))
	if err != nil {
		return nil, mapErr(op, err)
	}
	return u, nil
}

// UserByID returns the realm's user with id.
func (s *Store) UserByID(ctx context.Context, realmID, id string) (*User, error) {
	return s.userWhere(ctx, "user by id", `realm_id = ? AND id = ?`, realmID, id)
}

// UserByUsername returns the realm's user whose (lower-cased) username is
// username.
func (s *Store) UserByUsername(ctx context.Context, realmID, username string) (*User, error) {
	return s.userWhere(ctx, "user by username", `realm_id = ? AND username = ?`, realmID, username)
}

// UserByEmail returns the realm's user whose (lower-cased) email is email.
func (s *Store) UserByEmail(ctx context.Context, realmID, email string) (*User, error) {
	return s.userWhere(ctx, "user by email", `realm_id = ? AND email = ?`, realmID, email)
}

// ServiceAccountUser returns the service-account user of the client.
func (s *Store) ServiceAccountUser(ctx context.Context, realmID, clientUUID string) (*User, error) {
	return s.userWhere(ctx, "service account user", `realm_id = ? AND service_account_client = ?`, realmID, clientUUID)
}

// UserFilter selects users as Keycloak's GET /users does. Service-account
// users are never listed.
type UserFilter struct {
	// Username, Email, FirstName and LastName match case-insensitive
	// substrings, or whole values when Exact is set.
	Username, Email, FirstName, LastName string
	Exact                                bool
	// SearchTerms must each match (as a LIKE pattern over the lower-cased
	// username, email, first or last name) for a user to be listed.
	SearchTerms   []string
	Enabled       *bool
	EmailVerified *bool
	First, Max    int
}

func (f UserFilter) where() (string, []any) {
	conds := []string{"service_account_client = ''"}
	var args []any
	for _, c := range []struct{ col, val string }{
		{"username", f.Username}, {"email", f.Email}, {"first_name", f.FirstName}, {"last_name", f.LastName},
	} {
		if c.val == "" {
			continue
		}
		v := strings.ToLower(c.val)
		if f.Exact {
			conds = append(conds, "lower(coalesce("+c.col+", '')) = ?")
			args = append(args, v)
		} else {
			conds = append(conds, "lower(coalesce("+c.col+", '')) LIKE ? ESCAPE '\\'")
			args = append(args, "%"+likeEscape(v)+"%")
		}
	}
	for _, t := range f.SearchTerms {
		conds = append(conds, `(username LIKE ? ESCAPE '\' OR lower(coalesce(email, '')) LIKE ? ESCAPE '\'
			OR lower(first_name) LIKE ? ESCAPE '\' OR lower(last_name) LIKE ? ESCAPE '\')`)
		args = append(args, t, t, t, t)
	}
	if f.Enabled != nil {
		conds = append(conds, "enabled = ?")
		args = append(args, b2i(*f.Enabled))
	}
	if f.EmailVerified != nil {
		conds = append(conds, "email_verified = ?")
		args = append(args, b2i(*f.EmailVerified))
	}
	return strings.Join(conds, " AND "), args
}

// ListUsers returns the realm's users matching f, ordered by username.
func (s *Store) ListUsers(ctx context.Context, realmID string, f UserFilter) ([]*User, error) {
	where, args := f.where()
	args = append([]any{realmID}, args...)
	args = append(args, f.Max, f.First)
	rows, err := s.q.QueryContext(ctx, `SELECT `+userCols+` FROM users WHERE realm_id = ? AND `+where+
		` ORDER BY username LIMIT ? OFFSET ?`, args...)
	if err != nil {
		return nil, mapErr("list users", err)
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, mapErr("list users", err)
		}
		out = append(out, u)
	}
	return out, mapErr("list users", rows.Err())
}

// CountUsers counts the realm's users matching f (First and Max ignored).
func (s *Store) CountUsers(ctx context.Context, realmID string, f UserFilter) (int, error) {
	where, args := f.where()
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE realm_id = ? AND `+where,
		append([]any{realmID}, args...)...).Scan(&n)
	return n, mapErr("count users", err)
}

// SetPasswordHash stores (replacing) the user's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string, createdMs int64) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO credentials (user_id, hash, created_ms) VALUES (?,?,?)
		ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, created_ms = excluded.created_ms`,
		userID, hash, createdMs)
	return mapErr("set password", err)
}

// PasswordHash returns the user's password hash, or ErrNotFound when the
// user has no password.
func (s *Store) PasswordHash(ctx context.Context, userID string) (string, error) {
	var h string
	err := s.q.QueryRowContext(ctx, `SELECT hash FROM credentials WHERE user_id = ?`, userID).Scan(&h)
	return h, mapErr("password hash", err)
}

// HasPassword reports whether the user has a password credential.
func (s *Store) HasPassword(ctx context.Context, userID string) (bool, error) {
	_, err := s.PasswordHash(ctx, userID)
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, err
}
