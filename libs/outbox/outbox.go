// Package outbox implements the transactional outbox of ARCHITECTURE §5:
// a service writes its events into the outbox table in the same database
// transaction as the state change (Enqueue), and a Relay sends the rows to
// Kafka in id order, deleting them only once the brokers acknowledged them.
// A state change and its event therefore happen together or not at all,
// and Kafka being down delays events without losing or reordering them.
//
// Delivery is at-least-once: a crash between Kafka's acknowledgement and
// the delete sends those rows again, so consumers must be idempotent (the
// CloudEvents ce_id is the natural key). The same SQL runs on PostgreSQL
// (pgx) and SQLite (modernc.org/sqlite); only the migrations and the
// relay's locking differ by Dialect.
package outbox

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"time"
	"unicode/utf8"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/sqldb"
)

// Dialect selects the SQL flavour of the database holding the outbox.
type Dialect = sqldb.Dialect

// The supported dialects.
const (
	Postgres = sqldb.Postgres
	SQLite   = sqldb.SQLite
)

// VersionTable is the goose version table Migrate uses, separate from the
// service's own so both migration sets number from 1 independently.
const VersionTable = "outbox_goose_db_version"

//go:embed migrations
var migrations embed.FS

// Migrations returns the goose migration files creating the outbox table
// for d, for a service that prefers to copy them into its own set.
func Migrations(d Dialect) (fs.FS, error) {
	switch d {
	case Postgres, SQLite:
		return fs.Sub(migrations, "migrations/"+string(d))
	}
	return nil, fmt.Errorf("outbox: unknown dialect %q", d)
}

// Migrate creates or upgrades the outbox table in db, recording its
// versions in VersionTable.
func Migrate(ctx context.Context, db *sql.DB, d Dialect) error {
	fsys, err := Migrations(d)
	if err != nil {
		return err
	}
	if err := sqldb.Migrate(ctx, db, d, fsys, VersionTable); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// storedHeader is one element of the headers JSON column. Values are kept
// as text so the table stays readable when inspecting a backlog.
type storedHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

const insertSQL = `INSERT INTO outbox (topic, key, headers, value, created_at) VALUES ($1, $2, $3, $4, $5)`

// Enqueue adds msgs to the outbox inside the caller's transaction, so they
// are relayed if and only if tx commits. The trace context of ctx is added
// to messages without a traceparent, so consumers join the caller's trace.
// Header values must be valid UTF-8 (CloudEvents and W3C headers are).
// Call Relay.Notify after the commit to send them without waiting for the
// next poll.
func Enqueue(ctx context.Context, tx *sql.Tx, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, insertSQL)
	if err != nil {
		return fmt.Errorf("outbox: enqueue: %w", err)
	}
	defer func() { _ = stmt.Close() }()
	now := time.Now().UTC()
	for i := range msgs {
		m := msgs[i]
		if m.Topic == "" {
			return fmt.Errorf("outbox: enqueue: message %d has no topic", i)
		}
		kafka.InjectTraceContext(ctx, &m)
		headers, err := encodeHeaders(m.Headers)
		if err != nil {
			return fmt.Errorf("outbox: enqueue: message %d: %w", i, err)
		}
		if _, err := stmt.ExecContext(ctx, m.Topic, m.Key, headers, m.Value, now); err != nil {
			return fmt.Errorf("outbox: enqueue to %s: %w", m.Topic, err)
		}
	}
	return nil
}

func encodeHeaders(hs []kafka.Header) (string, error) {
	stored := make([]storedHeader, len(hs))
	for i, h := range hs {
		if !utf8.Valid(h.Value) {
			return "", fmt.Errorf("header %q is not valid UTF-8", h.Key)
		}
		stored[i] = storedHeader{Key: h.Key, Value: string(h.Value)}
	}
	b, err := json.Marshal(stored)
	if err != nil {
		return "", fmt.Errorf("headers: %w", err)
	}
	return string(b), nil
}

func decodeHeaders(b []byte) ([]kafka.Header, error) {
	var stored []storedHeader
	if err := json.Unmarshal(b, &stored); err != nil {
		return nil, fmt.Errorf("headers: %w", err)
	}
	if len(stored) == 0 {
		return nil, nil
	}
	hs := make([]kafka.Header, len(stored))
	for i, h := range stored {
		hs[i] = kafka.Header{Key: h.Key, Value: []byte(h.Value)}
	}
	return hs, nil
}
