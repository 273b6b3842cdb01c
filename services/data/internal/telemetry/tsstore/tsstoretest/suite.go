package tsstoretest

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore"
)

// Run runs the contract suite against stores returned by open, a fresh
// database each call.
func Run(t *testing.T, open func(testing.TB) *tsstore.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, *tsstore.Store)
	}{
		{"AppendIsIdempotent", testAppendIdempotent},
		{"QueryRecordsPagesInRange", testQueryRecords},
		{"AggregateMatchesRawPoints", testAggregate},
		{"LatestKeepsNewestValue", testLatest},
		{"RetentionDeletesOldPoints", testRetention},
		{"DevicesAreIsolated", testIsolation},
		{"RulesAndAlerts", testRulesAndAlerts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

const base = int64(1_767_225_600_000) // 2026-01-01T00:00:00Z, a whole minute

func newID() string { return uuid.NewString() }

// record returns the points of one record.
func record(device string, seq, ts int64, metrics map[string]float64) []tsstore.Point {
	var pts []tsstore.Point
	for m, v := range metrics {
		pts = append(pts, tsstore.Point{DeviceID: device, Seq: seq, Metric: m, TS: ts, Value: v})
	}
	return pts
}

func appendPoints(t *testing.T, s *tsstore.Store, pts []tsstore.Point) []tsstore.RecordKey {
	t.Helper()
	var keys []tsstore.RecordKey
	err := s.InTx(context.Background(), func(tx *tsstore.Tx) error {
		var err error
		keys, err = tx.AppendPoints(context.Background(), pts)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func testAppendIdempotent(t *testing.T, s *tsstore.Store) {
	dev := newID()
	var pts []tsstore.Point
	for seq := range int64(10) {
		pts = append(pts, record(dev, seq, base+seq*1000, map[string]float64{"temperature": float64(seq), "humidity": 40})...)
	}
	if keys := appendPoints(t, s, pts); len(keys) != 10 {
		t.Fatalf("first append stored %d records, want 10", len(keys))
	}
	// Replaying the batch stores nothing; a batch overlapping it stores
	// only the new records, even with a duplicate inside the batch itself.
	if keys := appendPoints(t, s, append([]tsstore.Point(nil), pts...)); len(keys) != 0 {
		t.Fatalf("replay stored %v, want nothing", keys)
	}
	more := append(record(dev, 9, base+9000, map[string]float64{"temperature": 99}), record(dev, 10, base+10000, map[string]float64{"temperature": 10})...)
	more = append(more, record(dev, 10, base+10000, map[string]float64{"temperature": 10})...)
	keys := appendPoints(t, s, more)
	if len(keys) != 1 || keys[0] != (tsstore.RecordKey{DeviceID: dev, Seq: 10}) {
		t.Fatalf("overlapping append stored %v, want only seq 10", keys)
	}
	recs, err := s.QueryRecords(context.Background(), tsstore.RecordQuery{DeviceID: dev, Start: base, End: base + 60000, AfterTS: -1, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 11 || recs[9].Metrics["temperature"] != 9 {
		t.Fatalf("stored %d records (seq 9 temperature %v), want 11 with the first value kept", len(recs), recs[9].Metrics["temperature"])
	}
	aggs, err := s.AggregateRange(context.Background(), tsstore.AggregateQuery{DeviceID: dev, Start: base, End: base + 60000, Width: 60000})
	if err != nil {
		t.Fatal(err)
	}
	if got := aggs[0].Metrics["temperature"].Count; got != 11 {
		t.Fatalf("rollup counts %d temperature values, want 11 (duplicates must not count)", got)
	}
}

func testQueryRecords(t *testing.T, s *tsstore.Store) {
	ctx := context.Background()
	dev := newID()
	var pts []tsstore.Point
	for seq := range int64(25) {
		pts = append(pts, record(dev, seq, base+seq*1000, map[string]float64{"temperature": float64(seq), "humidity": float64(100 - seq)})...)
	}
	appendPoints(t, s, pts)

	// Pages of 10 over [base+2s, base+22s) hold seq 2..21.
	var got []int64
	q := tsstore.RecordQuery{DeviceID: dev, Start: base + 2000, End: base + 22000, AfterTS: -1, Limit: 10}
	for page := 0; ; page++ {
		recs, err := s.QueryRecords(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if len(r.Metrics) != 2 || r.Metrics["temperature"] != float64(r.Seq) || r.TS != base+r.Seq*1000 {
				t.Fatalf("record %+v is not what was stored", r)
			}
			got = append(got, r.Seq)
		}
		if len(recs) < q.Limit || page > 5 {
			break
		}
		last := recs[len(recs)-1]
		q.AfterTS, q.AfterSeq = last.TS, last.Seq
	}
	if len(got) != 20 || got[0] != 2 || got[19] != 21 {
		t.Fatalf("pages returned seqs %v, want 2..21", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("seqs %v not in order", got)
		}
	}

	recs, err := s.QueryRecords(ctx, tsstore.RecordQuery{DeviceID: dev, Start: base, End: base + 5000, Metrics: []string{"humidity"}, AfterTS: -1, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || len(recs[0].Metrics) != 1 || recs[0].Metrics["humidity"] != 100 {
		t.Fatalf("metric filter returned %v", recs)
	}
	recs, err = s.QueryRecords(ctx, tsstore.RecordQuery{DeviceID: dev, Start: base, End: base + 5000, Metrics: []string{"co2"}, AfterTS: -1, Limit: 100})
	if err != nil || len(recs) != 0 {
		t.Fatalf("unknown metric returned %v, %v", recs, err)
	}
}

func testAggregate(t *testing.T, s *tsstore.Store) {
	ctx := context.Background()
	dev := newID()
	// One point every 7 s for 2 h, values cycling so min/max differ per bucket.
	var pts []tsstore.Point
	type raw struct {
		ts int64
		v  float64
	}
	var all []raw
	for seq := range int64(2 * 3600 / 7) {
		ts := base + seq*7000
		v := float64(seq%13) - 3.5
		all = append(all, raw{ts, v})
		pts = append(pts, record(dev, seq, ts, map[string]float64{"temperature": v, "humidity": 50})...)
	}
	appendPoints(t, s, pts)

	expect := func(start, end, width int64) map[int64]tsstore.Aggregate {
		out := map[int64]tsstore.Aggregate{}
		for _, p := range all {
			if p.ts < start || p.ts >= end {
				continue
			}
			b := p.ts - p.ts%width // epoch-aligned
			a, ok := out[b]
			if !ok {
				a = tsstore.Aggregate{Min: p.v, Max: p.v}
			}
			a.Min, a.Max, a.Sum, a.Count = math.Min(a.Min, p.v), math.Max(a.Max, p.v), a.Sum+p.v, a.Count+1
			out[b] = a
		}
		return out
	}
	cases := []struct {
		name              string
		start, end, width int64
	}{
		{"rollup minutes", base, base + 3600_000, 60_000},
		{"rollup 5 minutes with partial tail", base + 60_000, base + 3600_000 + 31_500, 300_000},
		{"raw seconds", base + 1000, base + 600_000, 30_000},
		{"unaligned minutes: partial ends from points", base + 13_000, base + 7200_000 - 21_000, 60_000},
		{"unaligned 5 minutes", base + 13_000, base + 7200_000, 300_000},
		{"one bucket wider than the range", base, base + 7200_000, 86400_000},
	}
	for _, c := range cases {
		got, err := s.AggregateRange(ctx, tsstore.AggregateQuery{DeviceID: dev, Start: c.start, End: c.end, Width: c.width, Metrics: []string{"temperature"}})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := expect(c.start, c.end, c.width)
		if len(got) != len(want) {
			t.Fatalf("%s: %d buckets, want %d", c.name, len(got), len(want))
		}
		for i, b := range got {
			if i > 0 && b.Start <= got[i-1].Start {
				t.Fatalf("%s: buckets out of order", c.name)
			}
			if len(b.Metrics) != 1 {
				t.Fatalf("%s: bucket has metrics %v, want only temperature", c.name, b.Metrics)
			}
			g, w := b.Metrics["temperature"], want[b.Start]
			if g.Count != w.Count || g.Min != w.Min || g.Max != w.Max || math.Abs(g.Sum-w.Sum) > 1e-9 {
				t.Fatalf("%s: bucket %d = %+v, want %+v", c.name, b.Start, g, w)
			}
		}
	}
}

func testLatest(t *testing.T, s *tsstore.Store) {
	ctx := context.Background()
	dev := newID()
	appendPoints(t, s, record(dev, 2, base+2000, map[string]float64{"temperature": 22, "humidity": 41}))
	appendPoints(t, s, record(dev, 1, base+1000, map[string]float64{"temperature": 21, "co2": 600})) // late
	got, err := s.LatestValues(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]tsstore.Latest{
		"temperature": {Value: 22, TS: base + 2000},
		"humidity":    {Value: 41, TS: base + 2000},
		"co2":         {Value: 600, TS: base + 1000},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("latest = %v, want %v", got, want)
	}
	if got, err := s.LatestValues(ctx, newID()); err != nil || len(got) != 0 {
		t.Fatalf("unknown device latest = %v, %v", got, err)
	}
}

func testRetention(t *testing.T, s *tsstore.Store) {
	ctx := context.Background()
	dev := newID()
	var pts []tsstore.Point
	for seq := range int64(300) {
		pts = append(pts, record(dev, seq, base+seq*1000, map[string]float64{"temperature": 1})...)
	}
	appendPoints(t, s, pts)
	cutoff := base + 120_000
	var deleted int64
	for {
		n, err := s.DeleteBefore(ctx, cutoff, 50)
		if err != nil {
			t.Fatal(err)
		}
		deleted += n
		if n < 50 {
			break
		}
	}
	if deleted != 120 {
		t.Fatalf("deleted %d points, want 120", deleted)
	}
	recs, err := s.QueryRecords(ctx, tsstore.RecordQuery{DeviceID: dev, Start: 0, End: base + 1_000_000, AfterTS: -1, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 180 || recs[0].TS != cutoff {
		t.Fatalf("%d records left starting at %d, want 180 from the cutoff", len(recs), recs[0].TS)
	}
	aggs, err := s.AggregateRange(ctx, tsstore.AggregateQuery{DeviceID: dev, Start: base, End: base + 300_000, Width: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	if len(aggs) != 3 || aggs[0].Start != cutoff {
		t.Fatalf("rollups after retention start at %d (%d buckets), want 3 from the cutoff", aggs[0].Start, len(aggs))
	}
	if l, err := s.LatestValues(ctx, dev); err != nil || l["temperature"].TS != base+299_000 {
		t.Fatalf("latest after retention = %v, %v", l, err)
	}
}

func testIsolation(t *testing.T, s *tsstore.Store) {
	ctx := context.Background()
	a, b := newID(), newID()
	appendPoints(t, s, append(record(a, 1, base, map[string]float64{"temperature": 1}), record(b, 1, base, map[string]float64{"temperature": 2})...))
	// The same seq on another device is not a duplicate.
	if keys := appendPoints(t, s, record(b, 2, base+1000, map[string]float64{"temperature": 3})); len(keys) != 1 {
		t.Fatalf("stored %v", keys)
	}
	rule := tsstore.Rule{ID: newID(), DeviceID: b, Name: "cold", Condition: tsstore.Condition{Metric: "temperature", Operator: "OPERATOR_LESS_THAN", Level: "warning"}, Enabled: true, CreateTime: time.Now(), UpdateTime: time.Now()}
	if err := s.InTx(ctx, func(tx *tsstore.Tx) error { return tx.InsertRule(ctx, rule) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rule(ctx, a, rule.ID); err != tsstore.ErrNotFound {
		t.Fatalf("rule of b read through a: %v", err)
	}
	if err := s.InTx(ctx, func(tx *tsstore.Tx) error { return tx.DeleteDevice(ctx, a) }); err != nil {
		t.Fatal(err)
	}
	for dev, want := range map[string]int{a: 0, b: 2} {
		recs, err := s.QueryRecords(ctx, tsstore.RecordQuery{DeviceID: dev, Start: 0, End: base + 10_000, AfterTS: -1, Limit: 10})
		if err != nil || len(recs) != want {
			t.Fatalf("device %s has %d records (%v), want %d", dev, len(recs), err, want)
		}
		latest, _ := s.LatestValues(ctx, dev)
		aggs, _ := s.AggregateRange(ctx, tsstore.AggregateQuery{DeviceID: dev, Start: base, End: base + 60_000, Width: 60_000})
		if (len(latest) == 0) != (want == 0) || (len(aggs) == 0) != (want == 0) {
			t.Fatalf("device %s: latest %v, buckets %v", dev, latest, aggs)
		}
	}
	if _, err := s.Rule(ctx, b, rule.ID); err != nil {
		t.Fatalf("rule of b lost when a was deleted: %v", err)
	}
}

func testRulesAndAlerts(t *testing.T, s *tsstore.Store) {
	ctx := context.Background()
	dev := newID()
	now := time.Now().UTC().Truncate(time.Millisecond)
	var ids []string
	err := s.InTx(ctx, func(tx *tsstore.Tx) error {
		if err := tx.SetDeviceOwner(ctx, dev, "owner-1", now); err != nil {
			return err
		}
		for i := range 5 {
			r := tsstore.Rule{
				ID: newID(), DeviceID: dev, Name: fmt.Sprintf("rule %d", i), Enabled: i%2 == 0,
				Condition:  tsstore.Condition{Metric: "temperature", Operator: "OPERATOR_LESS_THAN", Threshold: 10, Hysteresis: 0.5, MinDuration: 5 * time.Minute, Level: "warning"},
				CreateTime: now.Add(time.Duration(i) * time.Millisecond), UpdateTime: now,
			}
			ids = append(ids, r.ID)
			if err := tx.InsertRule(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	page1, err := s.ListRules(ctx, dev, nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	last := page1[len(page1)-1]
	page2, err := s.ListRules(ctx, dev, &tsstore.RuleCursor{CreateTime: last.CreateTime, ID: last.ID}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(page1) != 3 || len(page2) != 2 || page1[0].ID != ids[0] || page2[1].ID != ids[4] {
		t.Fatalf("pages of rules: %d then %d", len(page1), len(page2))
	}
	if c := page1[0].Condition; c.MinDuration != 5*time.Minute || c.Hysteresis != 0.5 || !page1[0].Enabled || page1[1].Enabled {
		t.Fatalf("rule read back as %+v", page1[0])
	}

	alertID := newID()
	err = s.InTx(ctx, func(tx *tsstore.Tx) error {
		if err := tx.LearnDeviceOwner(ctx, dev, "owner-2"); err != nil {
			return err
		}
		owner, claimed, err := tx.DeviceOwner(ctx, dev)
		if err != nil || owner != "owner-1" || !claimed {
			return fmt.Errorf("owner %q (claimed %v): %w", owner, claimed, err)
		}
		rules, err := tx.EnabledRulesForUpdate(ctx, []string{dev, newID()})
		if err != nil || len(rules) != 3 {
			return fmt.Errorf("%d enabled rules: %w", len(rules), err)
		}
		r := rules[0]
		r.State = tsstore.RuleState{Phase: tsstore.PhaseFiring, LastTS: base, AlertID: alertID}
		if err := tx.SaveRuleState(ctx, r.ID, r.State); err != nil {
			return err
		}
		return tx.InsertAlert(ctx, tsstore.Alert{ID: alertID, RuleID: r.ID, DeviceID: dev, RuleName: r.Name, Condition: r.Condition, Active: true, RaiseValue: 9, RaiseTime: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Rule(ctx, dev, ids[0]); err != nil || r.State.Phase != tsstore.PhaseFiring || r.State.AlertID != alertID {
		t.Fatalf("rule state = %+v, %v", r.State, err)
	}
	active := true
	if as, err := s.ListAlerts(ctx, dev, &active, nil, 10); err != nil || len(as) != 1 || as[0].RaiseValue != 9 {
		t.Fatalf("active alerts = %v, %v", as, err)
	}
	err = s.InTx(ctx, func(tx *tsstore.Tx) error {
		a, err := tx.ClearAlert(ctx, alertID, 11, now.Add(time.Minute))
		if err != nil || a.Active || a.ClearValue != 11 {
			return fmt.Errorf("cleared alert %+v: %w", a, err)
		}
		if _, err := tx.ClearAlert(ctx, alertID, 12, now); err != tsstore.ErrNotFound {
			return fmt.Errorf("second clear: %v", err)
		}
		return tx.DeleteRule(ctx, dev, ids[1])
	})
	if err != nil {
		t.Fatal(err)
	}
	if as, err := s.ListAlerts(ctx, dev, &active, nil, 10); err != nil || len(as) != 0 {
		t.Fatalf("active alerts after clear = %v, %v", as, err)
	}
	if _, err := s.Rule(ctx, dev, ids[1]); err != tsstore.ErrNotFound {
		t.Fatalf("deleted rule: %v", err)
	}
}
