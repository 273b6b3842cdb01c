// Package auditlog keeps the platform's audit log: it stores the
// AuditEvents of the `audit` topic (written by every part's audit
// recorder, libs/audit) and answers the operators' queries
// (comfortech.data.v1.AuditService, through the admin gateway).
package auditlog

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/comfortech/platform/libs/sqldb"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/data/internal/app"
)

// VersionTable is the goose version table of the audit log's migrations,
// separate from the core's and the telemetry store's.
const VersionTable = "audit_goose_db_version"

// Page sizes of the audit log (the proto documents them).
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

//go:embed migrations
var migrations embed.FS

// Log stores and lists audit events.
type Log struct {
	db *sqldb.DB
}

// New returns the log on db. Call Migrate before use.
func New(db *sqldb.DB) *Log { return &Log{db: db} }

// Migrate creates or upgrades the log's table.
func (l *Log) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("auditlog: %w", err)
	}
	if err := sqldb.Migrate(ctx, l.db.DB, l.db.Dialect, fsys, VersionTable); err != nil {
		return fmt.Errorf("auditlog: %w", err)
	}
	return nil
}

// Add stores events in one transaction; an event already stored (same id)
// is skipped.
func (l *Log) Add(ctx context.Context, events ...*eventsv1.AuditEvent) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("auditlog: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_events
		(id, time_us, actor_id, action, resource_type, resource_id, event)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("auditlog: %w", err)
	}
	defer func() { _ = stmt.Close() }()
	for _, e := range events {
		doc, err := protojson.Marshal(e)
		if err != nil {
			return fmt.Errorf("auditlog: %w", err)
		}
		if _, err := stmt.ExecContext(ctx, e.GetId(), e.GetTime().AsTime().UnixMicro(), e.GetActor().GetAccountId(),
			e.GetAction(), e.GetResourceType(), e.GetResourceId(), string(doc)); err != nil {
			return fmt.Errorf("auditlog: store %s: %w", e.GetId(), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("auditlog: %w", err)
	}
	return nil
}

// Filter narrows a listing; zero fields do not filter.
type Filter struct {
	ActorID string
	// Action matches exactly, or as a prefix when it ends with ".".
	Action       string
	ResourceType string
	ResourceID   string
	// Start and End bound the time: [Start, End).
	Start, End time.Time
}

// List returns the events matching f, newest first, a page at a time.
func (l *Log) List(ctx context.Context, f Filter, p app.PageRequest) ([]*eventsv1.AuditEvent, string, error) {
	cursor, limit, err := app.ParsePage(p, DefaultPageSize, MaxPageSize)
	if err != nil {
		return nil, "", err
	}
	var where []string
	var args []any
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.ActorID != "" {
		arg("actor_id = $%d", f.ActorID)
	}
	if prefix, ok := strings.CutSuffix(f.Action, "."); ok {
		// Actions are `<area>.<verb>` of [a-z_.]: no LIKE wildcards to escape
		// but "_", which the range below avoids altogether.
		arg("action >= $%d", prefix+".")
		arg("action < $%d", prefix+"/") // "/" sorts right after "."
	} else if f.Action != "" {
		arg("action = $%d", f.Action)
	}
	if f.ResourceType != "" {
		arg("resource_type = $%d", f.ResourceType)
	}
	if f.ResourceID != "" {
		arg("resource_id = $%d", f.ResourceID)
	}
	if !f.Start.IsZero() {
		arg("time_us >= $%d", f.Start.UnixMicro())
	}
	if !f.End.IsZero() {
		arg("time_us < $%d", f.End.UnixMicro())
	}
	if !cursor.IsZero() {
		args = append(args, cursor.Time, cursor.ID)
		where = append(where, fmt.Sprintf("(time_us < $%d OR (time_us = $%d AND id < $%d))", len(args)-1, len(args)-1, len(args)))
	}
	q := "SELECT time_us, id, event FROM audit_events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY time_us DESC, id DESC LIMIT $%d", len(args))
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("auditlog: list: %w", err)
	}
	defer func() { _ = rows.Close() }()
	type row struct {
		cursor app.Cursor
		event  *eventsv1.AuditEvent
	}
	var found []row
	for rows.Next() {
		var r row
		var doc string
		if err := rows.Scan(&r.cursor.Time, &r.cursor.ID, &doc); err != nil {
			return nil, "", fmt.Errorf("auditlog: list: %w", err)
		}
		r.event = &eventsv1.AuditEvent{}
		if err := protojson.Unmarshal([]byte(doc), r.event); err != nil {
			return nil, "", fmt.Errorf("auditlog: event %s: %w", r.cursor.ID, err)
		}
		found = append(found, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("auditlog: list: %w", err)
	}
	found, next := app.NextPage(found, limit, func(r row) app.Cursor { return r.cursor })
	out := make([]*eventsv1.AuditEvent, len(found))
	for i, r := range found {
		out[i] = r.event
	}
	return out, next, nil
}
