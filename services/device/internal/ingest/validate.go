package ingest

import (
	"bytes"
	"math"
	"time"

	"github.com/valyala/fastjson"
)

// Reasons a telemetry message is refused: the dlq_reason header and the
// reason label of comfort_device_telemetry_rejected_total.
const (
	ReasonTooLarge      = "too_large"
	ReasonInvalidJSON   = "invalid_json"
	ReasonEmpty         = "empty"
	ReasonTooMany       = "too_many_samples"
	ReasonInvalidTS     = "invalid_ts"
	ReasonInvalidSeq    = "invalid_seq"
	ReasonNoMetrics     = "no_metrics"
	ReasonTooManyMetric = "too_many_metrics"
	ReasonMetricName    = "invalid_metric_name"
	ReasonMetricValue   = "invalid_metric_value"
	// ReasonUnencodable: the samples could not be encoded as an event.
	ReasonUnencodable = "unencodable"
)

// Limits of one telemetry message.
const (
	// MaxSamples is the most samples one message may carry.
	MaxSamples = 1000
	// MaxMetrics is the most metrics one sample may carry (the data
	// service's limit).
	MaxMetrics = 64
)

// validMetricName is the data service's rule for metric names,
// ^[a-z][a-z0-9_]{0,63}$, without a regexp: it runs for every metric of
// every message.
func validMetricName(k []byte) bool {
	if len(k) == 0 || len(k) > 64 || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for _, c := range k[1:] {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// Sample is one validated telemetry sample.
type Sample struct {
	// Seq is the device's sequence number.
	Seq int64
	// Time is when the device measured the values.
	Time time.Time
	// Metrics are the values by name, all finite.
	Metrics map[string]float64
}

// RejectError says why a message was refused.
type RejectError struct {
	// Reason is one of the Reason constants.
	Reason string
	// Detail says more, for the DLQ header and logs.
	Detail string
}

// Error implements error.
func (e *RejectError) Error() string { return e.Reason + ": " + e.Detail }

func reject(reason, detail string) error { return &RejectError{Reason: reason, Detail: detail} }

// parsers are reused across messages: a fastjson parser keeps its value
// tree between parses, so validating a message allocates little beyond
// the samples themselves (this is the ingest hot path).
var parsers fastjson.ParserPool

// Parse validates a telemetry payload — one sample object or an array of
// them — against the protocol: `ts` Unix milliseconds within a day of now
// (and after 2000), `seq` an integer ≥ 0, 1 to MaxMetrics metrics with
// names matching ^[a-z][a-z0-9_]{0,63}$ and finite numeric values; other
// fields are ignored. Any invalid sample refuses the whole message with a
// *RejectError.
func Parse(payload []byte, maxBytes int, now time.Time) ([]Sample, error) {
	if len(payload) > maxBytes {
		return nil, reject(ReasonTooLarge, "payload exceeds the size limit")
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		return nil, reject(ReasonEmpty, "empty payload")
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(payload)
	if err != nil {
		return nil, reject(ReasonInvalidJSON, err.Error())
	}
	var items []*fastjson.Value
	switch v.Type() {
	case fastjson.TypeArray:
		items, _ = v.Array()
	case fastjson.TypeObject:
		items = []*fastjson.Value{v}
	default:
		return nil, reject(ReasonInvalidJSON, "want a JSON object or array")
	}
	switch {
	case len(items) == 0:
		return nil, reject(ReasonEmpty, "empty array")
	case len(items) > MaxSamples:
		return nil, reject(ReasonTooMany, "more than 1000 samples")
	}
	earliest, latest := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), now.Add(24*time.Hour).UnixMilli()
	out := make([]Sample, len(items))
	for i, it := range items {
		if it.Type() != fastjson.TypeObject {
			return nil, reject(ReasonInvalidJSON, "samples must be JSON objects")
		}
		s, err := parseSample(it, earliest, latest)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// parseSample validates one sample object.
func parseSample(v *fastjson.Value, earliest, latest int64) (Sample, error) {
	ts, err := integer(v, "ts")
	if err != nil || ts < earliest || ts > latest {
		return Sample{}, reject(ReasonInvalidTS, "ts must be Unix milliseconds, not in the future")
	}
	seq, err := integer(v, "seq")
	if err != nil || seq < 0 {
		return Sample{}, reject(ReasonInvalidSeq, "seq must be an integer ≥ 0")
	}
	metrics := v.Get("metrics")
	if metrics == nil || metrics.Type() != fastjson.TypeObject {
		return Sample{}, reject(ReasonNoMetrics, "metrics must hold at least one value")
	}
	o, _ := metrics.Object()
	switch n := o.Len(); {
	case n == 0:
		return Sample{}, reject(ReasonNoMetrics, "metrics must hold at least one value")
	case n > MaxMetrics:
		return Sample{}, reject(ReasonTooManyMetric, "more than 64 metrics")
	}
	ms := make(map[string]float64, o.Len())
	var bad error
	o.Visit(func(k []byte, mv *fastjson.Value) {
		if bad != nil {
			return
		}
		if !validMetricName(k) {
			bad = reject(ReasonMetricName, "metric names must match ^[a-z][a-z0-9_]{0,63}$")
			return
		}
		f, err := mv.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			bad = reject(ReasonMetricValue, "metric "+string(k)+" must be a finite number")
			return
		}
		ms[string(k)] = f
	})
	if bad != nil {
		return Sample{}, bad
	}
	return Sample{Seq: seq, Time: time.UnixMilli(ts).UTC(), Metrics: ms}, nil
}

// integer reads the integer field key of v.
func integer(v *fastjson.Value, key string) (int64, error) {
	f := v.Get(key)
	if f == nil {
		return 0, errMissing
	}
	return f.Int64()
}

var errMissing = reject(ReasonInvalidJSON, "missing field")
