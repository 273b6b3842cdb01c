package tsstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/comfortech/platform/libs/sqldb"
	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore"
	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore/tsstoretest"
)

// Batches as the device service sends them: 1,000 records of 5 metrics
// from 100 devices, 5,000 points per call.
const (
	benchDevices = 100
	benchRecords = 1000
)

var benchMetrics = []string{"temperature", "humidity", "co2", "pm25", "power"}

func BenchmarkAppendPostgres(b *testing.B) {
	s, _ := tsstoretest.OpenPostgres(b)
	benchAppend(b, s)
}

func BenchmarkAppendSQLite(b *testing.B) {
	s, _ := tsstoretest.OpenSQLite(b)
	benchAppend(b, s)
}

func benchAppend(b *testing.B, s *tsstore.Store) {
	devices := make([]string, benchDevices)
	for i := range devices {
		devices[i] = uuid.NewString()
	}
	var seq atomic.Int64
	batch := func() []tsstore.Point {
		pts := make([]tsstore.Point, 0, benchRecords*len(benchMetrics))
		first := seq.Add(benchRecords/benchDevices) - benchRecords/benchDevices
		now := time.Now().UnixMilli()
		for r := range benchRecords {
			dev, sq := devices[r%benchDevices], first+int64(r/benchDevices)
			for m, name := range benchMetrics {
				pts = append(pts, tsstore.Point{DeviceID: dev, Seq: sq, Metric: name, TS: now + sq, Value: float64(m) + float64(sq%100)/10})
			}
		}
		return pts
	}
	appendBatch := func(pts []tsstore.Point) {
		err := s.InTx(context.Background(), func(tx *tsstore.Tx) error {
			keys, err := tx.AppendPoints(context.Background(), pts)
			if err == nil && len(keys) != benchRecords {
				err = fmt.Errorf("stored %d records, want %d", len(keys), benchRecords)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	points := func(b *testing.B, elapsed time.Duration, n int) {
		b.ReportMetric(float64(n*benchRecords*len(benchMetrics))/elapsed.Seconds(), "points/s")
	}
	b.Run("serial", func(b *testing.B) {
		n := 0
		for b.Loop() {
			b.StopTimer()
			pts := batch()
			b.StartTimer()
			appendBatch(pts)
			n++
		}
		points(b, b.Elapsed(), n)
	})
	// Two writers, as two consumers of device.telemetry would be.
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int64
		start := time.Now()
		b.SetParallelism(1)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				appendBatch(batch())
				n.Add(1)
			}
		})
		points(b, time.Since(start), int(n.Load()))
	})
}

// dayStart is the start of the benchmark day, on a whole minute.
const dayStart = int64(1_767_225_600_000)

// aggregateDay fills one device with 1,000,000 points in one day (250,000
// records of 4 metrics, one every 345.6 ms) directly in SQL, then times a
// 24 h query at 1-minute buckets starting on a minute ("aligned": rollups
// only) and 1 ms after one ("unaligned": rollups plus the partial minutes
// at both ends from the points, as for a range of now-24h..now).
func aggregateDay(b *testing.B, s *tsstore.Store, db *sqldb.DB) {
	ctx := context.Background()
	dev := uuid.NewString()
	start := time.Now()
	series := `SELECT n FROM generate_series(0, 249999) AS g(n)`
	if db.Dialect == sqldb.SQLite {
		series = `WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < 249999) SELECT n FROM g`
	}
	mustExec(b, db.DB, `INSERT INTO telemetry_points (device_id, seq, metric, ts, value)
		SELECT $1, s.n, m.metric, CAST($2 AS BIGINT) + s.n * 3456 / 10, (s.n % 300) / 10.0 + m.k
		FROM (`+series+`) AS s, (SELECT 'temperature' AS metric, 0 AS k UNION ALL SELECT 'humidity', 40 UNION ALL SELECT 'co2', 400 UNION ALL SELECT 'pm25', 5) AS m`,
		dev, dayStart)
	mustExec(b, db.DB, `INSERT INTO telemetry_rollup_1m (device_id, metric, bucket, min, max, sum, count)
		SELECT device_id, metric, ts - ts % 60000, min(value), max(value), sum(value), count(*)
		FROM telemetry_points WHERE device_id = $1 GROUP BY device_id, metric, ts - ts % 60000`, dev)
	if db.Dialect == sqldb.Postgres {
		mustExec(b, db.DB, `VACUUM ANALYZE telemetry_points`)
		mustExec(b, db.DB, `VACUUM ANALYZE telemetry_rollup_1m`)
	} else {
		mustExec(b, db.DB, `ANALYZE`)
	}
	b.Logf("loaded 1,000,000 points in %v", time.Since(start).Round(time.Millisecond))

	run := func(name string, from int64, wantBuckets int) {
		b.Run(name, func(b *testing.B) {
			q := tsstore.AggregateQuery{DeviceID: dev, Start: from, End: from + 86_400_000, Width: 60_000}
			for b.Loop() {
				buckets, err := s.AggregateRange(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				if len(buckets) != wantBuckets {
					b.Fatalf("%d buckets, want %d", len(buckets), wantBuckets)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
		})
	}
	run("aligned", dayStart, 1440)
	run("unaligned", dayStart+1, 1440)
}

func mustExec(b *testing.B, db *sql.DB, q string, args ...any) {
	b.Helper()
	if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkAggregate24hPostgres(b *testing.B) {
	s, db := tsstoretest.OpenPostgres(b)
	aggregateDay(b, s, db)
}

func BenchmarkAggregate24hSQLite(b *testing.B) {
	s, db := tsstoretest.OpenSQLite(b)
	aggregateDay(b, s, db)
}
