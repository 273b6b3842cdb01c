package audit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/libs/audit"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/kafka"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// sink keeps what the recorder publishes; fail makes it refuse all of a
// batch, refuse the messages with that key. tries counts the batches.
type sink struct {
	mu     sync.Mutex
	msgs   []kafka.Message
	fail   bool
	refuse string
	tries  int
}

func (s *sink) setFail(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fail
}

func (s *sink) batches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tries
}

func (s *sink) PublishBatch(_ context.Context, msgs []kafka.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tries++
	if s.fail {
		return errors.New("kafka away")
	}
	be := &kafka.BatchError{Errs: make([]error, len(msgs))}
	refused := false
	for i, m := range msgs {
		if s.refuse != "" && string(m.Key) == s.refuse {
			be.Errs[i], refused = errors.New("record refused"), true
			continue
		}
		s.msgs = append(s.msgs, m)
	}
	if refused {
		return be
	}
	return nil
}

func (s *sink) events(t *testing.T) []*eventsv1.AuditEvent {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*eventsv1.AuditEvent
	for i := range s.msgs {
		e := &eventsv1.AuditEvent{}
		ce, err := kafka.DecodeEvent(&s.msgs[i], e)
		if err != nil {
			t.Fatal(err)
		}
		if ce.Type != "comfortech.audit.v1" || ce.Source != "/services/device" || string(s.msgs[i].Key) != e.GetResourceId() || s.msgs[i].Topic != audit.Topic {
			t.Fatalf("event envelope %+v key %q topic %s", ce, s.msgs[i].Key, s.msgs[i].Topic)
		}
		out = append(out, e)
	}
	s.msgs = nil
	return out
}

const (
	provision = "/comfortech.device.v1.DeviceAdminService/BatchProvisionDevices"
	rotate    = "/comfortech.device.v1.DeviceAdminService/RotateDeviceSecret"
	revoke    = "/comfortech.device.v1.DeviceAdminService/RevokeDeviceSecret"
	presence  = "/comfortech.device.v1.DeviceAdminService/GetDevicePresence"
)

func TestInterceptor(t *testing.T) {
	s := &sink{}
	reg := prometheus.NewRegistry()
	r, err := audit.NewRecorder(s, "/services/device", zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	loaded := 0
	call := caller(r.Interceptor(audit.Methods{
		provision: {Action: "device.provision", ResourceType: "device", ID: "response.items.device_id"},
		rotate: {Action: "device.rotate_secret", ResourceType: "device", ID: "device_id",
			Before: func(_ context.Context, id string) (proto.Message, error) {
				loaded++
				return &devicev1.ProvisionedDevice{DeviceId: id, Serial: "CT-1", Secret: "old-secret"}, nil
			}},
		revoke: {Action: "device.revoke_secret", ResourceType: "device", ID: "device_id", Reason: "reason"},
	}))

	// A creation: one event per created device, the secrets left out.
	err = call(provision, &devicev1.BatchProvisionDevicesRequest{}, &devicev1.BatchProvisionDevicesResponse{Items: []*devicev1.ProvisionedDevice{
		{DeviceId: "d1", Serial: "CT-1", Secret: "s1", ClaimCode: "C1"}, {DeviceId: "d2", Serial: "CT-2", Secret: "s2", ClaimCode: "C2"},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := s.events(t)
	if len(evs) != 2 {
		t.Fatalf("batch provisioning recorded %d events, want 2", len(evs))
	}
	for i, e := range evs {
		after := e.GetAfter().AsMap()
		want := []string{"d1", "d2"}[i]
		if e.GetResourceId() != want || after["device_id"] != want || after["secret"] != nil || after["claim_code"] != nil || e.GetBefore() != nil {
			t.Errorf("event %d: %v", i, e)
		}
		a := e.GetActor()
		if e.GetAction() != "device.provision" || e.GetOutcome() != eventsv1.AuditOutcome_AUDIT_OUTCOME_SUCCEEDED ||
			a.GetAccountId() != "admin-1" || a.GetUsername() != "admin" || a.GetClientId() != "comfortech-admin" ||
			a.GetIp() != "203.0.113.7" || len(a.GetRoles()) != 1 || e.GetTime() == nil {
			t.Errorf("event %d: %v", i, e)
		}
	}

	// A change: the resource before (loaded first) and after, no secrets.
	if err := call(rotate, &devicev1.RotateDeviceSecretRequest{DeviceId: "d1"},
		&devicev1.RotateDeviceSecretResponse{DeviceId: "d1", Secret: "new-secret"}, nil); err != nil {
		t.Fatal(err)
	}
	evs = s.events(t)
	if len(evs) != 1 || loaded != 1 {
		t.Fatalf("rotation: %d events, %d loads", len(evs), loaded)
	}
	before, after := evs[0].GetBefore().AsMap(), evs[0].GetAfter().AsMap()
	if before["serial"] != "CT-1" || before["secret"] != nil || after["device_id"] != "d1" || after["secret"] != nil {
		t.Errorf("rotation before %v after %v", before, after)
	}

	// A refused call is recorded as failed, with the error and the
	// operator's reason, and fails the same.
	refusal := status.Error(codes.NotFound, "device not found")
	if err := call(revoke, &devicev1.RevokeDeviceSecretRequest{DeviceId: "d9", Reason: "stolen"}, nil, refusal); status.Code(err) != codes.NotFound {
		t.Fatalf("revoke: %v", err)
	}
	evs = s.events(t)
	if len(evs) != 1 || evs[0].GetOutcome() != eventsv1.AuditOutcome_AUDIT_OUTCOME_FAILED || evs[0].GetResourceId() != "d9" ||
		evs[0].GetReason() != "NotFound: device not found (operator's reason: stolen)" || evs[0].GetAfter() != nil {
		t.Errorf("failed revoke: %v", evs)
	}

	// A method outside the table is not recorded.
	if err := call(presence, &devicev1.GetDevicePresenceRequest{DeviceId: "d1"}, &devicev1.GetDevicePresenceResponse{}, nil); err != nil {
		t.Fatal(err)
	}
	if evs := s.events(t); len(evs) != 0 {
		t.Errorf("a read was recorded: %v", evs)
	}

	// Kafka refuses one record of a batch: the others are published, and
	// it waits in the backlog.
	s.refuse = "d4"
	err = call(provision, &devicev1.BatchProvisionDevicesRequest{}, &devicev1.BatchProvisionDevicesResponse{Items: []*devicev1.ProvisionedDevice{
		{DeviceId: "d3"}, {DeviceId: "d4"}, {DeviceId: "d5"},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if evs := s.events(t); len(evs) != 2 || evs[0].GetResourceId() != "d3" || evs[1].GetResourceId() != "d5" {
		t.Fatalf("with d4 refused, published %v", evs)
	}
	if got := metric(t, reg, "comfort_audit_backlog", ""); got != 1 {
		t.Errorf("backlog %v, want 1 (d4)", got)
	}
	if got := metric(t, reg, "comfort_audit_events_total", "published"); got != 6 {
		t.Errorf("published records counted %v, want 6", got)
	}
}

// caller calls the method through intercept as an admin, behind a proxy,
// with a handler that answers resp and err.
func caller(intercept grpc.UnaryServerInterceptor) func(method string, req, resp proto.Message, err error) error {
	ctx := auth.WithPrincipal(context.Background(), &auth.Principal{Subject: "admin-1", Username: "admin", ClientID: "comfortech-admin",
		ClientRoles: map[string][]string{auth.DefaultAppClient: {"admin"}}})
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("x-forwarded-for", "203.0.113.7, 10.0.0.1"))
	return func(method string, req, resp proto.Message, err error) error {
		_, got := intercept(ctx, req, &grpc.UnaryServerInfo{FullMethod: method}, func(context.Context, any) (any, error) { return resp, err })
		return got
	}
}

// TestBacklog: while Kafka is away the actions stand and their records
// wait, in order, for Run to publish them; what does not fit in the
// backlog, or is still waiting when Run stops, is counted as lost.
func TestBacklog(t *testing.T) {
	s := &sink{fail: true}
	reg := prometheus.NewRegistry()
	r, err := audit.NewRecorder(s, "/services/device", zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	call := caller(r.Interceptor(audit.Methods{
		provision: {Action: "device.provision", ResourceType: "device", ID: "response.items.device_id"},
		revoke:    {Action: "device.revoke_secret", ResourceType: "device", ID: "device_id"},
	}))
	revokeDevice := func(id string) {
		t.Helper()
		if err := call(revoke, &devicev1.RevokeDeviceSecretRequest{DeviceId: id}, &devicev1.RevokeDeviceSecretResponse{}, nil); err != nil {
			t.Fatalf("revoke %s with Kafka away: %v", id, err)
		}
	}

	revokeDevice("d1")
	if s.batches() != 1 || metric(t, reg, "comfort_audit_backlog", "") != 1 {
		t.Fatalf("after a refusal: %d batches tried, backlog %v; want 1 and 1", s.batches(), metric(t, reg, "comfort_audit_backlog", ""))
	}
	// Behind a waiting record, the next joins it without trying Kafka.
	revokeDevice("d2")
	if s.batches() != 1 || metric(t, reg, "comfort_audit_backlog", "") != 2 {
		t.Fatalf("behind the backlog: %d batches tried, backlog %v; want 1 and 2", s.batches(), metric(t, reg, "comfort_audit_backlog", ""))
	}

	// Kafka is back: Run publishes both, in order.
	s.setFail(false)
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, reg, "comfort_audit_backlog", "") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the backlog was not published once Kafka took records again")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if evs := s.events(t); len(evs) != 2 || evs[0].GetResourceId() != "d1" || evs[1].GetResourceId() != "d2" {
		t.Fatalf("published from the backlog: %v", evs)
	}
	if got := metric(t, reg, "comfort_audit_events_total", "published"); got != 2 {
		t.Errorf("published %v, want 2", got)
	}

	// Away again: a call with more records than the backlog holds keeps
	// what fits and loses the rest.
	s.setFail(true)
	items := make([]*devicev1.ProvisionedDevice, audit.MaxBacklog+3)
	for i := range items {
		items[i] = &devicev1.ProvisionedDevice{DeviceId: fmt.Sprintf("p%d", i)}
	}
	if err := call(provision, &devicev1.BatchProvisionDevicesRequest{}, &devicev1.BatchProvisionDevicesResponse{Items: items}, nil); err != nil {
		t.Fatal(err)
	}
	if got := metric(t, reg, "comfort_audit_backlog", ""); got != audit.MaxBacklog {
		t.Errorf("backlog %v, want it full (%d)", got, audit.MaxBacklog)
	}
	if got := metric(t, reg, "comfort_audit_events_total", "failed"); got != 3 {
		t.Errorf("lost %v, want the 3 that did not fit", got)
	}

	// Stopping with Kafka still away loses what waits, counted.
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := metric(t, reg, "comfort_audit_events_total", "failed"); got != audit.MaxBacklog+3 {
		t.Errorf("lost %v after stopping, want %d", got, audit.MaxBacklog+3)
	}
	if got := metric(t, reg, "comfort_audit_backlog", ""); got != 0 {
		t.Errorf("backlog %v after stopping", got)
	}
}

// metric reads the counter name{result} (the gauge name, for result "")
// from reg.
func metric(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case mf.GetName() != name:
			case result == "":
				return m.GetGauge().GetValue()
			case m.GetLabel()[0].GetValue() == result:
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{result=%q}", name, result)
	return 0
}

// TestCheck: a table naming a field that does not exist is refused.
func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name string
		ms   audit.Methods
		ok   bool
	}{
		{"good", audit.Methods{provision: {ID: "response.items.device_id"}, revoke: {ID: "device_id", Reason: "reason"}}, true},
		{"unknown method", audit.Methods{"/comfortech.device.v1.DeviceAdminService/Nope": {}}, false},
		{"not a method name", audit.Methods{"DeviceAdminService": {}}, false},
		{"request field missing", audit.Methods{revoke: {ID: "device.device_id"}}, false},
		{"response field missing", audit.Methods{provision: {ID: "response.devices.device_id"}}, false},
		{"reason missing", audit.Methods{revoke: {ID: "device_id", Reason: "why"}}, false},
		{"after missing", audit.Methods{rotate: {ID: "device_id", After: "device"}}, false},
		{"through a scalar", audit.Methods{revoke: {ID: "device_id.x"}}, false},
	} {
		if err := c.ms.Check(); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestValidateOnly: a request that only validates changes nothing and is
// not recorded.
func TestValidateOnly(t *testing.T) {
	s := &sink{}
	r, err := audit.NewRecorder(s, "/services/data", zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const put = "/comfortech.data.v1.DeviceModelService/PutDeviceModel"
	intercept := r.Interceptor(audit.Methods{put: {Action: "device_model.put", ResourceType: "device_model", ID: "model.id", After: "model"}})
	for _, validate := range []bool{true, false} {
		req := &datav1.PutDeviceModelRequest{Model: &datav1.DeviceModel{Id: "m1", Title: "M"}, ValidateOnly: validate}
		if _, err := intercept(context.Background(), req, &grpc.UnaryServerInfo{FullMethod: put}, func(context.Context, any) (any, error) {
			return &datav1.PutDeviceModelResponse{Model: req.GetModel(), Created: true, Changed: true}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.msgs) != 1 {
		t.Fatalf("%d records for a validating and a real put, want 1", len(s.msgs))
	}
}
