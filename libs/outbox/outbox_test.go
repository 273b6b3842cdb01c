package outbox_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap/zaptest"
	_ "modernc.org/sqlite"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	"github.com/comfortech/platform/libs/outbox"
)

const (
	testTimeout = 30 * time.Second
	// defaultPostgresDSN is used unless COMFORT_TEST_POSTGRES_DSN says otherwise.
	defaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

// dialects lists the databases the contract tests run against.
var dialects = []outbox.Dialect{outbox.SQLite, outbox.Postgres}

// openDB returns a migrated, empty database of dialect d private to t:
// a temp-dir SQLite file, or a fresh PostgreSQL schema dropped afterwards.
func openDB(t testing.TB, d outbox.Dialect) *sql.DB {
	t.Helper()
	var db *sql.DB
	switch d {
	case outbox.SQLite:
		dsn := "file:" + filepath.Join(t.TempDir(), "outbox.db") +
			"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
		var err error
		if db, err = sql.Open("sqlite", dsn); err != nil {
			t.Fatal(err)
		}
	case outbox.Postgres:
		db = openPostgresSchema(t)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := outbox.Migrate(context.Background(), db, d); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func openPostgresSchema(t testing.TB) *sql.DB {
	t.Helper()
	dsn := os.Getenv("COMFORT_TEST_POSTGRES_DSN")
	if dsn == "off" {
		t.Skip("COMFORT_TEST_POSTGRES_DSN=off")
	}
	if dsn == "" {
		dsn = defaultPostgresDSN
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		msg := fmt.Sprintf("PostgreSQL at %s unreachable (set COMFORT_TEST_POSTGRES_DSN, or =off to skip): %v", dsn, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "outbox_test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema) // pgx sends unknown parameters as run-time settings
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// enqueue writes msgs in one transaction, committed or rolled back.
func enqueue(t testing.TB, ctx context.Context, db *sql.DB, commit bool, msgs ...kafka.Message) {
	t.Helper()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Enqueue(ctx, tx, msgs...); err != nil {
		_ = tx.Rollback()
		t.Fatalf("Enqueue: %v", err)
	}
	if commit {
		err = tx.Commit()
	} else {
		err = tx.Rollback()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func pending(t testing.TB, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// startRelay runs r until the test ends.
func startRelay(t *testing.T, r *outbox.Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Relay.Run = %v, want nil", err)
			}
		case <-time.After(testTimeout):
			t.Error("Relay.Run did not return after cancel")
		}
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRelaySurvivesBrokerAway enqueues events while Kafka is unreachable,
// checks the relay keeps retrying without losing rows, then starts the
// broker and expects every committed event exactly once, in order.
func TestRelaySurvivesBrokerAway(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			const (
				topic  = "account.events"
				perTx  = 40
				txs    = 5
				expect = perTx * txs
			)
			db := openDB(t, d)
			port := kafkatest.FreePort(t)
			cfg := kafkatest.Config([]string{kafkatest.Addr(port)})
			cfg.MetadataRetries = 1
			producer, err := kafka.NewProducer(cfg, zaptest.NewLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = producer.Close() })
			reg := prometheus.NewRegistry()
			relay, err := outbox.NewRelay(db, producer, outbox.RelayConfig{
				Dialect: d, BatchSize: 64, PollInterval: 50 * time.Millisecond,
				MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			}, zaptest.NewLogger(t), reg)
			if err != nil {
				t.Fatal(err)
			}
			startRelay(t, relay)

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			errorsMetric := metricValue(t, reg, "comfort_outbox_relay_errors_total")
			for tx := range txs {
				msgs := make([]kafka.Message, perTx)
				for i := range msgs {
					n := tx*perTx + i
					msgs[i] = kafka.Message{Topic: topic, Key: []byte("acc-" + strconv.Itoa(n%3)), Value: []byte(strconv.Itoa(n)),
						Headers: []kafka.Header{{Key: "ce_id", Value: []byte("id-" + strconv.Itoa(n))}}}
				}
				enqueue(t, ctx, db, true, msgs...)
				// A rolled-back transaction must leave nothing behind.
				enqueue(t, ctx, db, false, kafka.Message{Topic: topic, Value: []byte("rolled back")})
				relay.Notify()
			}
			eventually(t, "the relay to fail twice while Kafka is down", func() bool {
				return metricValue(t, reg, "comfort_outbox_relay_errors_total") >= errorsMetric+2
			})
			if n := pending(t, db); n != expect {
				t.Fatalf("pending rows while Kafka is down = %d, want %d", n, expect)
			}

			c := kafkatest.NewCluster(t, kfake.Ports(port), kfake.SeedTopics(1, topic))
			got := kafkatest.ReadTopic(t, c.ListenAddrs(), topic, expect, testTimeout)
			for i, m := range got {
				if string(m.Value) != strconv.Itoa(i) || m.Header("ce_id") != "id-"+strconv.Itoa(i) || m.Offset != int64(i) {
					t.Fatalf("message %d: value %q ce_id %q offset %d; want value %d in order", i, m.Value, m.Header("ce_id"), m.Offset, i)
				}
			}
			eventually(t, "the outbox to drain", func() bool { return pending(t, db) == 0 })
			if n := kafkatest.EndOffset(t, c.ListenAddrs(), topic); n != expect {
				t.Errorf("topic holds %d records, want %d", n, expect)
			}
			if n := metricValue(t, reg, "comfort_outbox_relayed_messages_total"); n != expect {
				t.Errorf("relayed metric = %v, want %d (a duplicate or a loss)", n, expect)
			}
		})
	}
}

// TestEnqueueKeepsMessage checks a message survives the table unchanged:
// key, binary value, nil value, headers in order, and the caller's trace.
func TestEnqueueKeepsMessage(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			const topic = "audit"
			db := openDB(t, d)
			c := kafkatest.NewCluster(t, kfake.SeedTopics(1, topic))
			producer, err := kafka.NewProducer(kafkatest.Config(c.ListenAddrs()), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = producer.Close() })
			relay, err := outbox.NewRelay(db, producer, outbox.RelayConfig{Dialect: d, PollInterval: 20 * time.Millisecond}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}

			tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
			sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
			ctx := trace.ContextWithSpanContext(context.Background(),
				trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
			binary := []byte{0, 1, 2, 0xff}
			enqueue(t, ctx, db, true,
				kafka.Message{Topic: topic, Key: []byte("k1"), Value: binary,
					Headers: []kafka.Header{{Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("é")}}},
				kafka.Message{Topic: topic}, // no key, tombstone
			)
			startRelay(t, relay)
			got := kafkatest.ReadTopic(t, c.ListenAddrs(), topic, 2, testTimeout)
			m := got[0]
			if string(m.Key) != "k1" || string(m.Value) != string(binary) {
				t.Errorf("key %q value %v, want k1 %v", m.Key, m.Value, binary)
			}
			if len(m.Headers) < 3 || m.Headers[0].Key != "b" || m.Headers[1].Key != "a" || m.Header("a") != "é" {
				t.Errorf("headers %v, want b, a (in order), traceparent", m.Headers)
			}
			if tp := m.Header("traceparent"); tp != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
				t.Errorf("traceparent = %q", tp)
			}
			if got[1].Key != nil || got[1].Value != nil {
				t.Errorf("tombstone came back as key %q value %q", got[1].Key, got[1].Value)
			}
		})
	}
}

func TestEnqueueRejectsInvalid(t *testing.T) {
	t.Parallel()
	db := openDB(t, outbox.SQLite)
	tests := []struct {
		name string
		msg  kafka.Message
	}{
		{name: "no topic", msg: kafka.Message{Value: []byte("x")}},
		{name: "binary header", msg: kafka.Message{Topic: "t", Headers: []kafka.Header{{Key: "h", Value: []byte{0xff}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback() }()
			if err := outbox.Enqueue(context.Background(), tx, tt.msg); err == nil {
				t.Error("Enqueue accepted an invalid message")
			}
		})
	}
}

// flakyPublisher fails the first failures calls after delivering a prefix
// of the batch, the way a broker failing mid-batch does.
type flakyPublisher struct {
	mu        sync.Mutex
	failures  int
	prefix    int
	delivered []string
}

func (p *flakyPublisher) PublishBatch(_ context.Context, msgs []kafka.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failures > 0 {
		p.failures--
		errs := make([]error, len(msgs))
		for i, m := range msgs {
			if i < p.prefix {
				p.delivered = append(p.delivered, string(m.Value))
			} else {
				errs[i] = errors.New("broker gone")
			}
		}
		return &kafka.BatchError{Errs: errs}
	}
	for _, m := range msgs {
		p.delivered = append(p.delivered, string(m.Value))
	}
	return nil
}

// TestRelayPartialFailureKeepsOrder: when a batch is delivered only in
// part, the delivered prefix is deleted and the rest is retried, so the
// stream has neither gaps nor duplicates nor reordering.
func TestRelayPartialFailureKeepsOrder(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			db := openDB(t, d)
			pub := &flakyPublisher{failures: 3, prefix: 2}
			relay, err := outbox.NewRelay(db, pub, outbox.RelayConfig{
				Dialect: d, BatchSize: 5, PollInterval: 10 * time.Millisecond, MinBackoff: 5 * time.Millisecond,
			}, zaptest.NewLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			var msgs []kafka.Message
			for i := range 20 {
				msgs = append(msgs, kafka.Message{Topic: "alerts", Value: []byte(strconv.Itoa(i))})
			}
			enqueue(t, context.Background(), db, true, msgs...)
			startRelay(t, relay)
			eventually(t, "the outbox to drain", func() bool { return pending(t, db) == 0 })
			pub.mu.Lock()
			defer pub.mu.Unlock()
			for i, v := range pub.delivered {
				if v != strconv.Itoa(i) {
					t.Fatalf("delivered %v, want 0..19 in order, each once", pub.delivered)
				}
			}
			if len(pub.delivered) != 20 {
				t.Fatalf("delivered %d messages, want 20", len(pub.delivered))
			}
		})
	}
}

// TestTwoRelaysPostgres runs two relays on one PostgreSQL outbox while
// rows keep arriving: FOR UPDATE must keep them from duplicating or
// reordering messages.
func TestTwoRelaysPostgres(t *testing.T) {
	t.Parallel()
	const (
		topic = "notifications.outbox"
		total = 300
	)
	db := openDB(t, outbox.Postgres)
	c := kafkatest.NewCluster(t, kfake.SeedTopics(1, topic))
	for range 2 {
		producer, err := kafka.NewProducer(kafkatest.Config(c.ListenAddrs()), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = producer.Close() })
		relay, err := outbox.NewRelay(db, producer, outbox.RelayConfig{
			Dialect: outbox.Postgres, BatchSize: 7, PollInterval: 5 * time.Millisecond,
		}, zaptest.NewLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		startRelay(t, relay)
	}
	for i := range total {
		enqueue(t, context.Background(), db, true, kafka.Message{Topic: topic, Value: []byte(strconv.Itoa(i))})
	}
	got := kafkatest.ReadTopic(t, c.ListenAddrs(), topic, total, testTimeout)
	for i, m := range got {
		if string(m.Value) != strconv.Itoa(i) {
			t.Fatalf("message at offset %d is %q, want %d", m.Offset, m.Value, i)
		}
	}
	eventually(t, "the outbox to drain", func() bool { return pending(t, db) == 0 })
	if n := kafkatest.EndOffset(t, c.ListenAddrs(), topic); n != total {
		t.Errorf("topic holds %d records, want %d (duplicates)", n, total)
	}
}

func TestMigrationsPerDialect(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		fsys, err := outbox.Migrations(d)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if _, err := fsys.Open("00001_create_outbox.sql"); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
	if _, err := outbox.Migrations("oracle"); err == nil {
		t.Error("unknown dialect accepted")
	}
}

// metricValue returns the value of an unlabelled counter or gauge, 0 if
// it has no sample yet.
func metricValue(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			m := mf.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}
