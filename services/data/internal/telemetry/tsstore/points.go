package tsstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/comfortech/platform/libs/sqldb"
)

// RollupWidth is the width of the stored rollup buckets. Aggregations
// whose buckets are whole multiples of it and whose range starts on one
// of its boundaries read the rollup instead of the points.
const RollupWidth = time.Minute

const rollupMS = int64(RollupWidth / time.Millisecond)

// Point is one value of one metric of one device.
type Point struct {
	DeviceID string
	Seq      int64
	Metric   string
	TS       int64 // ms since the Unix epoch, >= 0
	Value    float64
}

// RecordKey names one measurement message of a device.
type RecordKey struct {
	DeviceID string
	Seq      int64
}

// Record is one measurement message: the points of one device and seq.
type Record struct {
	DeviceID string
	Seq      int64
	TS       int64
	Metrics  map[string]float64
}

// Aggregate summarises the values of one metric in one bucket.
type Aggregate struct {
	Min, Max, Sum float64
	Count         int64
}

// merge adds b's values to a.
func (a Aggregate) merge(b Aggregate) Aggregate {
	if a.Count == 0 {
		return b
	}
	return Aggregate{Min: min(a.Min, b.Min), Max: max(a.Max, b.Max), Sum: a.Sum + b.Sum, Count: a.Count + b.Count}
}

// Bucket is one non-empty time bucket [Start, Start+width).
type Bucket struct {
	Start   int64
	Metrics map[string]Aggregate
}

// Latest is the latest value of one metric.
type Latest struct {
	Value float64
	TS    int64
}

// AppendPoints stores points, skipping those whose (device, seq, metric)
// is already stored, updates the rollups and latest values with the new
// ones, and returns the records of which at least one point was new.
func (t *Tx) AppendPoints(ctx context.Context, pts []Point) ([]RecordKey, error) {
	if len(pts) == 0 {
		return nil, nil
	}
	// A fixed order makes concurrent batches touching the same keys wait
	// for each other instead of deadlocking.
	slices.SortFunc(pts, func(a, b Point) int {
		return cmp.Or(strings.Compare(a.DeviceID, b.DeviceID), cmp.Compare(a.Seq, b.Seq), strings.Compare(a.Metric, b.Metric))
	})
	if t.dialect == sqldb.Postgres {
		return t.appendPostgres(ctx, pts)
	}
	return t.appendSQLite(ctx, pts)
}

// appendPG does the whole append in one statement: the batch travels as
// five arrays, and data-modifying CTEs insert the points and feed exactly
// the inserted ones to the rollup and latest upserts: one round trip, no
// per-batch temporary table (CopyFrom would need one for ON CONFLICT), and
// it runs inside the caller's database/sql transaction. It measured
// ~90,000 points/s from one writer, ~150,000 from two (BenchmarkAppendPostgres).
const appendPG = `
WITH input AS (
	SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bigint[], $5::float8[]) AS t(device_id, seq, metric, ts, value)
), ins AS (
	INSERT INTO telemetry_points (device_id, seq, metric, ts, value)
	SELECT device_id, seq, metric, ts, value FROM input
	ON CONFLICT DO NOTHING
	RETURNING device_id, seq, metric, ts, value
), roll AS (
	INSERT INTO telemetry_rollup_1m AS r (device_id, metric, bucket, min, max, sum, count)
	SELECT device_id, metric, ts - ts % 60000, min(value), max(value), sum(value), count(*)
	FROM ins GROUP BY 1, 2, 3 ORDER BY 1, 3, 2
	ON CONFLICT (device_id, bucket, metric) DO UPDATE SET
		min = LEAST(r.min, excluded.min), max = GREATEST(r.max, excluded.max),
		sum = r.sum + excluded.sum, count = r.count + excluded.count
), latest AS (
	INSERT INTO telemetry_latest AS l (device_id, metric, ts, value)
	SELECT DISTINCT ON (device_id, metric) device_id, metric, ts, value
	FROM ins ORDER BY device_id, metric, ts DESC, seq DESC
	ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value
	WHERE excluded.ts >= l.ts
)
SELECT DISTINCT device_id::text, seq FROM ins`

func (t *Tx) appendPostgres(ctx context.Context, pts []Point) ([]RecordKey, error) {
	devices := make([]string, len(pts))
	seqs := make([]int64, len(pts))
	metrics := make([]string, len(pts))
	tss := make([]int64, len(pts))
	values := make([]float64, len(pts))
	for i, p := range pts {
		devices[i], seqs[i], metrics[i], tss[i], values[i] = p.DeviceID, p.Seq, p.Metric, p.TS, p.Value
	}
	rows, err := t.tx.QueryContext(ctx, appendPG, devices, seqs, metrics, tss, values)
	if err != nil {
		return nil, fmt.Errorf("tsstore: append: %w", err)
	}
	return scanKeys(rows)
}

func scanKeys(rows *sql.Rows) ([]RecordKey, error) {
	defer func() { _ = rows.Close() }()
	var keys []RecordKey
	for rows.Next() {
		var k RecordKey
		if err := rows.Scan(&k.DeviceID, &k.Seq); err != nil {
			return nil, fmt.Errorf("tsstore: append: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tsstore: append: %w", err)
	}
	return keys, nil
}

type metricKey struct{ device, metric string }

type rollupKey struct {
	device, metric string
	bucket         int64
}

// appendSQLite inserts point by point through prepared statements (cheap
// in-process) and folds the inserted points into rollups and latest
// values in Go, then upserts those.
func (t *Tx) appendSQLite(ctx context.Context, pts []Point) ([]RecordKey, error) {
	ins, err := t.tx.PrepareContext(ctx, `INSERT INTO telemetry_points (device_id, seq, metric, ts, value) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`)
	if err != nil {
		return nil, fmt.Errorf("tsstore: append: %w", err)
	}
	defer func() { _ = ins.Close() }()
	var keys []RecordKey
	rollups := map[rollupKey]Aggregate{}
	latest := map[metricKey]Latest{}
	for _, p := range pts {
		res, err := ins.ExecContext(ctx, p.DeviceID, p.Seq, p.Metric, p.TS, p.Value)
		if err != nil {
			return nil, fmt.Errorf("tsstore: append: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			continue
		}
		if k := (RecordKey{p.DeviceID, p.Seq}); len(keys) == 0 || keys[len(keys)-1] != k {
			keys = append(keys, k) // pts are sorted by device and seq
		}
		rk := rollupKey{p.DeviceID, p.Metric, p.TS - p.TS%rollupMS}
		rollups[rk] = rollups[rk].merge(Aggregate{Min: p.Value, Max: p.Value, Sum: p.Value, Count: 1})
		mk := metricKey{p.DeviceID, p.Metric}
		if l, ok := latest[mk]; !ok || p.TS >= l.TS {
			latest[mk] = Latest{Value: p.Value, TS: p.TS}
		}
	}
	if err := t.upsertRollups(ctx, rollups); err != nil {
		return nil, err
	}
	for k, l := range latest {
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO telemetry_latest (device_id, metric, ts, value) VALUES ($1, $2, $3, $4)
			ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value WHERE excluded.ts >= telemetry_latest.ts`,
			k.device, k.metric, l.TS, l.Value); err != nil {
			return nil, fmt.Errorf("tsstore: append latest: %w", err)
		}
	}
	return keys, nil
}

func (t *Tx) upsertRollups(ctx context.Context, rollups map[rollupKey]Aggregate) error {
	if len(rollups) == 0 {
		return nil
	}
	up, err := t.tx.PrepareContext(ctx, `INSERT INTO telemetry_rollup_1m (device_id, metric, bucket, min, max, sum, count) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (device_id, bucket, metric) DO UPDATE SET
			min = min(telemetry_rollup_1m.min, excluded.min), max = max(telemetry_rollup_1m.max, excluded.max),
			sum = telemetry_rollup_1m.sum + excluded.sum, count = telemetry_rollup_1m.count + excluded.count`)
	if err != nil {
		return fmt.Errorf("tsstore: append rollup: %w", err)
	}
	defer func() { _ = up.Close() }()
	for k, a := range rollups {
		if _, err := up.ExecContext(ctx, k.device, k.metric, k.bucket, a.Min, a.Max, a.Sum, a.Count); err != nil {
			return fmt.Errorf("tsstore: append rollup: %w", err)
		}
	}
	return nil
}

// RecordQuery selects raw records of one device.
type RecordQuery struct {
	DeviceID string
	// Start and End bound the range [Start, End) in ms.
	Start, End int64
	// Metrics restricts the metrics; empty means all.
	Metrics []string
	// AfterTS and AfterSeq continue after the record (AfterTS, AfterSeq)
	// when AfterTS >= 0 (the position of the previous page's last record).
	AfterTS, AfterSeq int64
	// Limit is the most records returned.
	Limit int
}

// QueryRecords returns the records of a device in a range, oldest first
// (by time, then seq), with only the selected metrics; records with none
// of them are left out.
func (s *Store) QueryRecords(ctx context.Context, q RecordQuery) ([]Record, error) {
	args := []any{q.DeviceID, q.Start, q.End, q.AfterTS, q.AfterSeq, q.Limit}
	filter := metricFilter(q.Metrics, &args)
	// The inner query picks the page's records through the range index;
	// the outer one fetches their points.
	query := `WITH page AS (
		SELECT DISTINCT ts, seq FROM telemetry_points
		WHERE device_id = $1 AND ts >= $2 AND ts < $3 AND (ts > $4 OR (ts = $4 AND seq > $5))` + filter + `
		ORDER BY ts, seq LIMIT $6
	)
	SELECT p.ts, p.seq, p.metric, p.value FROM telemetry_points p JOIN page ON p.ts = page.ts AND p.seq = page.seq
	WHERE p.device_id = $1` + strings.ReplaceAll(filter, "metric", "p.metric") + `
	ORDER BY p.ts, p.seq, p.metric`
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("tsstore: query records: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var recs []Record
	for rows.Next() {
		var (
			p      Point
			metric string
		)
		if err := rows.Scan(&p.TS, &p.Seq, &metric, &p.Value); err != nil {
			return nil, fmt.Errorf("tsstore: query records: %w", err)
		}
		if n := len(recs); n == 0 || recs[n-1].TS != p.TS || recs[n-1].Seq != p.Seq {
			recs = append(recs, Record{DeviceID: q.DeviceID, Seq: p.Seq, TS: p.TS, Metrics: map[string]float64{}})
		}
		recs[len(recs)-1].Metrics[metric] = p.Value
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tsstore: query records: %w", err)
	}
	return recs, nil
}

// metricFilter returns " AND metric IN ($n, ...)" for a non-empty list,
// appending the names to args.
func metricFilter(metrics []string, args *[]any) string {
	if len(metrics) == 0 {
		return ""
	}
	ph := make([]string, len(metrics))
	for i, m := range metrics {
		*args = append(*args, m)
		ph[i] = fmt.Sprintf("$%d", len(*args))
	}
	return " AND metric IN (" + strings.Join(ph, ", ") + ")"
}

// AggregateQuery selects buckets of one device.
type AggregateQuery struct {
	DeviceID string
	// Start and End bound the range [Start, End) in ms. Buckets are
	// aligned to multiples of Width since the Unix epoch, so the first and
	// the last may hold only part of their width.
	Start, End int64
	// Width is the bucket width in ms, > 0.
	Width int64
	// Metrics restricts the metrics; empty means all.
	Metrics []string
}

// AggregateRange returns the non-empty buckets of a range, oldest first.
// When Width is a whole number of minutes, every whole minute of the
// range lies inside one bucket (buckets are epoch-aligned), so those
// minutes are read from the stored minute rollups and only the partial
// minutes at the two ends of the range from the points: a day at
// one-minute buckets reads 1,440 rollup rows and at most two minutes of
// points, wherever the range starts.
func (s *Store) AggregateRange(ctx context.Context, q AggregateQuery) ([]Bucket, error) {
	byStart := map[int64]map[string]Aggregate{}
	add := func(start int64, metric string, a Aggregate) {
		m := byStart[start]
		if m == nil {
			m = map[string]Aggregate{}
			byStart[start] = m
		}
		m[metric] = m[metric].merge(a)
	}
	const points, rollups = "telemetry_points", "telemetry_rollup_1m"
	const pointAggs, rollupAggs = "min(value), max(value), sum(value), count(*)", "min(min), max(max), sum(sum), sum(count)"
	// Whole minutes: [firstMinute, lastMinute).
	firstMinute := q.Start + (rollupMS-q.Start%rollupMS)%rollupMS
	lastMinute := q.End - q.End%rollupMS
	if q.Width%rollupMS == 0 && firstMinute < lastMinute {
		parts := []struct {
			table, tsCol, aggs string
			from, to           int64
		}{
			{points, "ts", pointAggs, q.Start, firstMinute},
			{rollups, "bucket", rollupAggs, firstMinute, lastMinute},
			{points, "ts", pointAggs, lastMinute, q.End},
		}
		for _, p := range parts {
			if p.from >= p.to {
				continue
			}
			if err := s.aggregate(ctx, p.table, p.tsCol, p.aggs, q, p.from, p.to, add); err != nil {
				return nil, err
			}
		}
	} else if err := s.aggregate(ctx, points, "ts", pointAggs, q, q.Start, q.End, add); err != nil {
		return nil, err
	}
	out := make([]Bucket, 0, len(byStart))
	for start, m := range byStart {
		out = append(out, Bucket{Start: start, Metrics: m})
	}
	slices.SortFunc(out, func(a, b Bucket) int { return cmp.Compare(a.Start, b.Start) })
	return out, nil
}

func (s *Store) aggregate(ctx context.Context, table, tsCol, aggs string, q AggregateQuery, from, to int64, add func(int64, string, Aggregate)) error {
	args := []any{q.DeviceID, from, to, q.Width}
	filter := metricFilter(q.Metrics, &args)
	// Integer division of non-negative times is floor on both dialects.
	query := `SELECT ` + tsCol + ` / $4 * $4 AS b, metric, ` + aggs + `
		FROM ` + table + ` WHERE device_id = $1 AND ` + tsCol + ` >= $2 AND ` + tsCol + ` < $3` + filter + `
		GROUP BY b, metric`
	if s.db.Dialect == sqldb.Postgres {
		// Let pgx know the parameter type of the arithmetic.
		query = strings.ReplaceAll(query, "$4", "$4::bigint")
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("tsstore: aggregate: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			start  int64
			metric string
			a      Aggregate
		)
		if err := rows.Scan(&start, &metric, &a.Min, &a.Max, &a.Sum, &a.Count); err != nil {
			return fmt.Errorf("tsstore: aggregate: %w", err)
		}
		add(start, metric, a)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("tsstore: aggregate: %w", err)
	}
	return nil
}

// LatestValues returns the latest value of every metric of a device.
func (s *Store) LatestValues(ctx context.Context, deviceID string) (map[string]Latest, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT metric, ts, value FROM telemetry_latest WHERE device_id = $1`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("tsstore: latest: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]Latest{}
	for rows.Next() {
		var (
			metric string
			l      Latest
		)
		if err := rows.Scan(&metric, &l.TS, &l.Value); err != nil {
			return nil, fmt.Errorf("tsstore: latest: %w", err)
		}
		out[metric] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tsstore: latest: %w", err)
	}
	return out, nil
}

// DeleteBefore deletes up to limit points older than cutoff (ms) and the
// rollups entirely before it, and returns how many points it deleted.
// (The minute holding cutoff keeps its rollup until the next pass.)
// Latest values stay: a device's last known reading is still its latest.
// Call it repeatedly until it returns less than limit, so that no single
// transaction holds many row locks.
func (s *Store) DeleteBefore(ctx context.Context, cutoff int64, limit int) (int64, error) {
	sel := `SELECT rowid FROM telemetry_points WHERE ts < $1 LIMIT $2`
	del := `DELETE FROM telemetry_points WHERE rowid IN (` + sel + `)`
	if s.db.Dialect == sqldb.Postgres {
		del = `DELETE FROM telemetry_points WHERE ctid = ANY(ARRAY(SELECT ctid FROM telemetry_points WHERE ts < $1 LIMIT $2))`
	}
	res, err := s.db.ExecContext(ctx, del, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("tsstore: retention: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("tsstore: retention: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM telemetry_rollup_1m WHERE bucket <= $1`, cutoff-rollupMS); err != nil {
		return 0, fmt.Errorf("tsstore: retention: %w", err)
	}
	return n, nil
}
