package ingest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/comfortech/platform/services/device/internal/ingest"
)

func TestParse(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ms := now.UnixMilli()
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprintf(`"m%d":1`, i)
	}
	cases := []struct {
		name, body, reason string
		samples            int
	}{
		{"one sample", fmt.Sprintf(`{"ts":%d,"seq":0,"metrics":{"temperature":21.5,"humidity":40}}`, ms), "", 1},
		{"array", fmt.Sprintf(`[{"ts":%d,"seq":1,"metrics":{"t":1}},{"ts":%d,"seq":2,"metrics":{"t":2}}]`, ms, ms), "", 2},
		{"too large", `{"pad":"` + strings.Repeat("x", 200) + `"}`, ingest.ReasonTooLarge, 0},
		{"not json", `hello`, ingest.ReasonInvalidJSON, 0},
		{"trailing data", fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{"t":1}} {}`, ms), ingest.ReasonInvalidJSON, 0},
		{"string value", fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{"t":"hot"}}`, ms), ingest.ReasonMetricValue, 0},
		{"fractional ts", fmt.Sprintf(`{"ts":%d.5,"seq":1,"metrics":{"t":1}}`, ms), ingest.ReasonInvalidTS, 0},
		{"string seq", fmt.Sprintf(`{"ts":%d,"seq":"1","metrics":{"t":1}}`, ms), ingest.ReasonInvalidSeq, 0},
		{"sample not an object", `[1]`, ingest.ReasonInvalidJSON, 0},
		{"a number", `42`, ingest.ReasonInvalidJSON, 0},
		{"NaN", fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{"t":NaN}}`, ms), ingest.ReasonMetricValue, 0},
		{"empty", `  `, ingest.ReasonEmpty, 0},
		{"empty array", `[]`, ingest.ReasonEmpty, 0},
		{"no ts", `{"seq":1,"metrics":{"t":1}}`, ingest.ReasonInvalidTS, 0},
		{"ts in seconds", fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{"t":1}}`, now.Unix()), ingest.ReasonInvalidTS, 0},
		{"ts in the future", fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{"t":1}}`, now.Add(48*time.Hour).UnixMilli()), ingest.ReasonInvalidTS, 0},
		{"negative seq", fmt.Sprintf(`{"ts":%d,"seq":-1,"metrics":{"t":1}}`, ms), ingest.ReasonInvalidSeq, 0},
		{"no metrics", fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{}}`, ms), ingest.ReasonNoMetrics, 0},
		{"too many metrics", fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{%s}}`, ms, strings.Join(many, ",")), ingest.ReasonTooManyMetric, 0},
		{"bad name", fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{"1t":1}}`, ms), ingest.ReasonMetricName, 0},
		{"upper case name", fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{"tEmp":1}}`, ms), ingest.ReasonMetricName, 0},
		{"name too long", fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{"%s":1}}`, ms, strings.Repeat("a", 65)), ingest.ReasonMetricName, 0},
		{"longest name", fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{"%s":1}}`, ms, strings.Repeat("a", 64)), "", 1},
		{"empty name", fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{"":1}}`, ms), ingest.ReasonMetricName, 0},
		{"null value", fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{"t":null}}`, ms), ingest.ReasonMetricValue, 0},
		{"one bad sample refuses all", fmt.Sprintf(`[{"ts":%d,"seq":1,"metrics":{"t":1}},{"ts":%d,"seq":-2,"metrics":{"t":1}}]`, ms, ms), ingest.ReasonInvalidSeq, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			limit := 4096
			if c.reason == ingest.ReasonTooLarge {
				limit = 100
			}
			got, err := ingest.Parse([]byte(c.body), limit, now)
			var re *ingest.RejectError
			switch {
			case c.reason == "" && (err != nil || len(got) != c.samples):
				t.Errorf("got %d samples, %v; want %d", len(got), err, c.samples)
			case c.reason != "" && (!errors.As(err, &re) || re.Reason != c.reason):
				t.Errorf("got %v, want reason %s", err, c.reason)
			}
		})
	}
}

// BenchmarkParse validates the benchmark's typical message: one sample
// with three metrics.
func BenchmarkParse(b *testing.B) {
	now := time.Now()
	body := fmt.Appendf(nil, `{"ts":%d,"seq":42,"metrics":{"temperature":21.5,"humidity":40,"co2":612}}`, now.UnixMilli())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ingest.Parse(body, 64<<10, now); err != nil {
			b.Fatal(err)
		}
	}
}
