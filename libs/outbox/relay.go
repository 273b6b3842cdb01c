package outbox

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/kafka"
)

// Publisher delivers a batch of messages, keeping the order of messages
// with the same key; *kafka.Producer implements it. When only some
// messages fail it should return a *kafka.BatchError so the relay can
// drop the delivered prefix of the batch.
type Publisher interface {
	PublishBatch(ctx context.Context, msgs []kafka.Message) error
}

var _ Publisher = (*kafka.Producer)(nil)

// RelayConfig tunes a Relay. Zero values select the documented defaults.
type RelayConfig struct {
	// Dialect of the database. Required.
	Dialect Dialect
	// BatchSize is the most rows read and published at once; default 500.
	// Each batch costs about one producer linger, so larger batches drain
	// a backlog faster (see BenchmarkRelay).
	BatchSize int
	// PollInterval is the pause after the outbox was found drained;
	// default 250ms. Notify cuts it short.
	PollInterval time.Duration
	// MinBackoff is the first pause after a failure; it doubles (with
	// jitter) up to MaxBackoff. Defaults 100ms and 10s.
	MinBackoff time.Duration
	// MaxBackoff caps the pause between failed attempts; default 10s.
	MaxBackoff time.Duration
}

// Relay moves outbox rows to Kafka. Run one per process; on PostgreSQL
// several replicas may run at once (the batch is locked with FOR UPDATE,
// so a second relay waits instead of sending rows twice or out of order).
// On SQLite, which has a single writer process, run one relay per database.
type Relay struct {
	db      *sql.DB
	pub     Publisher
	cfg     RelayConfig
	log     *zap.Logger
	metrics relayMetrics
	wake    chan struct{}
	query   string
}

// NewRelay returns a relay reading db and publishing through pub. log may
// be nil; the metrics are registered on reg unless it is nil.
func NewRelay(db *sql.DB, pub Publisher, cfg RelayConfig, log *zap.Logger, reg prometheus.Registerer) (*Relay, error) {
	if db == nil || pub == nil {
		return nil, errors.New("outbox: relay needs a database and a publisher")
	}
	if _, err := Migrations(cfg.Dialect); err != nil {
		return nil, err
	}
	if cfg.BatchSize < 0 || cfg.PollInterval < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 {
		return nil, errors.New("outbox: negative batch size or interval")
	}
	cfg.BatchSize = cmp.Or(cfg.BatchSize, 500)
	cfg.PollInterval = cmp.Or(cfg.PollInterval, 250*time.Millisecond)
	cfg.MinBackoff = cmp.Or(cfg.MinBackoff, 100*time.Millisecond)
	cfg.MaxBackoff = max(cmp.Or(cfg.MaxBackoff, 10*time.Second), cfg.MinBackoff)
	metrics, err := newRelayMetrics(reg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	query := `SELECT id, topic, key, headers, value, created_at FROM outbox ORDER BY id LIMIT $1`
	if cfg.Dialect == Postgres {
		query += ` FOR UPDATE`
	}
	return &Relay{
		db:      db,
		pub:     pub,
		cfg:     cfg,
		log:     log.Named("outbox.relay"),
		metrics: metrics,
		wake:    make(chan struct{}, 1),
		query:   query,
	}, nil
}

// Notify wakes the relay at once instead of at its next poll; call it
// after committing a transaction that enqueued messages. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays batches until ctx ends, then returns nil. Failures (database
// or Kafka) are logged and retried with exponential backoff; rows stay in
// the table until Kafka acknowledged them.
func (r *Relay) Run(ctx context.Context) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = r.cfg.MinBackoff
	bo.MaxInterval = r.cfg.MaxBackoff
	for {
		n, err := r.relayBatch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.metrics.errors.Inc()
			wait := bo.NextBackOff()
			r.log.Warn("relaying outbox failed, retrying", zap.Int("delivered", n), zap.Error(err), zap.Duration("in", wait))
			if !sleep(ctx, wait) {
				return nil
			}
			continue
		}
		bo.Reset()
		if n == r.cfg.BatchSize {
			continue // probably more waiting
		}
		t := time.NewTimer(r.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// querier is the part of *sql.DB and *sql.Tx the relay uses.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// relayBatch publishes the oldest rows and deletes those delivered. It
// returns how many were delivered and deleted.
func (r *Relay) relayBatch(ctx context.Context) (int, error) {
	var q querier = r.db
	if r.cfg.Dialect == Postgres {
		// The lock on the batch is held until the rows are deleted.
		tx, err := r.db.BeginTx(ctx, nil)
		if err != nil {
			return 0, fmt.Errorf("outbox: begin: %w", err)
		}
		defer func() { _ = tx.Rollback() }()
		q = tx
		n, err := r.publish(ctx, q)
		if n > 0 {
			if cerr := tx.Commit(); cerr != nil {
				return 0, fmt.Errorf("outbox: commit delete: %w", cerr)
			}
		}
		r.metrics.relayed.Add(float64(n))
		return n, err
	}
	// SQLite: no transaction. Only this relay deletes rows, and holding a
	// read transaction across the Kafka call would make the later delete
	// fail with SQLITE_BUSY whenever a service transaction committed.
	n, err := r.publish(ctx, q)
	r.metrics.relayed.Add(float64(n))
	return n, err
}

func (r *Relay) publish(ctx context.Context, q querier) (int, error) {
	ids, msgs, oldest, err := r.read(ctx, q)
	if err != nil {
		return 0, err
	}
	if len(msgs) == 0 {
		r.metrics.oldestAge.Set(0)
		return 0, nil
	}
	r.metrics.oldestAge.Set(time.Since(oldest).Seconds())

	perr := r.pub.PublishBatch(ctx, msgs)
	delivered := len(msgs)
	if perr != nil {
		// Only the delivered prefix may go: deleting a delivered row after
		// an undelivered one would let it overtake on the next attempt.
		delivered = 0
		if be, ok := errors.AsType[*kafka.BatchError](perr); ok {
			for delivered < len(be.Errs) && be.Errs[delivered] == nil {
				delivered++
			}
		}
	}
	if delivered > 0 {
		if err := r.delete(ctx, q, ids[:delivered]); err != nil {
			return 0, errors.Join(err, perr)
		}
	}
	if perr != nil {
		return delivered, fmt.Errorf("outbox: publish %d messages: %w", len(msgs), perr)
	}
	return delivered, nil
}

func (r *Relay) read(ctx context.Context, q querier) (ids []int64, msgs []kafka.Message, oldest time.Time, err error) {
	rows, err := q.QueryContext(ctx, r.query, r.cfg.BatchSize)
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("outbox: read: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			id        int64
			m         kafka.Message
			headers   []byte
			createdAt time.Time
		)
		if err := rows.Scan(&id, &m.Topic, &m.Key, &headers, &m.Value, &createdAt); err != nil {
			return nil, nil, time.Time{}, fmt.Errorf("outbox: scan: %w", err)
		}
		if m.Headers, err = decodeHeaders(headers); err != nil {
			return nil, nil, time.Time{}, fmt.Errorf("outbox: row %d: %w", id, err)
		}
		if len(ids) == 0 {
			oldest = createdAt
		}
		ids = append(ids, id)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("outbox: read: %w", err)
	}
	return ids, msgs, oldest, nil
}

// delete removes rows by id. Not by id range: a transaction that started
// earlier may still commit a row with a smaller id inside that range.
func (r *Relay) delete(ctx context.Context, q querier, ids []int64) error {
	var sb strings.Builder
	sb.WriteString(`DELETE FROM outbox WHERE id IN (`)
	args := make([]any, len(ids))
	for i, id := range ids {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("$" + strconv.Itoa(i+1))
		args[i] = id
	}
	sb.WriteString(")")
	if _, err := q.ExecContext(ctx, sb.String(), args...); err != nil {
		return fmt.Errorf("outbox: delete %d relayed rows: %w", len(ids), err)
	}
	return nil
}

// relayMetrics are the relay's Prometheus collectors.
type relayMetrics struct {
	relayed   prometheus.Counter
	errors    prometheus.Counter
	oldestAge prometheus.Gauge
}

func newRelayMetrics(reg prometheus.Registerer) (relayMetrics, error) {
	m := relayMetrics{
		relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "comfort_outbox_relayed_messages_total",
			Help: "Outbox messages delivered to Kafka and deleted.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "comfort_outbox_relay_errors_total",
			Help: "Failed relay attempts (database or Kafka); each is retried.",
		}),
		oldestAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "comfort_outbox_oldest_message_age_seconds",
			Help: "Age of the oldest pending outbox message at the last poll; 0 when drained.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.relayed, err = register(reg, m.relayed)
	if err == nil {
		m.errors, err = register(reg, m.errors)
	}
	if err == nil {
		m.oldestAge, err = register(reg, m.oldestAge)
	}
	return m, err
}

// register registers c on reg, or returns the identical collector already
// registered there (a second relay in the same process).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		if already, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("outbox: register metrics: %w", err)
	}
	return c, nil
}

// sleep waits for d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
