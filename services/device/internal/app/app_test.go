package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/comfortech/platform/services/device/internal/app"
	"github.com/comfortech/platform/services/device/internal/secret"
	"github.com/comfortech/platform/services/device/internal/store/sqlstore"
	"github.com/comfortech/platform/services/device/internal/store/storetest"
)

// registry stands in for the data service's registry (tested in the data
// service itself): it keeps the registered devices and can be told to
// refuse a serial.
type registry struct {
	mu      sync.Mutex
	devices map[string]app.NewDevice
	taken   string
	down    bool
}

func (r *registry) RegisterDevice(_ context.Context, d app.NewDevice) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.down:
		return app.ErrUnavailable
	case d.Serial == r.taken:
		return app.ErrConflict
	}
	r.devices[d.ID] = d
	return nil
}

func (r *registry) UnregisterDevice(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.devices, id)
	return nil
}

func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.devices)
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	app   *app.App
	reg   *registry
	clock *clock
}

func newEnv(t *testing.T, cacheTTL time.Duration) *env {
	t.Helper()
	e := &env{reg: &registry{devices: map[string]app.NewDevice{}}, clock: &clock{t: time.Now()}}
	e.app = app.New(sqlstore.New(storetest.OpenSQLite(t)), e.reg, app.Config{
		CacheTTL: cacheTTL, Clock: e.clock.now})
	return e
}

func (e *env) allowed(t *testing.T, id, secret string) bool {
	t.Helper()
	v, err := e.app.Authenticate(context.Background(), id, id, secret)
	if err != nil {
		t.Fatal(err)
	}
	return v.Allowed
}

func TestProvisionAndAuthenticate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -1)
	ctx := context.Background()
	p, err := e.app.Provision(ctx, app.ProvisionRequest{Serial: "SN-0001", Model: "ac-1", FirmwareVersion: "1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Secret == "" || p.ClaimCode == "" || p.DeviceID == "" {
		t.Fatalf("provisioned %+v", p)
	}
	if got := e.reg.devices[p.DeviceID]; got.ClaimCode != p.ClaimCode || got.Serial != "SN-0001" {
		t.Errorf("registered %+v", got)
	}
	cases := []struct {
		name                 string
		client, user, secret string
		want                 bool
	}{
		{"right secret", p.DeviceID, p.DeviceID, p.Secret, true},
		{"wrong secret", p.DeviceID, p.DeviceID, secret.New(), false},
		{"empty secret", p.DeviceID, p.DeviceID, "", false},
		{"username differs", p.DeviceID, "someone", p.Secret, false},
		{"client id not a uuid", "dev", "dev", p.Secret, false},
		{"unknown device", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", p.Secret, false},
	}
	for _, c := range cases {
		v, err := e.app.Authenticate(ctx, c.client, c.user, c.secret)
		if err != nil || v.Allowed != c.want {
			t.Errorf("%s: %+v, %v; want allowed=%v", c.name, v, err, c.want)
		}
		if !v.Allowed && v.Reason == "" {
			t.Errorf("%s: refusal without a reason", c.name)
		}
	}
	if _, err := e.app.Provision(ctx, app.ProvisionRequest{Serial: "SN-0001", Model: "ac-1"}); !errors.Is(err, app.ErrConflict) {
		t.Errorf("same serial again: %v, want ErrConflict", err)
	}
	p2, err := e.app.Provision(ctx, app.ProvisionRequest{Serial: "SN-0002", Model: "ac-1", ClaimCode: "PRINTED-1"})
	if err != nil || p2.ClaimCode != "PRINTED-1" {
		t.Errorf("given claim code: %+v, %v", p2, err)
	}
}

func TestProvisionInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -1)
	cases := []struct {
		name  string
		reqs  []app.ProvisionRequest
		field string
	}{
		{"bad serial", []app.ProvisionRequest{{Serial: "x", Model: "m"}}, "requests[0].serial"},
		{"bad model", []app.ProvisionRequest{{Serial: "SN-0001", Model: "M!"}}, "requests[0].model"},
		{"bad claim code", []app.ProvisionRequest{{Serial: "SN-0001", Model: "m", ClaimCode: "a b"}}, "requests[0].claim_code"},
		{"repeated serial", []app.ProvisionRequest{{Serial: "SN-0001", Model: "m"}, {Serial: "SN-0001", Model: "m"}}, "requests[1].serial"},
		{"empty", nil, "requests"},
	}
	for _, c := range cases {
		_, err := e.app.BatchProvision(context.Background(), c.reqs)
		ae, ok := errors.AsType[*app.Error](err)
		if !ok || !errors.Is(err, app.ErrInvalid) || ae.Field != c.field {
			t.Errorf("%s: %v, want ErrInvalid on %s", c.name, err, c.field)
		}
	}
}

func TestBatchProvisionAllOrNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -1)
	ctx := context.Background()
	reqs := make([]app.ProvisionRequest, 50)
	for i := range reqs {
		reqs[i] = app.ProvisionRequest{Serial: fmt.Sprintf("SN-%04d", i), Model: "ac-1"}
	}
	ps, err := e.app.BatchProvision(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		if p.Serial != reqs[i].Serial || !e.allowed(t, p.DeviceID, p.Secret) {
			t.Fatalf("item %d: %+v", i, p)
		}
	}

	// A serial provisioned already fails the batch and names it.
	_, err = e.app.BatchProvision(ctx, []app.ProvisionRequest{{Serial: "SN-9000", Model: "ac-1"}, {Serial: "SN-0003", Model: "ac-1"}})
	if ae, ok := errors.AsType[*app.Error](err); !ok || !errors.Is(err, app.ErrConflict) || ae.Field != "requests[1].serial" {
		t.Errorf("duplicate: %v", err)
	}
	// The registry refusing one undoes the others.
	e.reg.taken = "SN-9002"
	_, err = e.app.BatchProvision(ctx, []app.ProvisionRequest{{Serial: "SN-9001", Model: "ac-1"}, {Serial: "SN-9002", Model: "ac-1"}})
	if ae, ok := errors.AsType[*app.Error](err); !ok || !errors.Is(err, app.ErrConflict) || ae.Field != "requests[1].serial" {
		t.Errorf("registry conflict: %v", err)
	}
	if n := e.reg.count(); n != 50 {
		t.Errorf("registry holds %d devices after failed batches, want 50", n)
	}
	e.reg.taken, e.reg.down = "", true
	if _, err := e.app.Provision(ctx, app.ProvisionRequest{Serial: "SN-9001", Model: "ac-1"}); !errors.Is(err, app.ErrUnavailable) {
		t.Errorf("registry down: %v, want ErrUnavailable", err)
	}
	e.reg.down = false
	if _, err := e.app.Provision(ctx, app.ProvisionRequest{Serial: "SN-9001", Model: "ac-1"}); err != nil {
		t.Errorf("serial of an undone batch: %v", err)
	}
}

func TestRotateRevokeDecommission(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Minute) // with the cache: changes must still take effect at once
	ctx := context.Background()
	p, err := e.app.Provision(ctx, app.ProvisionRequest{Serial: "SN-0001", Model: "ac-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !e.allowed(t, p.DeviceID, p.Secret) {
		t.Fatal("fresh secret refused")
	}

	r1, err := e.app.RotateSecret(ctx, p.DeviceID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if e.allowed(t, p.DeviceID, p.Secret) || !e.allowed(t, p.DeviceID, r1.Secret) {
		t.Error("rotate without grace: old secret must stop, new must work")
	}

	r2, err := e.app.RotateSecret(ctx, p.DeviceID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.OldExpiresAt.Equal(e.clock.now().UTC().Add(time.Hour)) {
		t.Errorf("old secret expires %v", r2.OldExpiresAt)
	}
	if !e.allowed(t, p.DeviceID, r1.Secret) || !e.allowed(t, p.DeviceID, r2.Secret) {
		t.Error("during the grace period both secrets must work")
	}
	e.clock.add(time.Hour)
	if e.allowed(t, p.DeviceID, r1.Secret) || !e.allowed(t, p.DeviceID, r2.Secret) {
		t.Error("after the grace period only the new secret may work")
	}

	if err := e.app.RevokeSecret(ctx, p.DeviceID); err != nil {
		t.Fatal(err)
	}
	if e.allowed(t, p.DeviceID, r2.Secret) {
		t.Error("revoked secret accepted")
	}
	if e.reg.count() != 1 {
		t.Error("revoke must keep the device registered")
	}
	r3, err := e.app.RotateSecret(ctx, p.DeviceID, time.Hour)
	if err != nil || !e.allowed(t, p.DeviceID, r3.Secret) || e.allowed(t, p.DeviceID, r2.Secret) {
		t.Errorf("rotate after revoke: %v", err)
	}

	if err := e.app.Decommission(ctx, p.DeviceID); err != nil {
		t.Fatal(err)
	}
	if e.allowed(t, p.DeviceID, r3.Secret) || e.reg.count() != 0 {
		t.Error("decommissioned device still accepted or registered")
	}
	for name, err := range map[string]error{
		"rotate":       second(e.app.RotateSecret(ctx, p.DeviceID, 0)),
		"revoke":       e.app.RevokeSecret(ctx, p.DeviceID),
		"decommission": e.app.Decommission(ctx, p.DeviceID),
	} {
		if !errors.Is(err, app.ErrNotFound) {
			t.Errorf("%s after decommission: %v, want ErrNotFound", name, err)
		}
	}
	if _, err := e.app.RotateSecret(ctx, "nope", 0); !errors.Is(err, app.ErrInvalid) {
		t.Errorf("bad id: %v", err)
	}
	if _, err := e.app.RotateSecret(ctx, p.DeviceID, 8*24*time.Hour); !errors.Is(err, app.ErrInvalid) {
		t.Errorf("long grace: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestAuthorizeTopic(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -1)
	const id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	if v := e.app.AuthorizeTopic(id, "devices/"+id+"/telemetry", true); !v.Allowed || v.CacheTTL <= 0 {
		t.Errorf("own telemetry: %+v", v)
	}
	if v := e.app.AuthorizeTopic(id, "devices/other/telemetry", true); v.Allowed {
		t.Errorf("other's telemetry: %+v", v)
	}
}
