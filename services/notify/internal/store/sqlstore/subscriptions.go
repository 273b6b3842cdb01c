package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/comfortech/platform/services/notify/internal/app"
)

const subscriptionCols = `name, url, topics, filters, auth, enabled, disabled_reason, secret, old_secret, old_expire, created_at, updated_at, active_at`

func scanSubscription(sc interface{ Scan(...any) error }) (*app.Subscription, error) {
	s := &app.Subscription{}
	var topics, filters, auth string
	var enabled int
	var oe, c, u, a int64
	if err := sc.Scan(&s.Name, &s.URL, &topics, &filters, &auth, &enabled, &s.DisabledReason, &s.Secret, &s.OldSecret, &oe, &c, &u, &a); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(topics), &s.Topics); err != nil {
		return nil, fmt.Errorf("sqlstore: subscription topics: %w", err)
	}
	if err := json.Unmarshal([]byte(filters), &s.Filters); err != nil {
		return nil, fmt.Errorf("sqlstore: subscription filters: %w", err)
	}
	if len(s.Filters) == 0 {
		s.Filters = nil
	}
	if auth != "" {
		s.Auth = &app.WebhookAuth{}
		if err := json.Unmarshal([]byte(auth), s.Auth); err != nil {
			return nil, fmt.Errorf("sqlstore: subscription auth: %w", err)
		}
	}
	s.Enabled, s.OldExpire, s.CreateTime, s.UpdateTime = enabled == 1, fromUS(oe), fromUS(c), fromUS(u)
	if a != 0 {
		s.ActiveTime = fromUS(a)
	}
	return s, nil
}

// activeAt is a subscription's active_at: 0 for none.
func activeAt(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return us(t)
}

// PutSubscription implements app.Store.
func (s *Store) PutSubscription(ctx context.Context, sub *app.Subscription) error {
	filters := sub.Filters
	if filters == nil {
		filters = []app.Filter{}
	}
	fs, err := json.Marshal(filters)
	if err != nil {
		return fmt.Errorf("sqlstore: put subscription: %w", err)
	}
	auth := ""
	if sub.Auth != nil {
		b, err := json.Marshal(sub.Auth)
		if err != nil {
			return fmt.Errorf("sqlstore: put subscription: %w", err)
		}
		auth = string(b)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO subscriptions (`+subscriptionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (name) DO UPDATE SET url = excluded.url, topics = excluded.topics, filters = excluded.filters, auth = excluded.auth,
			enabled = excluded.enabled, disabled_reason = excluded.disabled_reason, secret = excluded.secret, old_secret = excluded.old_secret,
			old_expire = excluded.old_expire, updated_at = excluded.updated_at, active_at = excluded.active_at`,
		sub.Name, sub.URL, jsonList(sub.Topics), string(fs), auth, b2i(sub.Enabled), sub.DisabledReason, sub.Secret, sub.OldSecret,
		us(sub.OldExpire), us(sub.CreateTime), us(sub.UpdateTime), activeAt(sub.ActiveTime))
	if err != nil {
		return fmt.Errorf("sqlstore: put subscription: %w", err)
	}
	return nil
}

// GetSubscription implements app.Store.
func (s *Store) GetSubscription(ctx context.Context, name string) (*app.Subscription, error) {
	sub, err := scanSubscription(s.db.QueryRowContext(ctx, `SELECT `+subscriptionCols+` FROM subscriptions WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("subscription")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get subscription: %w", err)
	}
	return sub, nil
}

// ListSubscriptions implements app.Store.
func (s *Store) ListSubscriptions(ctx context.Context, p app.Page) ([]*app.Subscription, string, error) {
	n := size(p, 50)
	rows, err := s.db.QueryContext(ctx, `SELECT `+subscriptionCols+` FROM subscriptions WHERE name > $1 ORDER BY name LIMIT $2`, p.Token, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: list subscriptions: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*app.Subscription
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) > n {
		return out[:n], out[n-1].Name, nil
	}
	return out, "", nil
}

// DeleteSubscription implements app.Store.
func (s *Store) DeleteSubscription(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM subscriptions WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("sqlstore: delete subscription: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("subscription")
	}
	return nil
}

// DisableSubscription implements app.Store.
func (s *Store) DisableSubscription(ctx context.Context, name, reason string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE subscriptions SET disabled_reason = $2, updated_at = $3 WHERE name = $1`, name, reason, us(at))
	if err != nil {
		return fmt.Errorf("sqlstore: disable subscription: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("subscription")
	}
	return nil
}
