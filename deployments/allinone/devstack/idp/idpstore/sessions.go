package idpstore

import (
	"context"
	"errors"
)

// Session is a user session: one login, kept alive by refreshes until it
// idles out, reaches its maximum lifespan or is logged out.
type Session struct {
	ID      string
	RealmID string
	UserID  string
	// ClientID is the public clientId of the client that logged in.
	ClientID      string
	Scope         string
	StartedMs     int64
	LastRefreshMs int64
}

// Key is a realm key: an RSA signing or encryption key pair, or the HMAC
// key that signs refresh tokens.
type Key struct {
	KID     string
	RealmID string
	// Alg is RS256, RSA-OAEP or HS512; Use is "sig" or "enc".
	Alg, Use string
	// Secret is the PKCS#8 DER private key, or the raw HMAC key.
	Secret []byte
	// Cert is the DER self-signed certificate of an RSA key.
	Cert []byte
	// Active keys sign; inactive ones are still published and verify.
	Active    bool
	CreatedMs int64
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// CreateSession inserts a session.
func (s *Store) CreateSession(ctx context.Context, ss *Session) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO sessions (id, realm_id, user_id, client_id, scope, started_ms, last_refresh_ms)
		VALUES (?,?,?,?,?,?,?)`, ss.ID, ss.RealmID, ss.UserID, ss.ClientID, ss.Scope, ss.StartedMs, ss.LastRefreshMs)
	return mapErr("create session", err)
}

// SessionByID returns the session with id.
func (s *Store) SessionByID(ctx context.Context, realmID, id string) (*Session, error) {
	var ss Session
	err := s.q.QueryRowContext(ctx, `SELECT id, realm_id, user_id, client_id, scope, started_ms, last_refresh_ms
		FROM sessions WHERE realm_id = ? AND id = ?`, realmID, id).
		Scan(&ss.ID, &ss.RealmID, &ss.UserID, &ss.ClientID, &ss.Scope, &ss.StartedMs, &ss.LastRefreshMs)
	if err != nil {
		return nil, mapErr("session by id", err)
	}
	return &ss, nil
}

// TouchSession records a refresh of the session at ms.
func (s *Store) TouchSession(ctx context.Context, id string, ms int64) error {
	res, err := s.q.ExecContext(ctx, `UPDATE sessions SET last_refresh_ms = ? WHERE id = ?`, ms, id)
	return affected("touch session", res, err)
}

// DeleteSession ends a session; deleting a missing one is not an error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id)
	return mapErr("delete session", err)
}

// DeleteUserSessions ends every session of the user.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	return mapErr("delete user sessions", err)
}

// DeleteExpiredSessions removes the realm's sessions idle since before
// idleBeforeMs or started before startedBeforeMs.
func (s *Store) DeleteExpiredSessions(ctx context.Context, realmID string, idleBeforeMs, startedBeforeMs int64) (int64, error) {
	res, err := s.q.ExecContext(ctx, `DELETE FROM sessions WHERE realm_id = ? AND (last_refresh_ms < ? OR started_ms < ?)`,
		realmID, idleBeforeMs, startedBeforeMs)
	if err != nil {
		return 0, mapErr("delete expired sessions", err)
	}
	n, err := res.RowsAffected()
	return n, mapErr("delete expired sessions", err)
}

// InsertKey stores a key. When it is active, every other key of the same
// realm, algorithm and use becomes inactive.
func (s *Store) InsertKey(ctx context.Context, k *Key) error {
	return s.InTx(ctx, func(tx *Store) error {
		if k.Active {
			if _, err := tx.q.ExecContext(ctx, `UPDATE keys SET active = 0 WHERE realm_id = ? AND alg = ? AND use = ?`,
				k.RealmID, k.Alg, k.Use); err != nil {
				return mapErr("insert key", err)
			}
		}
		_, err := tx.q.ExecContext(ctx, `INSERT INTO keys (kid, realm_id, alg, use, secret, cert, active, created_ms)
			VALUES (?,?,?,?,?,?,?,?)`, k.KID, k.RealmID, k.Alg, k.Use, k.Secret, k.Cert, b2i(k.Active), k.CreatedMs)
		return mapErr("insert key", err)
	})
}

// Keys returns every key of the realm, oldest first.
func (s *Store) Keys(ctx context.Context, realmID string) ([]*Key, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT kid, realm_id, alg, use, secret, cert, active, created_ms
		FROM keys WHERE realm_id = ? ORDER BY created_ms, kid`, realmID)
	if err != nil {
		return nil, mapErr("keys", err)
	}
	defer rows.Close()
	var out []*Key
	for rows.Next() {
		var k Key
		if err := rows.Scan(&k.KID, &k.RealmID, &k.Alg, &k.Use, &k.Secret, &k.Cert, &k.Active, &k.CreatedMs); err != nil {
			return nil, mapErr("keys", err)
		}
		out = append(out, &k)
	}
	return out, mapErr("keys", rows.Err())
}

// DeleteKey removes a key of the realm.
func (s *Store) DeleteKey(ctx context.Context, realmID, kid string) error {
	res, err := s.q.ExecContext(ctx, `DELETE FROM keys WHERE realm_id = ? AND kid = ?`, realmID, kid)
	return affected("delete key", res, err)
}

// RevokeToken records an access token's jti as revoked until expiresMs,
// and forgets revocations that have expired.
func (s *Store) RevokeToken(ctx context.Context, jti string, expiresMs, nowMs int64) error {
	if _, err := s.q.ExecContext(ctx, `DELETE FROM revoked_tokens WHERE expires_ms < ?`, nowMs); err != nil {
		return mapErr("revoke token", err)
	}
	_, err := s.q.ExecContext(ctx, `INSERT INTO revoked_tokens (jti, expires_ms) VALUES (?,?) ON CONFLICT DO NOTHING`,
		jti, expiresMs)
	return mapErr("revoke token", err)
}

// TokenRevoked reports whether the jti was revoked.
func (s *Store) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM revoked_tokens WHERE jti = ?`, jti).Scan(&n)
	return n > 0, mapErr("token revoked", err)
}
