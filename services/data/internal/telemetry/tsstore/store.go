// Package tsstore stores the data service's telemetry (points, per-minute
// rollups, latest values), alert rules with their state and the alerts
// they raised, in PostgreSQL or SQLite behind one API.
//
// Most SQL is shared (both drivers bind $n by number); the dialects differ
// in the schema (migrations/<dialect>), in how a batch of points is
// appended (one set-based statement on PostgreSQL, a prepared loop on
// SQLite) and in row locking.
package tsstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/outbox"
	"github.com/comfortech/platform/libs/sqldb"
)

// VersionTable is the goose version table of this package's migrations,
// separate from the core's and the outbox's.
const VersionTable = "telemetry_goose_db_version"

// ErrNotFound is returned when a rule or alert does not exist.
var ErrNotFound = errors.New("tsstore: not found")

//go:embed migrations
var migrations embed.FS

// Store reads and writes telemetry and alert rules.
type Store struct {
	db *sqldb.DB
}

// New returns a store on db. Call Migrate before use.
func New(db *sqldb.DB) *Store { return &Store{db: db} }

// Dialect is the SQL flavour of the underlying database.
func (s *Store) Dialect() sqldb.Dialect { return s.db.Dialect }

// Migrate creates or upgrades the tables, and the outbox table the alert
// events are written to.
func (s *Store) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations/"+string(s.db.Dialect))
	if err != nil {
		return fmt.Errorf("tsstore: %w", err)
	}
	if err := sqldb.Migrate(ctx, s.db.DB, s.db.Dialect, fsys, VersionTable); err != nil {
		return fmt.Errorf("tsstore: %w", err)
	}
	if err := outbox.Migrate(ctx, s.db.DB, s.db.Dialect); err != nil {
		return fmt.Errorf("tsstore: %w", err)
	}
	return nil
}

// Check reports whether the database answers.
func (s *Store) Check(ctx context.Context) error { return s.db.PingContext(ctx) }

// Tx is a store transaction: the writes of one use case, with the events
// they emit, commit together.
type Tx struct {
	tx      *sql.Tx
	dialect sqldb.Dialect
}

// InTx runs fn in a transaction, committed when fn returns nil and rolled
// back otherwise.
func (s *Store) InTx(ctx context.Context, fn func(*Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("tsstore: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(&Tx{tx: tx, dialect: s.db.Dialect}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("tsstore: commit: %w", err)
	}
	return nil
}

// Enqueue writes msgs to the outbox in this transaction, so they are
// relayed to Kafka if and only if it commits.
func (t *Tx) Enqueue(ctx context.Context, msgs ...kafka.Message) error {
	return outbox.Enqueue(ctx, t.tx, msgs...)
}

// forUpdate is the row-locking suffix of a SELECT whose rows the
// transaction will change. SQLite has none: its write transactions start
// IMMEDIATE (see sqldb.Open) and so run one at a time.
func (t *Tx) forUpdate() string {
	if t.dialect == sqldb.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// ms converts a time to the stored form, milliseconds since the epoch.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS converts a stored time back; 0 is the zero time.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// DeleteDevice removes every point, rollup, latest value, rule and alert
// of a device and forgets its owner.
func (t *Tx) DeleteDevice(ctx context.Context, deviceID string) error {
	for _, table := range []string{"telemetry_points", "telemetry_rollup_1m", "telemetry_latest", "alert_rules", "alerts", "telemetry_devices"} {
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE device_id = $1`, deviceID); err != nil {
			return fmt.Errorf("tsstore: delete device from %s: %w", table, err)
		}
	}
	return nil
}

// SetDeviceOwner records the owner of a claimed device.
func (t *Tx) SetDeviceOwner(ctx context.Context, deviceID, ownerAccountID string, claimTime time.Time) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO telemetry_devices (device_id, owner_account_id, claim_time) VALUES ($1, $2, $3)
		ON CONFLICT (device_id) DO UPDATE SET owner_account_id = excluded.owner_account_id, claim_time = excluded.claim_time`,
		deviceID, ownerAccountID, ms(claimTime))
	if err != nil {
		return fmt.Errorf("tsstore: set device owner: %w", err)
	}
	return nil
}

// LearnDeviceOwner records the owner of a device whose claim this package
// was not told about (a device claimed before alert rules existed), so
// its alerts can be notified; a recorded claim wins.
func (t *Tx) LearnDeviceOwner(ctx context.Context, deviceID, ownerAccountID string) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO telemetry_devices (device_id, owner_account_id, claim_time) VALUES ($1, $2, 0)
		ON CONFLICT (device_id) DO NOTHING`, deviceID, ownerAccountID)
	if err != nil {
		return fmt.Errorf("tsstore: learn device owner: %w", err)
	}
	return nil
}

// DeviceOwner returns the owner recorded for a device ("" when none is)
// and whether it came from a claim (SetDeviceOwner) rather than being
// learnt, locking the row until the transaction ends.
func (t *Tx) DeviceOwner(ctx context.Context, deviceID string) (owner string, claimed bool, err error) {
	var claimTime int64
	err = t.tx.QueryRowContext(ctx, `SELECT owner_account_id, claim_time FROM telemetry_devices WHERE device_id = $1`+t.forUpdate(), deviceID).Scan(&owner, &claimTime)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("tsstore: device owner: %w", err)
	}
	return owner, claimTime != 0, nil
}
