// Package audit records administrative actions — who did what, when, to
// which resource, and the resource before and after — as
// comfortech.events.v1.AuditEvent on the `audit` topic, where the data
// service stores them for GET /v1/audit.
//
// A service lists its audited gRPC methods in a Methods table and installs
// Interceptor after authentication: every call of a listed method is
// recorded, succeeded or failed, with the caller taken from the verified
// token — except a request with `validate_only` set, which changes nothing. Fields marked `debug_redact` in the protos (secrets, claim codes)
// never reach the record.
package audit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/requestid"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// Topic is where audit events go, and EventType their ce_type.
const (
	Topic     = "audit"
	EventType = "comfortech.audit.v1"
)

// publishTimeout bounds the wait for Kafka's acknowledgement of a record.
const publishTimeout = 5 * time.Second

// MaxBacklog bounds the records kept for Run to publish again: about
// 20 MB at most, or ten provisionings of a thousand devices.
const MaxBacklog = 10_000

// Method says how calls of one gRPC method are recorded.
type Method struct {
	// Action is `<area>.<verb>`, e.g. `device.provision`.
	Action string
	// ResourceType is the kind of resource, e.g. `device`.
	ResourceType string
	// ID is the path of the resource id: request fields ("device_id",
	// "application.name"), or response fields after "response."
	// ("response.device.device_id") for resources the call creates. A path
	// through a repeated field records one event per element. In the
	// response, the first message on the path ("device", or an element of
	// "items") is the resource after the call.
	ID string
	// After is the response field holding the resource after the call when
	// ID is a request path ("model"); empty: the whole response.
	After string
	// Reason is the request field holding the operator's reason, if any.
	Reason string
	// Before loads the resource as it is before the call, by id, for
	// changes and deletions; nil for creations. ErrNotFound (or any
	// NotFound status) records no "before".
	Before func(ctx context.Context, id string) (proto.Message, error)
}

// Methods maps full gRPC method names to how they are recorded.
type Methods map[string]Method

// Check reports the first method of ms that is not a registered gRPC
// method, or whose ID, Reason or After path names no field of its request
// or response.
func (ms Methods) Check() error {
	for name, m := range ms {
		svc, method, ok := strings.Cut(strings.TrimPrefix(name, "/"), "/")
		if !ok {
			return fmt.Errorf("audit: %q is not a full method name", name)
		}
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
		sd, isSvc := d.(protoreflect.ServiceDescriptor)
		if err != nil || !isSvc || sd.Methods().ByName(protoreflect.Name(method)) == nil {
			return fmt.Errorf("audit: %s is not a registered gRPC method", name)
		}
		md := sd.Methods().ByName(protoreflect.Name(method))
		type path struct {
			msg  protoreflect.MessageDescriptor
			path string
		}
		idPath := path{md.Input(), m.ID}
		if rest, ok := strings.CutPrefix(m.ID, responsePrefix); ok {
			idPath = path{md.Output(), rest}
		}
		paths := []path{idPath, {md.Input(), m.Reason}, {md.Output(), m.After}}
		for _, p := range paths {
			if p.path != "" && !hasPath(p.msg, strings.Split(p.path, ".")) {
				return fmt.Errorf("audit: %s: %s has no field %q", name, p.msg.FullName(), p.path)
			}
		}
	}
	return nil
}

// hasPath reports whether names lead through md's fields.
func hasPath(md protoreflect.MessageDescriptor, names []string) bool {
	fd := md.Fields().ByName(protoreflect.Name(names[0]))
	switch {
	case fd == nil:
		return false
	case len(names) == 1:
		return true
	case fd.Kind() != protoreflect.MessageKind || fd.IsMap():
		return false
	}
	return hasPath(fd.Message(), names[1:])
}

// Publisher sends Kafka messages together and waits for every
// acknowledgement; a *kafka.BatchError tells which failed
// (*kafka.Producer).
type Publisher interface {
	PublishBatch(ctx context.Context, msgs []kafka.Message) error
}

// Recorder publishes audit events for one part.
type Recorder struct {
	pub    Publisher
	source string
	log    *zap.Logger
	events *prometheus.CounterVec
	now    func() time.Time

	mu      sync.Mutex
	backlog []kafka.Message // refused by Kafka, oldest first
	kick    chan struct{}   // the backlog grew
}

// NewRecorder returns a Recorder publishing through pub as source (the
// CloudEvents ce_source, e.g. "/services/device"), counting what it does in
// comfort_audit_events_total{result} and comfort_audit_backlog on reg. Run
// must run for refused records to be published again.
func NewRecorder(pub Publisher, source string, log *zap.Logger, reg prometheus.Registerer) (*Recorder, error) {
	if log == nil {
		log = zap.NewNop()
	}
	r := &Recorder{pub: pub, source: source, log: log, now: time.Now, kick: make(chan struct{}, 1)}
	r.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "comfort_audit_events_total",
		Help: "Audit events by result: published, or failed (lost: Kafka did not take it before the process stopped, or the backlog was full; the action stands and the loss is logged).",
	}, []string{"result"})
	backlog := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "comfort_audit_backlog",
		Help: "Audit events Kafka refused, kept in memory to be published again.",
	}, func() float64 { return float64(r.waiting()) })
	if reg != nil {
		for _, c := range []prometheus.Collector{r.events, backlog} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("audit: metrics: %w", err)
			}
		}
	}
	// Zero series, so the first failure is an increase alerts can see.
	r.events.WithLabelValues("published")
	r.events.WithLabelValues("failed")
	return r, nil
}

// Interceptor records every call of the methods in ms. It must run after
// authentication, so that the caller is known. It panics when ms does not
// Check: the table is code, and a wrong path would silently record
// nothing.
func (r *Recorder) Interceptor(ms Methods) grpc.UnaryServerInterceptor {
	if err := ms.Check(); err != nil {
		panic(err)
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		m, ok := ms[info.FullMethod]
		reqMsg, _ := req.(proto.Message)
		if !ok || validateOnly(reqMsg) {
			return handler(ctx, req)
		}
		var before map[string]*structpb.Struct
		if m.Before != nil && reqMsg != nil && !strings.HasPrefix(m.ID, responsePrefix) {
			before = r.load(ctx, m, reqMsg)
		}
		resp, err := handler(ctx, req)
		respMsg, _ := resp.(proto.Message)
		r.record(ctx, m, reqMsg, respMsg, before, err)
		return resp, err
	}
}

// validateOnly reports whether req only asks what a change would do (its
// `validate_only` field is set): nothing changes, nothing is recorded.
func validateOnly(req proto.Message) bool {
	if req == nil {
		return false
	}
	r := req.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("validate_only")
	return fd != nil && fd.Kind() == protoreflect.BoolKind && r.Get(fd).Bool()
}

// responsePrefix marks an id path in the response.
const responsePrefix = "response."

// load fetches the resources the request names, as they are now.
func (r *Recorder) load(ctx context.Context, m Method, req proto.Message) map[string]*structpb.Struct {
	out := map[string]*structpb.Struct{}
	for _, f := range find(req, m.ID) {
		res, err := m.Before(ctx, f.id)
		if err != nil {
			if status.Code(err) != codes.NotFound && !errors.Is(err, ErrNotFound) {
				logging.For(ctx, r.log).Warn("audit: resource before the action not loaded", zap.String("action", m.Action), zap.Error(err))
			}
			continue
		}
		out[f.id] = toStruct(res)
	}
	return out
}

// ErrNotFound may be returned by Method.Before for a resource that does not exist.
var ErrNotFound = errors.New("audit: not found")

// record builds and publishes the events of one call.
func (r *Recorder) record(ctx context.Context, m Method, req, resp proto.Message, before map[string]*structpb.Struct, callErr error) {
	var found []field
	if path, ok := strings.CutPrefix(m.ID, responsePrefix); ok {
		if resp != nil {
			found = find(resp, path)
		}
	} else if req != nil {
		found = find(req, m.ID)
		for i := range found {
			found[i].item = nil // the request's copy is not the resource after
		}
	}
	if len(found) == 0 {
		found = []field{{}}
	}
	e := &eventsv1.AuditEvent{
		Actor: actor(ctx), Action: m.Action, ResourceType: m.ResourceType,
		Outcome: eventsv1.AuditOutcome_AUDIT_OUTCOME_SUCCEEDED, RequestId: requestid.From(ctx),
		Time: timestamppb.New(r.now()),
	}
	if m.Reason != "" && req != nil {
		if fs := find(req, m.Reason); len(fs) > 0 {
			e.Reason = fs[0].id
		}
	}
	if callErr != nil {
		e.Outcome = eventsv1.AuditOutcome_AUDIT_OUTCOME_FAILED
		st := status.Convert(callErr)
		e.Reason = strings.TrimSpace(st.Code().String() + ": " + st.Message() + reasonSuffix(e.Reason))
	}
	msgs := make([]kafka.Message, 0, len(found))
	for _, f := range found {
		ev := proto.CloneOf(e)
		ev.Id, ev.ResourceId, ev.Before = newID(), f.id, before[f.id]
		if callErr == nil {
			ev.After = toStruct(afterOf(m, f, resp))
		}
		msg, err := kafka.EncodeEvent(ctx, Topic, kafka.Event{ID: ev.GetId(), Source: r.source, Type: EventType,
			Time: ev.GetTime().AsTime(), Key: f.id, Data: ev})
		if err != nil {
			r.failed(ctx, m, err)
			return
		}
		msgs = append(msgs, msg)
	}
	r.publish(ctx, m, msgs)
}

// publish sends the records of a call, in one batch: a call that
// provisions a thousand devices is a thousand records, which one at a
// time, each waiting for its acknowledgement, outlast the timeout under
// load. What Kafka refuses is kept for Run. While earlier records wait
// there, these join them without trying Kafka: they stay in order, and
// the call does not wait for a Kafka that is away.
func (r *Recorder) publish(ctx context.Context, m Method, msgs []kafka.Message) {
	if r.waiting() == 0 {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
		defer cancel()
		var err error
		if msgs, err = r.send(pctx, msgs); len(msgs) == 0 {
			return
		}
		logging.For(ctx, r.log).Warn("audit events refused by Kafka; kept to publish again", zap.String("action", m.Action),
			zap.Int("events", len(msgs)), zap.Error(err))
	}
	r.mu.Lock()
	kept := min(len(msgs), MaxBacklog-len(r.backlog))
	r.backlog = append(r.backlog, msgs[:kept]...)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	if lost := len(msgs) - kept; lost > 0 {
		r.events.WithLabelValues("failed").Add(float64(lost))
		logging.For(ctx, r.log).Error("audit events lost: the backlog of events Kafka refused is full", zap.String("action", m.Action),
			zap.Int("events", lost))
	}
}

// send publishes msgs and returns those Kafka refused, with the error.
func (r *Recorder) send(ctx context.Context, msgs []kafka.Message) ([]kafka.Message, error) {
	err := r.pub.PublishBatch(ctx, msgs)
	var refused []kafka.Message
	if be, ok := errors.AsType[*kafka.BatchError](err); ok {
		for i, e := range be.Errs {
			if e != nil {
				refused = append(refused, msgs[i])
			}
		}
	} else if err != nil {
		refused = msgs
	}
	r.events.WithLabelValues("published").Add(float64(len(msgs) - len(refused)))
	return refused, err
}

// waiting is how many records the backlog holds.
func (r *Recorder) waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.backlog)
}

// Run publishes the records Kafka refused again, with backoff, until ctx
// ends; then it tries once more, for publishTimeout at most, and counts
// and logs what is left as lost.
func (r *Recorder) Run(ctx context.Context) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = time.Second, 30*time.Second
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
			defer cancel()
			r.republish(last)
			r.mu.Lock()
			lost := len(r.backlog)
			r.backlog = nil
			r.mu.Unlock()
			if lost > 0 {
				r.events.WithLabelValues("failed").Add(float64(lost))
				r.log.Error("audit events lost: Kafka had not taken them when the process stopped", zap.Int("events", lost))
			}
			return nil
		case <-r.kick:
			if retry == nil {
				retry = time.After(bo.NextBackOff())
			}
		case <-retry:
			retry = nil
			r.republish(ctx)
			if r.waiting() > 0 {
				retry = time.After(bo.NextBackOff())
			} else {
				bo.Reset()
			}
		}
	}
}

// republish sends the backlog, as one batch, and keeps what Kafka refuses
// again ahead of what joined the backlog meanwhile.
func (r *Recorder) republish(ctx context.Context) {
	r.mu.Lock()
	msgs := slices.Clone(r.backlog)
	r.mu.Unlock()
	if len(msgs) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	refused, err := r.send(pctx, msgs)
	r.mu.Lock()
	r.backlog = append(refused, r.backlog[len(msgs):]...)
	r.mu.Unlock()
	if len(refused) > 0 {
		r.log.Warn("audit events still refused by Kafka; publishing again later", zap.Int("events", len(refused)), zap.Error(err))
	} else {
		r.log.Info("audit events Kafka refused are published", zap.Int("events", len(msgs)))
	}
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return " (operator's reason: " + reason + ")"
}

// failed counts and logs a record that could not be built. The action
// itself stands: it was carried out before it was recorded.
func (r *Recorder) failed(ctx context.Context, m Method, err error) {
	r.events.WithLabelValues("failed").Inc()
	logging.For(ctx, r.log).Error("audit event lost", zap.String("action", m.Action), zap.Error(err))
}

// actor is the verified caller of ctx.
func actor(ctx context.Context) *eventsv1.AuditActor {
	a := &eventsv1.AuditActor{Ip: clientIP(ctx)}
	if p, ok := auth.PrincipalFrom(ctx); ok {
		a.AccountId, a.Username, a.ClientId = p.Subject, p.Username, p.ClientID
		app := p.AppClient
		if app == "" {
			app = auth.DefaultAppClient
		}
		a.Roles = append(append(a.Roles, p.ClientRoles[app]...), p.RealmRoles...)
	}
	return a
}

// clientIP is the address the gateway saw (grpc-gateway forwards it as
// x-forwarded-for), else the peer's.
func clientIP(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-forwarded-for"); len(v) > 0 {
			first, _, _ := strings.Cut(v[0], ",")
			return strings.TrimSpace(first)
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			return host
		}
	}
	return ""
}

// afterOf is the resource after the call: the message the id was found in
// within the response, else the response's After field, else the response.
func afterOf(m Method, f field, resp proto.Message) proto.Message {
	switch {
	case f.item != nil:
		return f.item
	case resp == nil || m.After == "":
		return resp
	}
	r := resp.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(protoreflect.Name(m.After))
	if fd == nil || fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() || !r.Has(fd) {
		return nil
	}
	return r.Get(fd).Message().Interface()
}

// field is an id found at a path, with the first message on the path it
// sits in.
type field struct {
	id   string
	item proto.Message
}

// find returns the values at path in m (dot-separated field names; a
// repeated message field is walked element by element).
func find(m proto.Message, path string) []field {
	if path == "" {
		return nil
	}
	var out []field
	var walk func(msg protoreflect.Message, names []string, item proto.Message)
	walk = func(msg protoreflect.Message, names []string, item proto.Message) {
		fd := msg.Descriptor().Fields().ByName(protoreflect.Name(names[0]))
		if fd == nil || !msg.Has(fd) {
			return
		}
		v := msg.Get(fd)
		switch {
		case len(names) == 1 && fd.Kind() == protoreflect.StringKind && !fd.IsList():
			out = append(out, field{id: v.String(), item: item})
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind && len(names) > 1:
			l := v.List()
			for i := range l.Len() {
				el := l.Get(i).Message()
				it := item
				if it == nil {
					it = el.Interface()
				}
				walk(el, names[1:], it)
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() && len(names) > 1:
			it := item
			if it == nil {
				it = v.Message().Interface()
			}
			walk(v.Message(), names[1:], it)
		}
	}
	walk(m.ProtoReflect(), strings.Split(path, "."), nil)
	return out
}

// toStruct renders m as a Struct without its redacted fields; nil for an
// empty message (a deletion's answer).
func toStruct(m proto.Message) *structpb.Struct {
	if m == nil {
		return nil
	}
	c := proto.Clone(m)
	Redact(c)
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(c)
	if err != nil {
		return nil
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(b, s); err != nil || len(s.GetFields()) == 0 {
		return nil
	}
	return s
}

// Redact clears, in place, every field of m marked debug_redact (secrets,
// claim codes), at any depth.
func Redact(m proto.Message) { redact(m.ProtoReflect()) }

func redact(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if opts, ok := fd.Options().(*descriptorpb.FieldOptions); ok && opts.GetDebugRedact() {
			m.Clear(fd)
			return true
		}
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		switch {
		case fd.IsList():
			for i := range v.List().Len() {
				redact(v.List().Get(i).Message())
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					redact(mv.Message())
					return true
				})
			}
		default:
			redact(v.Message())
		}
		return true
	})
}

// newID is an event id: a UUIDv7, so ids sort by time.
func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// Call runs handler as icpt runs a gRPC call of method, for servers that
// grpc-gateway calls in-process, where no interceptor runs. A nil icpt
// just calls handler.
func Call[Req, Resp proto.Message](ctx context.Context, icpt grpc.UnaryServerInterceptor, method string, req Req,
	handler func(context.Context, Req) (Resp, error)) (Resp, error) {
	if icpt == nil {
		return handler(ctx, req)
	}
	out, err := icpt(ctx, req, &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, r any) (any, error) {
		return handler(ctx, r.(Req))
	})
	resp, _ := out.(Resp)
	return resp, err
}
