package telemetry

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore"
)

// Page sizes of QueryTelemetry (datav1.QueryTelemetryRequest.page_size).
const (
	defaultPointPage = 1000
	maxPointPage     = 10000
	maxBuckets       = 10000
)

// AppendTelemetry stores a batch of records from any number of devices;
// the core's DataInternalService.AppendTelemetry delegates to it. A record
// whose (device, seq) is already stored counts as a duplicate. The new
// records are evaluated against their devices' alert rules in time order,
// in the same transaction, so an alert transition is stored and its events
// enqueued exactly once. Unknown devices are the caller's to reject: this
// package does not keep the device registry.
func (s *Service) AppendTelemetry(ctx context.Context, req *datav1.AppendTelemetryRequest) (*datav1.AppendTelemetryResponse, error) {
	recs := req.GetRecords()
	if len(recs) == 0 {
		return nil, invalid("records", "at least one record is required")
	}
	type key = tsstore.RecordKey
	byKey := make(map[key]*datav1.TelemetryRecord, len(recs))
	var pts []tsstore.Point
	for i, r := range recs {
		field := fmt.Sprintf("records[%d]", i)
		if err := uuid.Validate(r.GetDeviceId()); err != nil {
			return nil, invalid(field+".device_id", "must be a UUID")
		}
		if r.GetSeq() < 0 {
			return nil, invalid(field+".seq", "must not be negative")
		}
		if r.GetTime() == nil || r.GetTime().AsTime().Before(time.Unix(0, 0)) {
			return nil, invalid(field+".time", "is required and must not be before 1970")
		}
		if len(r.GetMetrics()) == 0 {
			return nil, invalid(field+".metrics", "at least one metric is required")
		}
		ts := r.GetTime().AsTime().UnixMilli()
		for m, v := range r.GetMetrics() {
			pts = append(pts, tsstore.Point{DeviceID: r.GetDeviceId(), Seq: r.GetSeq(), Metric: m, TS: ts, Value: v})
		}
		k := key{DeviceID: r.GetDeviceId(), Seq: r.GetSeq()}
		if _, dup := byKey[k]; !dup {
			byKey[k] = r
		}
	}
	var (
		accepted int
		events   bool
	)
	err := s.store.InTx(ctx, func(tx *tsstore.Tx) error {
		keys, err := tx.AppendPoints(ctx, pts)
		if err != nil {
			return err
		}
		accepted = len(keys)
		fresh := make([]*datav1.TelemetryRecord, 0, len(keys))
		for _, k := range keys {
			fresh = append(fresh, byKey[k])
		}
		events, err = s.evaluate(ctx, tx, fresh)
		return err
	})
	if err != nil {
		return nil, err
	}
	if events {
		s.notify()
	}
	s.points.WithLabelValues("stored").Add(float64(accepted))
	s.points.WithLabelValues("duplicate").Add(float64(len(recs) - accepted))
	return &datav1.AppendTelemetryResponse{Accepted: int32(accepted), Duplicates: int32(len(recs) - accepted)}, nil
}

// pointCursor is where a QueryTelemetry page ended.
type pointCursor struct {
	TS  int64 `json:"t"`
	Seq int64 `json:"s"`
}

func (s *Service) queryTelemetry(ctx context.Context, req *datav1.QueryTelemetryRequest) (*datav1.QueryTelemetryResponse, error) {
	start, end, err := timeRange(req.GetStartTime(), req.GetEndTime())
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize(), defaultPointPage, maxPointPage)
	if err != nil {
		return nil, err
	}
	if _, err := s.authorize(ctx, req.GetDeviceId(), readRole); err != nil {
		return nil, err
	}
	q := tsstore.RecordQuery{DeviceID: req.GetDeviceId(), Start: start, End: end, Metrics: req.GetMetrics(), AfterTS: -1, Limit: size + 1}
	if tok := req.GetPageToken(); tok != "" {
		var c pointCursor
		if err := decodeToken(tok, "points", req.GetDeviceId(), &c); err != nil {
			return nil, err
		}
		q.AfterTS, q.AfterSeq = c.TS, c.Seq
	}
	recs, err := s.store.QueryRecords(ctx, q)
	if err != nil {
		return nil, err
	}
	resp := &datav1.QueryTelemetryResponse{}
	if len(recs) > size {
		recs = recs[:size]
		last := recs[size-1]
		resp.NextPageToken = encodeToken("points", req.GetDeviceId(), pointCursor{TS: last.TS, Seq: last.Seq})
	}
	for _, r := range recs {
		resp.Items = append(resp.Items, &datav1.TelemetryPoint{
			DeviceId: r.DeviceID, Seq: r.Seq, Time: timestamppb.New(time.UnixMilli(r.TS)), Metrics: r.Metrics,
		})
	}
	return resp, nil
}

func (s *Service) aggregateTelemetry(ctx context.Context, req *datav1.AggregateTelemetryRequest) (*datav1.AggregateTelemetryResponse, error) {
	start, end, err := timeRange(req.GetStartTime(), req.GetEndTime())
	if err != nil {
		return nil, err
	}
	if req.GetBucket() == nil {
		return nil, invalid("bucket", "is required")
	}
	width := req.GetBucket().AsDuration().Milliseconds()
	switch {
	case width < 1000 || width > 31*24*3600*1000:
		return nil, invalid("bucket", "must be from 1s to 31 days")
	case (end-start+width-1)/width > maxBuckets:
		return nil, invalid("bucket", "the range holds more than 10000 buckets")
	}
	if _, err := s.authorize(ctx, req.GetDeviceId(), readRole); err != nil {
		return nil, err
	}
	buckets, err := s.store.AggregateRange(ctx, tsstore.AggregateQuery{DeviceID: req.GetDeviceId(), Start: start, End: end, Width: width, Metrics: req.GetMetrics()})
	if err != nil {
		return nil, err
	}
	resp := &datav1.AggregateTelemetryResponse{Items: make([]*datav1.TelemetryBucket, 0, len(buckets))}
	for _, b := range buckets {
		tb := &datav1.TelemetryBucket{
			// Epoch-aligned buckets at the ends are cut to the range.
			StartTime: timestamppb.New(time.UnixMilli(max(b.Start, start))),
			EndTime:   timestamppb.New(time.UnixMilli(min(b.Start+width, end))),
			Metrics:   make(map[string]*datav1.MetricAggregate, len(b.Metrics)),
		}
		for m, a := range b.Metrics {
			tb.Metrics[m] = &datav1.MetricAggregate{Min: a.Min, Max: a.Max, Avg: a.Sum / float64(a.Count), Count: a.Count}
		}
		resp.Items = append(resp.Items, tb)
	}
	return resp, nil
}

func (s *Service) latestTelemetry(ctx context.Context, req *datav1.GetLatestTelemetryRequest) (*datav1.GetLatestTelemetryResponse, error) {
	if _, err := s.authorize(ctx, req.GetDeviceId(), readRole); err != nil {
		return nil, err
	}
	latest, err := s.store.LatestValues(ctx, req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	return &datav1.GetLatestTelemetryResponse{Metrics: fromLatest(latest)}, nil
}

func fromLatest(latest map[string]tsstore.Latest) map[string]*datav1.LatestValue {
	out := make(map[string]*datav1.LatestValue, len(latest))
	for m, l := range latest {
		out[m] = &datav1.LatestValue{Value: l.Value, Time: timestamppb.New(time.UnixMilli(l.TS))}
	}
	return out
}

// timeRange converts [start, end) to ms, checking it is a range.
func timeRange(start, end *timestamppb.Timestamp) (int64, int64, error) {
	if start == nil {
		return 0, 0, invalid("start_time", "is required")
	}
	if end == nil {
		return 0, 0, invalid("end_time", "is required")
	}
	s, e := start.AsTime().UnixMilli(), end.AsTime().UnixMilli()
	if e <= s {
		return 0, 0, invalid("end_time", "must be after start_time")
	}
	return s, e, nil
}

// pageSize applies the default and bounds of a page size.
func pageSize(n int32, def, maxSize int) (int, error) {
	switch {
	case n < 0 || int(n) > maxSize:
		return 0, invalid("page_size", fmt.Sprintf("must be from 0 to %d", maxSize))
	case n == 0:
		return def, nil
	}
	return int(n), nil
}

// sortRecords orders records by time, then seq: the order alert rules see them.
func sortRecords(recs []*datav1.TelemetryRecord) {
	slices.SortStableFunc(recs, func(a, b *datav1.TelemetryRecord) int {
		return cmp.Or(strings.Compare(a.GetDeviceId(), b.GetDeviceId()),
			cmp.Compare(a.GetTime().AsTime().UnixMilli(), b.GetTime().AsTime().UnixMilli()),
			cmp.Compare(a.GetSeq(), b.GetSeq()))
	})
}
