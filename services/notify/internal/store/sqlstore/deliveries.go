package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/outbox"
	"github.com/comfortech/platform/libs/sqldb"
	"github.com/comfortech/platform/services/notify/internal/app"
)

const templateCols = `id, application, event_type, channel, locale, subject, body, html_body, updated_at`

func scanTemplate(sc interface{ Scan(...any) error }) (*app.Template, error) {
	t := &app.Template{}
	var ch string
	var u int64
	if err := sc.Scan(&t.ID, &t.Application, &t.EventType, &ch, &t.Locale, &t.Subject, &t.Body, &t.HTMLBody, &u); err != nil {
		return nil, err
	}
	t.Channel, t.UpdateTime = app.Channel(ch), fromUS(u)
	return t, nil
}

// PutTemplate implements app.Store; t.ID is kept for a known key.
func (s *Store) PutTemplate(ctx context.Context, t *app.Template) (bool, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `INSERT INTO templates (`+templateCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (application, event_type, channel, locale) DO UPDATE SET subject = excluded.subject, body = excluded.body,
			html_body = excluded.html_body, updated_at = excluded.updated_at
		RETURNING id`, newID(t.ID), t.Application, t.EventType, string(t.Channel), t.Locale, t.Subject, t.Body, t.HTMLBody, us(t.UpdateTime)).Scan(&id)
	if err != nil {
		return false, fmt.Errorf("sqlstore: put template: %w", err)
	}
	created := t.ID == "" || t.ID != id
	t.ID = id
	return created, nil
}

// FindTemplate implements app.Store.
func (s *Store) FindTemplate(ctx context.Context, application, eventType string, ch app.Channel, locale string) (*app.Template, error) {
	t, err := scanTemplate(s.db.QueryRowContext(ctx, `SELECT `+templateCols+` FROM templates
		WHERE application = $1 AND event_type = $2 AND channel = $3 AND locale = $4`, application, eventType, string(ch), locale))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("template")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find template: %w", err)
	}
	return t, nil
}

// ListTemplates implements app.Store: by id, filtered by f's non-zero fields.
func (s *Store) ListTemplates(ctx context.Context, f app.Template, p app.Page) ([]*app.Template, string, error) {
	n := size(p, 50)
	rows, err := s.db.QueryContext(ctx, `SELECT `+templateCols+` FROM templates WHERE id > $1
		AND ($2 = '' OR application = $2) AND ($3 = '' OR event_type = $3) AND ($4 = '' OR channel = $4) AND ($5 = '' OR locale = $5)
		ORDER BY id LIMIT $6`, p.Token, f.Application, f.EventType, string(f.Channel), f.Locale, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: list templates: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*app.Template
	for rows.Next() {
		t, err := scanTemplate(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) > n {
		return out[:n], out[n-1].ID, nil
	}
	return out, "", nil
}

// DeleteTemplate implements app.Store.
func (s *Store) DeleteTemplate(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM templates WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("sqlstore: delete template: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("template")
	}
	return nil
}

const deliveryCols = `id, notification_id, account_id, application, event_type, level, channel, recipient, masked, subject, body,
	html_body, fallback, status, attempts, next_attempt_at, source, created_at, subscription, topic, traceparent`

func scanDelivery(sc interface{ Scan(...any) error }) (*app.Delivery, error) {
	d := &app.Delivery{}
	var ch, st, src string
	var next, c int64
	if err := sc.Scan(&d.ID, &d.NotificationID, &d.AccountID, &d.Application, &d.EventType, &d.Level, &ch, &d.Recipient, &d.Masked,
		&d.Subject, &d.Body, &d.HTMLBody, &d.Fallback, &st, &d.Attempts, &next, &src, &c, &d.Subscription, &d.Topic, &d.TraceParent); err != nil {
		return nil, err
	}
	d.Channel, d.Status, d.NextAttempt, d.CreateTime = app.Channel(ch), app.Status(st), fromUS(next), fromUS(c)
	if src != "" {
		d.Source = []byte(src)
	}
	return d, nil
}

// maxRows bounds the rows of one multi-row statement, well inside
// SQLite's and PostgreSQL's limits on bound parameters.
const maxRows = 500

// placeholders returns rows groups of cols placeholders: "($1, $2), ($3,
// $4)" for PostgreSQL, "(?, ?), (?, ?)" for SQLite, whose parser looks up
// each numbered one in a list, which is quadratic in long statements.
func (s *Store) placeholders(rows, cols int) string {
	var b strings.Builder
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			if s.db.Dialect == sqldb.Postgres {
				fmt.Fprintf(&b, "$%d", r*cols+c+1)
			} else {
				b.WriteByte('?')
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}

// AddDeliveries implements app.Store: one multi-row INSERT per maxRows
// deliveries, then, for the duplicates only, an UPDATE reviving failed ones.
func (s *Store) AddDeliveries(ctx context.Context, ds []*app.Delivery) ([]*app.Delivery, error) {
	var added []*app.Delivery
	err := s.tx(ctx, func(tx *sql.Tx) error {
		added = added[:0]
		for chunk := range slices.Chunk(ds, maxRows) {
			args := make([]any, 0, 21*len(chunk))
			for _, d := range chunk {
				args = append(args, d.ID, d.NotificationID, d.AccountID, d.Application, d.EventType, d.Level, string(d.Channel), d.Recipient,
					d.Masked, d.Subject, d.Body, d.HTMLBody, d.Fallback, string(d.Status), d.Attempts, us(d.NextAttempt), string(d.Source), us(d.CreateTime),
					d.Subscription, d.Topic, d.TraceParent)
			}
			rows, err := tx.QueryContext(ctx, `INSERT INTO deliveries (`+deliveryCols+`) VALUES `+s.placeholders(len(chunk), 21)+`
				ON CONFLICT (notification_id, channel, recipient) DO NOTHING RETURNING id`, args...)
			if err != nil {
				return fmt.Errorf("sqlstore: add deliveries: %w", err)
			}
			inserted := make(map[string]bool, len(chunk))
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					_ = rows.Close()
					return fmt.Errorf("sqlstore: add deliveries: %w", err)
				}
				inserted[id] = true
			}
			_ = rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("sqlstore: add deliveries: %w", err)
			}
			for _, d := range chunk {
				if inserted[d.ID] {
					added = append(added, d)
					continue
				}
				// A replay revives a dead delivery; a sent or pending one is a duplicate.
				var id string
				err = tx.QueryRowContext(ctx, `UPDATE deliveries SET status = $4, attempts = 0, next_attempt_at = $5, traceparent = $6
					WHERE notification_id = $1 AND channel = $2 AND recipient = $3 AND status = 'failed' RETURNING id`,
					d.NotificationID, string(d.Channel), d.Recipient, string(app.StatusPending), us(d.NextAttempt), d.TraceParent).Scan(&id)
				switch {
				case errors.Is(err, sql.ErrNoRows):
				case err != nil:
					return fmt.Errorf("sqlstore: revive delivery: %w", err)
				default:
					d.ID, d.Attempts = id, 0
					added = append(added, d)
				}
			}
		}
		return nil
	})
	return added, err
}

// GetDelivery implements app.Store.
func (s *Store) GetDelivery(ctx context.Context, notificationID string, ch app.Channel, recipient string) (*app.Delivery, error) {
	d, err := scanDelivery(s.db.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM deliveries
		WHERE notification_id = $1 AND channel = $2 AND recipient = $3`, notificationID, string(ch), recipient))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("delivery")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get delivery: %w", err)
	}
	return d, nil
}

// ClaimDue implements app.Store.
func (s *Store) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, n int) ([]*app.Delivery, error) {
	lock := ""
	if s.db.Dialect == sqldb.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []*app.Delivery
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1
			ORDER BY next_attempt_at LIMIT $2`+lock, us(now), n)
		if err != nil {
			return fmt.Errorf("sqlstore: claim: %w", err)
		}
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				_ = rows.Close()
				return err
			}
			out = append(out, d)
		}
		_ = rows.Close()
		if err := rows.Err(); err != nil || len(out) == 0 {
			return err
		}
		args := []any{us(now.Add(lease))}
		ph := make([]string, len(out))
		for i, d := range out {
			args = append(args, d.ID)
			ph[i] = fmt.Sprintf("$%d", i+2)
		}
		_, err = tx.ExecContext(ctx, `UPDATE deliveries SET next_attempt_at = $1 WHERE id IN (`+strings.Join(ph, ",")+`)`, args...)
		return err
	})
	return out, err
}

// Release implements app.Store.
func (s *Store) Release(ctx context.Context, ids []string) error {
	for chunk := range slices.Chunk(ids, maxRows) {
		args := []any{us(time.Now())}
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			args = append(args, id)
			ph[i] = fmt.Sprintf("$%d", i+2)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE deliveries SET next_attempt_at = $1 WHERE status = 'pending' AND id IN (`+strings.Join(ph, ",")+`)`,
			args...); err != nil {
			return fmt.Errorf("sqlstore: release: %w", err)
		}
	}
	return nil
}

// RecordAttempt implements app.Store.
func (s *Store) RecordAttempt(ctx context.Context, d *app.Delivery, a *app.Attempt, events ...app.Event) error {
	return s.RecordAttempts(ctx, []app.AttemptRecord{{Delivery: d, Attempt: a, Events: events}})
}

// RecordAttempts implements app.Store with one multi-row statement per
// table (and chunk of maxRows) in one transaction.
func (s *Store) RecordAttempts(ctx context.Context, recs []app.AttemptRecord) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var msgs []kafka.Message
		for chunk := range slices.Chunk(recs, maxRows) {
			var dargs, largs []any
			for _, r := range chunk {
				if d := r.Delivery; d != nil {
					dargs = append(dargs, d.ID, string(d.Status), d.Attempts, us(d.NextAttempt))
				}
				a := r.Attempt
				largs = append(largs, a.ID, a.DeliveryID, a.NotificationID, a.AccountID, a.Application, a.EventType, a.Level, string(a.Channel),
					a.Recipient, a.Attempt, string(a.Status), a.ProviderStatus, a.Detail, a.Latency.Microseconds(), us(a.NextAttempt), us(a.Time),
					a.Subscription)
				for _, e := range r.Events {
					m := kafka.Message{Topic: e.Topic, Key: []byte(e.Key), Value: e.Value}
					for k, v := range e.Headers {
						m.SetHeader(k, v)
					}
					msgs = append(msgs, m)
				}
			}
			if n := len(dargs) / 4; n > 0 {
				// The VALUES columns are column1..column4 in both dialects;
				// the casts give PostgreSQL their types.
				vals := make([]string, n)
				for i := range n {
					p := [4]string{"?", "?", "?", "?"}
					if s.db.Dialect == sqldb.Postgres {
						p = [4]string{fmt.Sprintf("$%d", 4*i+1), fmt.Sprintf("$%d", 4*i+2), fmt.Sprintf("$%d", 4*i+3), fmt.Sprintf("$%d", 4*i+4)}
					}
					vals[i] = fmt.Sprintf("(CAST(%s AS TEXT), CAST(%s AS TEXT), CAST(%s AS INTEGER), CAST(%s AS BIGINT))", p[0], p[1], p[2], p[3])
				}
				if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = v.column2, attempts = v.column3, next_attempt_at = v.column4
					FROM (VALUES `+strings.Join(vals, ", ")+`) AS v WHERE deliveries.id = v.column1`, dargs...); err != nil {
					return fmt.Errorf("sqlstore: update deliveries: %w", err)
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO delivery_log (`+attemptCols+`) VALUES `+s.placeholders(len(chunk), 17), largs...); err != nil {
				return fmt.Errorf("sqlstore: log attempts: %w", err)
			}
		}
		return outbox.Enqueue(ctx, tx, msgs...)
	})
}

const attemptCols = `id, delivery_id, notification_id, account_id, application, event_type, level, channel, recipient, attempt, status,
	provider_status, detail, latency_us, next_attempt_at, created_at, subscription`

func scanAttempt(sc interface{ Scan(...any) error }) (*app.Attempt, error) {
	a := &app.Attempt{}
	var ch, st string
	var lat, next, c int64
	if err := sc.Scan(&a.ID, &a.DeliveryID, &a.NotificationID, &a.AccountID, &a.Application, &a.EventType, &a.Level, &ch, &a.Recipient,
		&a.Attempt, &st, &a.ProviderStatus, &a.Detail, &lat, &next, &c, &a.Subscription); err != nil {
		return nil, err
	}
	a.Channel, a.Status, a.Latency, a.NextAttempt, a.Time = app.Channel(ch), app.Status(st), time.Duration(lat)*time.Microsecond, fromUS(next), fromUS(c)
	return a, nil
}

// ListAttempts implements app.Store, newest first.
func (s *Store) ListAttempts(ctx context.Context, f app.DeliveryFilter, p app.Page) ([]*app.Attempt, string, error) {
	n := size(p, 100)
	at, id := int64(1<<62), ""
	if p.Token != "" {
		var err error
		if at, id, err = parseTimeToken(p.Token); err != nil {
			return nil, "", err
		}
	}
	end := int64(1 << 62)
	if !f.End.IsZero() {
		end = us(f.End)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+attemptCols+` FROM delivery_log
		WHERE (created_at < $1 OR (created_at = $1 AND ($2 = '' OR id < $2)))
		AND ($3 = '' OR account_id = $3) AND ($4 = '' OR notification_id = $4) AND ($5 = '' OR application = $5)
		AND ($6 = '' OR event_type = $6) AND ($7 = '' OR channel = $7) AND ($8 = '' OR status = $8)
		AND created_at >= $9 AND created_at < $10 AND ($12 = '' OR subscription = $12)
		ORDER BY created_at DESC, id DESC LIMIT $11`,
		at, id, f.AccountID, f.NotificationID, f.Application, f.EventType, string(f.Channel), string(f.Status), us(f.Start), end, n+1, f.Subscription)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: list attempts: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*app.Attempt
	for rows.Next() {
		a, err := scanAttempt(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) > n {
		last := out[n-1]
		return out[:n], timeToken(us(last.Time), last.ID), nil
	}
	return out, "", nil
}

// GetAttempt implements app.Store.
func (s *Store) GetAttempt(ctx context.Context, id string) (*app.Attempt, error) {
	a, err := scanAttempt(s.db.QueryRowContext(ctx, `SELECT `+attemptCols+` FROM delivery_log WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("delivery")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get attempt: %w", err)
	}
	return a, nil
}

const deadCols = `id, topic, key, value, headers, reason, notification_id, attempts, replay_count, last_replay_at, created_at`

func scanDead(sc interface{ Scan(...any) error }) (*app.DeadLetter, error) {
	d := &app.DeadLetter{}
	var hs string
	var lr, c int64
	if err := sc.Scan(&d.ID, &d.Topic, &d.Key, &d.Value, &hs, &d.Reason, &d.NotificationID, &d.Attempts, &d.ReplayCount, &lr, &c); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(hs), &d.Headers); err != nil {
		return nil, fmt.Errorf("sqlstore: dead letter headers: %w", err)
	}
	d.LastReplay, d.CreateTime = fromUS(lr), fromUS(c)
	return d, nil
}

// AddDeadLetter implements app.Store; a known id is ignored (redelivered DLQ records).
func (s *Store) AddDeadLetter(ctx context.Context, d *app.DeadLetter) error {
	hs, _ := json.Marshal(d.Headers)
	if d.Headers == nil {
		hs = []byte("{}")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO dead_letters (`+deadCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO NOTHING`,
		d.ID, d.Topic, d.Key, d.Value, string(hs), d.Reason, d.NotificationID, d.Attempts, d.ReplayCount, us(d.LastReplay), us(d.CreateTime))
	if err != nil {
		return fmt.Errorf("sqlstore: add dead letter: %w", err)
	}
	return nil
}

// GetDeadLetter implements app.Store.
func (s *Store) GetDeadLetter(ctx context.Context, id string) (*app.DeadLetter, error) {
	d, err := scanDead(s.db.QueryRowContext(ctx, `SELECT `+deadCols+` FROM dead_letters WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("dead letter")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get dead letter: %w", err)
	}
	return d, nil
}

// ListDeadLetters implements app.Store, newest first.
func (s *Store) ListDeadLetters(ctx context.Context, f app.DeadLetterFilter, p app.Page) ([]*app.DeadLetter, string, error) {
	n := size(p, 50)
	at, id := int64(1<<62), ""
	if p.Token != "" {
		var err error
		if at, id, err = parseTimeToken(p.Token); err != nil {
			return nil, "", err
		}
	}
	end := int64(1 << 62)
	if !f.End.IsZero() {
		end = us(f.End)
	}
	replayed := -1
	if f.Replayed != nil {
		replayed = b2i(*f.Replayed)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+deadCols+` FROM dead_letters
		WHERE (created_at < $1 OR (created_at = $1 AND ($2 = '' OR id < $2))) AND ($3 = '' OR topic = $3)
		AND ($4 < 0 OR ($4 = 1 AND replay_count > 0) OR ($4 = 0 AND replay_count = 0))
		AND created_at >= $5 AND created_at < $6 ORDER BY created_at DESC, id DESC LIMIT $7`,
		at, id, f.Topic, replayed, us(f.Start), end, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: list dead letters: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*app.DeadLetter
	for rows.Next() {
		d, err := scanDead(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) > n {
		last := out[n-1]
		return out[:n], timeToken(us(last.CreateTime), last.ID), nil
	}
	return out, "", nil
}

// MarkReplayed implements app.Store.
func (s *Store) MarkReplayed(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE dead_letters SET replay_count = replay_count + 1, last_replay_at = $2 WHERE id = $1`, id, us(at))
	if err != nil {
		return fmt.Errorf("sqlstore: mark replayed: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("dead letter")
	}
	return nil
}

// DeleteDeadLetter implements app.Store.
func (s *Store) DeleteDeadLetter(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM dead_letters WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("sqlstore: delete dead letter: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("dead letter")
	}
	return nil
}

// AddSinkMessage implements app.Store.
func (s *Store) AddSinkMessage(ctx context.Context, m *app.SinkMessage) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sink_messages (id, channel, recipient, subject, body, html_body, notification_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, m.ID, string(m.Channel), m.Recipient, m.Subject, m.Body, m.HTMLBody, m.NotificationID, us(m.Time))
	if err != nil {
		return fmt.Errorf("sqlstore: add sink message: %w", err)
	}
	return nil
}

// ListSinkMessages implements app.Store, newest first.
func (s *Store) ListSinkMessages(ctx context.Context, ch app.Channel, recipient string, p app.Page) ([]*app.SinkMessage, string, error) {
	n := size(p, 50)
	at, id := int64(1<<62), ""
	if p.Token != "" {
		var err error
		if at, id, err = parseTimeToken(p.Token); err != nil {
			return nil, "", err
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, channel, recipient, subject, body, html_body, notification_id, created_at FROM sink_messages
		WHERE (created_at < $1 OR (created_at = $1 AND ($2 = '' OR id < $2))) AND ($3 = '' OR channel = $3) AND ($4 = '' OR recipient = $4)
		ORDER BY created_at DESC, id DESC LIMIT $5`, at, id, string(ch), recipient, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: list sink messages: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*app.SinkMessage
	for rows.Next() {
		m := &app.SinkMessage{}
		var c string
		var t int64
		if err := rows.Scan(&m.ID, &c, &m.Recipient, &m.Subject, &m.Body, &m.HTMLBody, &m.NotificationID, &t); err != nil {
			return nil, "", err
		}
		m.Channel, m.Time = app.Channel(c), fromUS(t)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) > n {
		last := out[n-1]
		return out[:n], timeToken(us(last.Time), last.ID), nil
	}
	return out, "", nil
}

// ClearSinkMessages implements app.Store.
func (s *Store) ClearSinkMessages(ctx context.Context) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sink_messages`)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: clear sink: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
