package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"time"
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
	// ReasonRejected: the data service refused the records (e.g. the
	// device is no longer registered).
	ReasonRejected = "rejected_by_data_service"
)

// Limits of one telemetry message.
const (
	// MaxSamples is the most samples one message may carry.
	MaxSamples = 1000
	// MaxMetrics is the most metrics one sample may carry (the data
	// service's limit).
	MaxMetrics = 64
)

// metricNameRe is the data service's rule for metric names.
var metricNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Sample is one validated telemetry sample.
type Sample struct {
	// Seq is the device's sequence number.
	Seq int64
	// Time is when the device measured the values.
	Time time.Time
	// Metrics are the values by name, all finite.
	Metrics map[string]float64
}

// wireSample is a sample as devices send it; pointers tell a missing
// field from a zero one.
type wireSample struct {
	TS      *int64              `json:"ts"`
	Seq     *int64              `json:"seq"`
	Metrics map[string]*float64 `json:"metrics"`
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

// Parse validates a telemetry payload — one sample object or an array of
// them — against the protocol: `ts` Unix milliseconds within a day of now
// (and after 2000), `seq` ≥ 0, 1 to MaxMetrics metrics with names matching
// ^[a-z][a-z0-9_]{0,63}$ and finite numeric values. Any invalid sample
// refuses the whole message with a *RejectError.
func Parse(payload []byte, maxBytes int, now time.Time) ([]Sample, error) {
	if len(payload) > maxBytes {
		return nil, reject(ReasonTooLarge, "payload exceeds the size limit")
	}
	body := bytes.TrimSpace(payload)
	var ws []wireSample
	switch {
	case len(body) == 0:
		return nil, reject(ReasonEmpty, "empty payload")
	case body[0] == '[':
		if err := strictUnmarshal(body, &ws); err != nil {
			return nil, reject(ReasonInvalidJSON, err.Error())
		}
	case body[0] == '{':
		var w wireSample
		if err := strictUnmarshal(body, &w); err != nil {
			return nil, reject(ReasonInvalidJSON, err.Error())
		}
		ws = []wireSample{w}
	default:
		return nil, reject(ReasonInvalidJSON, "want a JSON object or array")
	}
	switch {
	case len(ws) == 0:
		return nil, reject(ReasonEmpty, "empty array")
	case len(ws) > MaxSamples:
		return nil, reject(ReasonTooMany, "more than 1000 samples")
	}
	earliest, latest := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), now.Add(24*time.Hour).UnixMilli()
	out := make([]Sample, len(ws))
	for i, w := range ws {
		switch {
		case w.TS == nil || *w.TS < earliest || *w.TS > latest:
			return nil, reject(ReasonInvalidTS, "ts must be Unix milliseconds, not in the future")
		case w.Seq == nil || *w.Seq < 0:
			return nil, reject(ReasonInvalidSeq, "seq must be an integer ≥ 0")
		case len(w.Metrics) == 0:
			return nil, reject(ReasonNoMetrics, "metrics must hold at least one value")
		case len(w.Metrics) > MaxMetrics:
			return nil, reject(ReasonTooManyMetric, "more than 64 metrics")
		}
		ms := make(map[string]float64, len(w.Metrics))
		for k, v := range w.Metrics {
			if !metricNameRe.MatchString(k) {
				return nil, reject(ReasonMetricName, "metric names must match ^[a-z][a-z0-9_]{0,63}$")
			}
			if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
				return nil, reject(ReasonMetricValue, "metric "+k+" must be a finite number")
			}
			ms[k] = *v
		}
		out[i] = Sample{Seq: *w.Seq, Time: time.UnixMilli(*w.TS).UTC(), Metrics: ms}
	}
	return out, nil
}

// strictUnmarshal decodes one JSON value with nothing after it.
func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}
