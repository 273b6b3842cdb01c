package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/comfortech/platform/libs/sqldb"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
	"github.com/comfortech/platform/services/data/internal/store/sqlstore"
	"github.com/comfortech/platform/services/data/internal/store/storetest"
)

// hooks records the device hooks' calls and fails the first failures of them.
type hooks struct {
	mu        sync.Mutex
	claimed   map[string][]*datav1.AlertRuleTemplate
	unclaimed []string
	calls     atomic.Int32
	failures  atomic.Int32
}

func (h *hooks) DeviceClaimed(_ context.Context, deviceID, _ string, defaults []*datav1.AlertRuleTemplate) error {
	h.calls.Add(1)
	if h.failures.Add(-1) >= 0 {
		return errors.New("telemetry down")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.claimed[deviceID] = defaults
	return nil
}

func (h *hooks) DeviceUnclaimed(_ context.Context, deviceID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unclaimed = append(h.unclaimed, deviceID)
	return nil
}

// env is an App over a fresh SQLite database.
type env struct {
	a     *app.App
	db    *sqldb.DB
	hooks *hooks
	n     atomic.Int32
}

func newEnv(t *testing.T, limit app.Limit) *env {
	t.Helper()
	db := storetest.OpenSQLite(t)
	h := &hooks{claimed: map[string][]*datav1.AlertRuleTemplate{}}
	a, err := app.New(sqlstore.New(db), app.Config{Hooks: h, ClaimLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	return &env{a: a, db: db, hooks: h}
}

var ctx = context.Background()

func (e *env) account(t *testing.T) string {
	t.Helper()
	id := uuid.NewString()
	if _, _, err := e.a.CreateAccount(ctx, app.NewAccount{ID: id, Phone: e.phone(), Name: "User"}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) phone() string { return fmt.Sprintf("+7951%07d", e.n.Add(1)) }

// device registers a device and returns its id, serial and claim code.
func (e *env) device(t *testing.T) (id, serial, code string) {
	t.Helper()
	n := e.n.Add(1)
	id, serial, code = uuid.NewString(), fmt.Sprintf("SN-%06d", n), fmt.Sprintf("CODE-%06d", n)
	if _, err := e.a.RegisterDevice(ctx, app.NewDevice{ID: id, Serial: serial, Model: "thermo-x1", ClaimCode: code}); err != nil {
		t.Fatal(err)
	}
	return id, serial, code
}

func (e *env) claimed(t *testing.T, owner string) string {
	t.Helper()
	id, serial, code := e.device(t)
	if _, err := e.a.ClaimDevice(ctx, owner, app.Claim{Serial: serial, Code: code}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) share(t *testing.T, owner, deviceID, member string) {
	t.Helper()
	acc, err := e.a.GetAccount(ctx, member)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.CreateShare(ctx, owner, deviceID, acc.Phone); err != nil {
		t.Fatal(err)
	}
}

// events returns the ce_type of every event in the outbox, oldest first.
func (e *env) events(t *testing.T) []string {
	t.Helper()
	rows, err := e.db.Query(`SELECT headers FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var types []string
	for rows.Next() {
		var raw string
		var hs []struct{ Key, Value string }
		if err := rows.Scan(&raw); err != nil || json.Unmarshal([]byte(raw), &hs) != nil {
			t.Fatalf("outbox headers %q: %v", raw, err)
		}
		for _, h := range hs {
			if h.Key == "ce_type" {
				types = append(types, h.Value)
			}
		}
	}
	return types
}

func count(types []string, typ string) int {
	n := 0
	for _, t := range types {
		if t == typ {
			n++
		}
	}
	return n
}

func wantErr(t *testing.T, name string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", name, err, want)
	}
}

func ptr[T any](v T) *T { return &v }

// TestIsolation: every operation on another account's home, room, device,
// state or share is ErrNotFound, as if it did not exist.
func TestIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, app.Limit{})
	owner, stranger := e.account(t), e.account(t)
	home, err := e.a.CreateHome(ctx, owner, "Home", "")
	if err != nil {
		t.Fatal(err)
	}
	room, err := e.a.CreateRoom(ctx, owner, home.ID, "Kitchen")
	if err != nil {
		t.Fatal(err)
	}
	dev := e.claimed(t, owner)
	member := e.account(t)
	e.share(t, owner, dev, member)
	strangerHome, err := e.a.CreateHome(ctx, stranger, "Other", "")
	if err != nil {
		t.Fatal(err)
	}
	_, serial, code := e.device(t)
	page := app.PageRequest{}

	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"GetDevice", func() error { _, err := e.a.GetDevice(ctx, stranger, dev); return err }},
		{"UpdateDevice", func() error {
			_, err := e.a.UpdateDevice(ctx, stranger, dev, app.DevicePatch{Name: ptr("x")})
			return err
		}},
		{"UnclaimDevice", func() error { return e.a.UnclaimDevice(ctx, stranger, dev) }},
		{"GetState", func() error { _, err := e.a.GetState(ctx, stranger, dev); return err }},
		{"UpdateDesired", func() error {
			_, err := e.a.UpdateDesired(ctx, stranger, dev, map[string]any{"mode": "off"}, nil)
			return err
		}},
		{"CreateShare", func() error { _, err := e.a.CreateShare(ctx, stranger, dev, "+79510000001"); return err }},
		{"ListShares", func() error { _, _, err := e.a.ListShares(ctx, stranger, dev, page); return err }},
		{"DeleteShare", func() error { return e.a.DeleteShare(ctx, stranger, dev, member) }},
		{"DeviceAccess", func() error { _, err := e.a.DeviceAccess(ctx, stranger, dev); return err }},
		{"GetHome", func() error { _, err := e.a.GetHome(ctx, stranger, home.ID); return err }},
		{"UpdateHome", func() error {
			_, err := e.a.UpdateHome(ctx, stranger, home.ID, app.HomePatch{Name: ptr("x")})
			return err
		}},
		{"DeleteHome", func() error { return e.a.DeleteHome(ctx, stranger, home.ID, "") }},
		{"DeleteHome moving into it", func() error {
			if _, err := e.a.UpdateDevice(ctx, owner, dev, app.DevicePatch{HomeID: ptr(home.ID)}); err != nil {
				return err
			}
			return e.a.DeleteHome(ctx, owner, home.ID, strangerHome.ID)
		}},
		{"CreateRoom", func() error { _, err := e.a.CreateRoom(ctx, stranger, home.ID, "Hall"); return err }},
		{"ListRooms", func() error { _, _, err := e.a.ListRooms(ctx, stranger, home.ID, page); return err }},
		{"UpdateRoom", func() error { _, err := e.a.UpdateRoom(ctx, stranger, home.ID, room.ID, ptr("x")); return err }},
		{"DeleteRoom", func() error { return e.a.DeleteRoom(ctx, stranger, home.ID, room.ID) }},
		{"UpdateDevice into their home", func() error {
			_, err := e.a.UpdateDevice(ctx, owner, dev, app.DevicePatch{HomeID: ptr(strangerHome.ID)})
			return err
		}},
		{"ClaimDevice into their home", func() error {
			_, err := e.a.ClaimDevice(ctx, owner, app.Claim{Serial: serial, Code: code, HomeID: strangerHome.ID})
			return err
		}},
		{"unknown device", func() error { _, err := e.a.GetDevice(ctx, owner, uuid.NewString()); return err }},
	} {
		wantErr(t, tc.name, tc.call(), app.ErrNotFound)
	}
	if list, _, err := e.a.ListDevices(ctx, stranger, app.DeviceFilter{}, page); err != nil || len(list) != 0 {
		t.Errorf("stranger lists %d devices, %v", len(list), err)
	}
	if list, _, err := e.a.ListHomes(ctx, stranger, page); err != nil || len(list) != 1 {
		t.Errorf("stranger lists %d homes, %v", len(list), err)
	}
	// Nothing changed for the owner.
	if d, err := e.a.GetDevice(ctx, owner, dev); err != nil || d.OwnerID != owner || d.Role != app.AccessOwner {
		t.Errorf("owner's device after the attempts: %+v, %v", d, err)
	}
	if role, model, err := e.a.CheckDeviceAccess(ctx, stranger, dev); err != nil || role != app.AccessNone || model != "thermo-x1" {
		t.Errorf("CheckDeviceAccess(stranger) = %v %q %v", role, model, err)
	}
}

// TestMemberPermissions: members read and command, only the owner shares,
// renames, moves and unclaims.
func TestMemberPermissions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, app.Limit{})
	owner, member, other := e.account(t), e.account(t), e.account(t)
	home, _ := e.a.CreateHome(ctx, owner, "Home", "")
	dev := e.claimed(t, owner)
	if _, err := e.a.UpdateDevice(ctx, owner, dev, app.DevicePatch{HomeID: ptr(home.ID)}); err != nil {
		t.Fatal(err)
	}
	e.share(t, owner, dev, member)
	e.share(t, owner, dev, other)
	otherAcc, _ := e.a.GetAccount(ctx, other)

	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"UpdateDevice", func() error {
			_, err := e.a.UpdateDevice(ctx, member, dev, app.DevicePatch{Name: ptr("x")})
			return err
		}},
		{"UnclaimDevice", func() error { return e.a.UnclaimDevice(ctx, member, dev) }},
		{"CreateShare", func() error { _, err := e.a.CreateShare(ctx, member, dev, otherAcc.Phone); return err }},
		{"DeleteShare of another member", func() error { return e.a.DeleteShare(ctx, member, dev, other) }},
	} {
		wantErr(t, tc.name, tc.call(), app.ErrForbidden)
	}

	v, err := e.a.GetDevice(ctx, member, dev)
	if err != nil || v.Role != app.AccessMember || v.HomeID != "" {
		t.Errorf("member's view: %+v, %v (want member role, no home)", v, err)
	}
	if role, err := e.a.DeviceAccess(ctx, member, dev); err != nil || role != app.AccessMember {
		t.Errorf("DeviceAccess(member) = %v, %v", role, err)
	}
	if _, err := e.a.UpdateDesired(ctx, member, dev, map[string]any{"mode": "heat"}, nil); err != nil {
		t.Errorf("member commands: %v", err)
	}
	if shares, _, err := e.a.ListShares(ctx, member, dev, app.PageRequest{}); err != nil || len(shares) != 2 {
		t.Errorf("member lists %d shares, %v", len(shares), err)
	}
	if list, _, _ := e.a.ListDevices(ctx, member, app.DeviceFilter{}, app.PageRequest{}); len(list) != 1 || list[0].Role != app.AccessMember {
		t.Errorf("member's list: %+v", list)
	}
	if list, _, _ := e.a.ListDevices(ctx, member, app.DeviceFilter{HomeID: home.ID}, app.PageRequest{}); len(list) != 0 {
		t.Errorf("member filtered by the owner's home sees %d devices", len(list))
	}
	// A member may leave; then the device is gone for them.
	if err := e.a.DeleteShare(ctx, member, dev, member); err != nil {
		t.Fatalf("member leaves: %v", err)
	}
	_, err = e.a.GetDevice(ctx, member, dev)
	wantErr(t, "device after leaving", err, app.ErrNotFound)
	// Sharing rules for the owner.
	ownerAcc, _ := e.a.GetAccount(ctx, owner)
	_, err = e.a.CreateShare(ctx, owner, dev, ownerAcc.Phone)
	wantErr(t, "share with oneself", err, app.ErrInvalid)
	_, err = e.a.CreateShare(ctx, owner, dev, otherAcc.Phone)
	wantErr(t, "share twice", err, app.ErrConflict)
	_, err = e.a.CreateShare(ctx, owner, dev, "+19999999999")
	wantErr(t, "share with an unknown phone", err, app.ErrNotFound)
	if err := e.a.DeleteShare(ctx, owner, dev, other); err != nil {
		t.Errorf("owner removes a member: %v", err)
	}
	wantErr(t, "remove a removed member", e.a.DeleteShare(ctx, owner, dev, other), app.ErrNotFound)
	types := e.events(t)
	if count(types, app.TypeDeviceShared) != 2 || count(types, app.TypeDeviceUnshared) != 2 {
		t.Errorf("share events: %v", types)
	}
}

// TestClaim covers the claim rules: the wrong pair is not found, a claimed
// device already exists, attempts are limited, the hooks hear of it.
func TestClaim(t *testing.T) {
	t.Parallel()
	e := newEnv(t, app.Limit{Attempts: 4, Per: time.Hour})
	alice, bob := e.account(t), e.account(t)
	rule := &datav1.AlertRuleTemplate{Name: "Too cold", Condition: &datav1.AlertCondition{Metric: "temperature"}}
	if _, _, _, err := e.a.PutModel(ctx, app.DeviceModel{ID: "thermo-x1", Title: "Thermostat",
		DefaultAlertRules: []*datav1.AlertRuleTemplate{rule}}, false); err != nil {
		t.Fatal(err)
	}
	id, serial, code := e.device(t)
	_, otherSerial, _ := e.device(t)

	_, err := e.a.ClaimDevice(ctx, alice, app.Claim{Serial: serial, Code: "WRONG-CODE"})
	wantErr(t, "wrong code", err, app.ErrNotFound)
	_, err = e.a.ClaimDevice(ctx, alice, app.Claim{Serial: otherSerial, Code: code})
	wantErr(t, "another device's code", err, app.ErrNotFound)
	_, err = e.a.ClaimDevice(ctx, alice, app.Claim{Serial: "SN-UNKNOWN", Code: code})
	wantErr(t, "unknown serial", err, app.ErrNotFound)

	e.hooks.failures.Store(2)                                                                  // the hook fails twice, then succeeds on the retry
	v, err := e.a.ClaimDevice(ctx, alice, app.Claim{Serial: serial, Code: "code-" + code[5:]}) // case-insensitive
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if v.OwnerID != alice || v.Role != app.AccessOwner || v.Name != "Thermostat" || v.ClaimedAt.IsZero() {
		t.Errorf("claimed device %+v", v)
	}
	if got := e.hooks.claimed[id]; len(got) != 1 || got[0].GetName() != "Too cold" || e.hooks.calls.Load() != 3 {
		t.Errorf("hook got %v after %d calls", got, e.hooks.calls.Load())
	}
	_, err = e.a.ClaimDevice(ctx, bob, app.Claim{Serial: serial, Code: code})
	wantErr(t, "claimed by another", err, app.ErrConflict)

	// Alice spent her 4 attempts; Bob has 3 left.
	_, err = e.a.ClaimDevice(ctx, alice, app.Claim{Serial: serial, Code: code})
	var ae *app.Error
	if !errors.Is(err, app.ErrRateLimited) || !errors.As(err, &ae) || ae.RetryAfter <= 0 {
		t.Errorf("fifth attempt: %v, want ErrRateLimited with a retry delay", err)
	}
	_, err = e.a.ClaimDevice(ctx, bob, app.Claim{Serial: otherSerial, Code: "nope-nope"})
	wantErr(t, "bob's own budget", err, app.ErrNotFound)

	// Unclaim: the hooks hear of it, the device is free again.
	wantErr(t, "bob unclaims", e.a.UnclaimDevice(ctx, bob, id), app.ErrNotFound)
	if err := e.a.UnclaimDevice(ctx, alice, id); err != nil {
		t.Fatal(err)
	}
	if len(e.hooks.unclaimed) != 1 || e.hooks.unclaimed[0] != id {
		t.Errorf("unclaim hook calls %v", e.hooks.unclaimed)
	}
	if _, err := e.a.ClaimDevice(ctx, bob, app.Claim{Serial: serial, Code: code}); err != nil {
		t.Errorf("claim after unclaim: %v", err)
	}
	types := e.events(t)
	if count(types, app.TypeDeviceClaimed) != 2 || count(types, app.TypeDeviceUnclaimed) != 1 {
		t.Errorf("claim events %v", types)
	}
}

// TestDeviceState: merge-patch semantics, versions, optimistic
// concurrency, per-field times and the delta.
func TestDeviceState(t *testing.T) {
	t.Parallel()
	e := newEnv(t, app.Limit{})
	owner := e.account(t)
	dev := e.claimed(t, owner)

	st, err := e.a.UpdateDesired(ctx, owner, dev, map[string]any{"mode": "heat", "target": 21.5,
		"schedule": map[string]any{"mon": "7:00", "tue": "8:00"}}, ptr(int64(0)))
	if err != nil || st.Desired.Version != 1 || len(st.Desired.FieldTimes) != 3 {
		t.Fatalf("first update: %+v, %v", st, err)
	}
	_, err = e.a.UpdateDesired(ctx, owner, dev, map[string]any{"mode": "cool"}, ptr(int64(0)))
	wantErr(t, "stale expected_version", err, app.ErrVersionConflict)
	st, err = e.a.UpdateDesired(ctx, owner, dev, map[string]any{"target": nil, "schedule": map[string]any{"tue": nil, "wed": "9:00"}}, ptr(int64(1)))
	if err != nil || st.Desired.Version != 2 {
		t.Fatalf("second update: %+v, %v", st, err)
	}
	if _, ok := st.Desired.Values["target"]; ok {
		t.Error("null did not remove target")
	}
	if _, ok := st.Desired.FieldTimes["target"]; ok {
		t.Error("removed key kept its time")
	}
	if fmt.Sprint(st.Desired.Values["schedule"]) != "map[mon:7:00 wed:9:00]" {
		t.Errorf("nested merge: %v", st.Desired.Values["schedule"])
	}
	// The same patch again changes nothing: no new version, no event.
	before := count(e.events(t), app.TypeDesiredStateChanged)
	if st, _ := e.a.UpdateDesired(ctx, owner, dev, map[string]any{"mode": "heat"}, nil); st.Desired.Version != 2 {
		t.Errorf("no-op update bumped the version to %d", st.Desired.Version)
	}
	if after := count(e.events(t), app.TypeDesiredStateChanged); after != before {
		t.Errorf("no-op update emitted an event")
	}

	at := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	st, err = e.a.ReportState(ctx, dev, map[string]any{"mode": "heat", "temperature": 19.0}, at)
	if err != nil || st.Reported.Version != 1 || !st.Reported.FieldTimes["mode"].Equal(at) {
		t.Fatalf("report: %+v, %v", st, err)
	}
	if delta := st.Delta(); len(delta) != 1 || delta["schedule"] == nil {
		t.Errorf("delta %v, want only schedule", delta)
	}
	_, err = e.a.ReportState(ctx, uuid.NewString(), map[string]any{"a": 1.0}, at)
	wantErr(t, "report for an unknown device", err, app.ErrNotFound)
	if got, err := e.a.DesiredState(ctx, dev); err != nil || got.Desired.Version != 2 || got.Reported.Version != 1 {
		t.Errorf("DesiredState %+v, %v", got, err)
	}
	big := map[string]any{"blob": string(make([]byte, 70<<10))}
	_, err = e.a.UpdateDesired(ctx, owner, dev, big, nil)
	wantErr(t, "oversized document", err, app.ErrInvalid)
	types := e.events(t)
	if count(types, app.TypeDesiredStateChanged) != 2 || count(types, app.TypeDeviceStateReported) != 1 {
		t.Errorf("state events %v", types)
	}

	// Unclaiming clears the desired document with a new version.
	if err := e.a.UnclaimDevice(ctx, owner, dev); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.a.DesiredState(ctx, dev); len(got.Desired.Values) != 0 || got.Desired.Version != 3 || got.Reported.Version != 1 {
		t.Errorf("state after unclaim %+v", got)
	}
}

// TestDeleteHome: a home with devices needs a target home of the caller.
func TestDeleteHome(t *testing.T) {
	t.Parallel()
	e := newEnv(t, app.Limit{})
	owner, stranger := e.account(t), e.account(t)
	h1, _ := e.a.CreateHome(ctx, owner, "One", "")
	h2, _ := e.a.CreateHome(ctx, owner, "Two", "")
	foreign, _ := e.a.CreateHome(ctx, stranger, "Theirs", "")
	room, _ := e.a.CreateRoom(ctx, owner, h1.ID, "Kitchen")
	_, err := e.a.CreateRoom(ctx, owner, h1.ID, "Kitchen")
	wantErr(t, "duplicate room", err, app.ErrConflict)
	dev := e.claimed(t, owner)
	if _, err := e.a.UpdateDevice(ctx, owner, dev, app.DevicePatch{HomeID: &h1.ID, RoomID: &room.ID}); err != nil {
		t.Fatal(err)
	}
	_, err = e.a.UpdateDevice(ctx, owner, dev, app.DevicePatch{HomeID: ptr(""), RoomID: &room.ID})
	wantErr(t, "room without a home", err, app.ErrInvalid)

	wantErr(t, "no target", e.a.DeleteHome(ctx, owner, h1.ID, ""), app.ErrPrecondition)
	wantErr(t, "itself as target", e.a.DeleteHome(ctx, owner, h1.ID, h1.ID), app.ErrInvalid)
	wantErr(t, "foreign target", e.a.DeleteHome(ctx, owner, h1.ID, foreign.ID), app.ErrNotFound)
	if err := e.a.DeleteHome(ctx, owner, h1.ID, h2.ID); err != nil {
		t.Fatal(err)
	}
	d, _ := e.a.GetDevice(ctx, owner, dev)
	if d.HomeID != h2.ID || d.RoomID != "" {
		t.Errorf("moved device: home %q room %q", d.HomeID, d.RoomID)
	}
	if h, _ := e.a.GetHome(ctx, owner, h2.ID); h.DeviceCount != 1 {
		t.Errorf("target home counts %d devices", h.DeviceCount)
	}
	_, err = e.a.GetHome(ctx, owner, h1.ID)
	wantErr(t, "deleted home", err, app.ErrNotFound)
	empty, _ := e.a.CreateHome(ctx, owner, "Empty", "")
	if err := e.a.DeleteHome(ctx, owner, empty.ID, ""); err != nil {
		t.Errorf("delete an empty home: %v", err)
	}
}

// TestDeleteAccount: everything of the account goes, once.
func TestDeleteAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, app.Limit{})
	owner, member := e.account(t), e.account(t)
	ownerAcc, _ := e.a.GetAccount(ctx, owner)
	home, _ := e.a.CreateHome(ctx, owner, "Home", "")
	if _, err := e.a.CreateRoom(ctx, owner, home.ID, "Kitchen"); err != nil {
		t.Fatal(err)
	}
	dev := e.claimed(t, owner)
	if _, err := e.a.UpdateDevice(ctx, owner, dev, app.DevicePatch{HomeID: &home.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.UpdateDesired(ctx, owner, dev, map[string]any{"mode": "heat"}, nil); err != nil {
		t.Fatal(err)
	}
	e.share(t, owner, dev, member)
	theirs := e.claimed(t, member)
	e.share(t, member, theirs, owner)

	for range 2 { // the second call is the redelivered event: a no-op
		if err := e.a.DeleteAccount(ctx, owner); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.a.GetAccount(ctx, owner)
	wantErr(t, "deleted account", err, app.ErrNotFound)
	_, err = e.a.GetDevice(ctx, member, dev)
	wantErr(t, "member's view of the released device", err, app.ErrNotFound)
	if st, _ := e.a.DesiredState(ctx, dev); len(st.Desired.Values) != 0 {
		t.Errorf("desired state kept: %v", st.Desired.Values)
	}
	if shares, _, _ := e.a.ListShares(ctx, member, theirs, app.PageRequest{}); len(shares) != 0 {
		t.Errorf("received share kept: %+v", shares)
	}
	_, err = e.a.GetHome(ctx, owner, home.ID)
	wantErr(t, "home", err, app.ErrNotFound)
	if len(e.hooks.unclaimed) != 1 || e.hooks.unclaimed[0] != dev {
		t.Errorf("unclaim hooks %v", e.hooks.unclaimed)
	}
	types := e.events(t)
	if count(types, app.TypeAccountDeleted) != 1 || count(types, app.TypeDeviceUnclaimed) != 1 ||
		count(types, app.TypeDeviceUnshared) != 2 {
		t.Errorf("deletion events %v", types)
	}
	// The id cannot come back; the phone can be registered again.
	_, _, err = e.a.CreateAccount(ctx, app.NewAccount{ID: owner, Phone: ownerAcc.Phone})
	wantErr(t, "recreate a deleted id", err, app.ErrDeleted)
	if _, created, err := e.a.CreateAccount(ctx, app.NewAccount{ID: uuid.NewString(), Phone: ownerAcc.Phone}); err != nil || !created {
		t.Errorf("reuse the phone: %v %v", created, err)
	}
	if err := e.a.DeleteAccount(ctx, uuid.NewString()); err != nil {
		t.Errorf("delete an unknown account: %v", err)
	}
}

// TestAccounts: creation is idempotent, conflicts are reported, updates
// emit the changed fields.
func TestAccounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, app.Limit{})
	id, phone := uuid.NewString(), e.phone()
	a, created, err := e.a.CreateAccount(ctx, app.NewAccount{ID: id, Phone: phone, Name: "Ivan"})
	if err != nil || !created || a.Locale != "en" || a.Timezone != "UTC" {
		t.Fatalf("create: %+v %v %v", a, created, err)
	}
	for _, tc := range []struct {
		name string
		n    app.NewAccount
		want error
	}{
		{"same again", app.NewAccount{ID: id, Phone: phone}, nil},
		{"same id, other phone", app.NewAccount{ID: id, Phone: e.phone()}, app.ErrConflict},
		{"other id, same phone", app.NewAccount{ID: uuid.NewString(), Phone: phone}, app.ErrConflict},
		{"bad id", app.NewAccount{ID: "nope", Phone: e.phone()}, app.ErrInvalid},
		{"bad phone", app.NewAccount{ID: uuid.NewString(), Phone: "89510000000"}, app.ErrInvalid},
	} {
		_, created, err := e.a.CreateAccount(ctx, tc.n)
		if created || !errors.Is(err, tc.want) && (tc.want != nil || err != nil) {
			t.Errorf("%s: created %v, err %v; want %v", tc.name, created, err, tc.want)
		}
	}
	a, err = e.a.UpdateAccount(ctx, id, app.AccountPatch{Email: ptr("ivan@example.com"), Timezone: ptr("Europe/Moscow"), Name: ptr("Ivan")})
	if err != nil || a.Email != "ivan@example.com" || a.Timezone != "Europe/Moscow" {
		t.Fatalf("update: %+v %v", a, err)
	}
	_, err = e.a.UpdateAccount(ctx, uuid.NewString(), app.AccountPatch{Name: ptr("x")})
	wantErr(t, "update unknown", err, app.ErrNotFound)
	if types := e.events(t); count(types, app.TypeAccountCreated) != 1 || count(types, app.TypeAccountUpdated) != 1 {
		t.Errorf("account events %v", types)
	}
}

// TestPagination walks homes in pages and rejects forged tokens.
func TestPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t, app.Limit{})
	owner := e.account(t)
	for i := range 5 {
		if _, err := e.a.CreateHome(ctx, owner, fmt.Sprint("Home ", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	token := ""
	for pages := 0; ; pages++ {
		homes, next, err := e.a.ListHomes(ctx, owner, app.PageRequest{Size: 2, Token: token})
		if err != nil || pages > 3 {
			t.Fatalf("page %d: %v", pages, err)
		}
		for _, h := range homes {
			names = append(names, h.Name)
		}
		if next == "" {
			break
		}
		token = next
	}
	if fmt.Sprint(names) != "[Home 0 Home 1 Home 2 Home 3 Home 4]" {
		t.Errorf("paged homes %v", names)
	}
	for _, bad := range []app.PageRequest{{Token: "!!!"}, {Token: "e30"}, {Size: 501}} {
		_, _, err := e.a.ListHomes(ctx, owner, bad)
		wantErr(t, fmt.Sprint("page ", bad), err, app.ErrInvalid)
	}
}

// TestRegistry: registration is idempotent on the id, presence keeps the
// newest report, unregistering tells the hooks.
func TestRegistry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, app.Limit{})
	id, serial, code := e.device(t)
	if d, err := e.a.RegisterDevice(ctx, app.NewDevice{ID: id, Serial: serial, Model: "thermo-x1", ClaimCode: code}); err != nil || d.ID != id {
		t.Errorf("register again: %+v %v", d, err)
	}
	_, err := e.a.RegisterDevice(ctx, app.NewDevice{ID: uuid.NewString(), Serial: serial, Model: "m", ClaimCode: code})
	wantErr(t, "serial taken", err, app.ErrConflict)
	_, err = e.a.RegisterDevice(ctx, app.NewDevice{ID: id, Serial: "SN-OTHER1", Model: "m", ClaimCode: code})
	wantErr(t, "id with another serial", err, app.ErrConflict)

	owner := e.account(t)
	if _, err := e.a.ClaimDevice(ctx, owner, app.Claim{Serial: serial, Code: code}); err != nil {
		t.Fatal(err)
	}
	t1 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	if err := e.a.RecordPresence(ctx, id, true, t1, "2.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := e.a.RecordPresence(ctx, id, false, t1.Add(-time.Minute), ""); err != nil {
		t.Fatal(err)
	}
	d, _ := e.a.GetDevice(ctx, owner, id)
	if !d.Online || !d.LastSeen.Equal(t1) || d.FirmwareVersion != "2.0.0" {
		t.Errorf("presence %+v", d)
	}
	wantErr(t, "presence of unknown", e.a.RecordPresence(ctx, uuid.NewString(), true, t1, ""), app.ErrNotFound)
	if err := e.a.UnregisterDevice(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = e.a.GetDevice(ctx, owner, id)
	wantErr(t, "unregistered device", err, app.ErrNotFound)
	wantErr(t, "unregister twice", e.a.UnregisterDevice(ctx, id), app.ErrNotFound)
	if len(e.hooks.unclaimed) != 1 {
		t.Errorf("unregister hook calls %v", e.hooks.unclaimed)
	}
}

// TestModels: put is idempotent and reports changes; a model in use stays.
func TestModels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, app.Limit{})
	m := app.DeviceModel{ID: "thermo-x1", Title: "Thermostat", Commands: []string{"reboot"},
		Metrics: []app.MetricSpec{{Name: "temperature", Unit: "°C"}}}
	for _, tc := range []struct {
		name                    string
		model                   app.DeviceModel
		validateOnly            bool
		wantCreated, wantChange bool
	}{
		{"validate only", m, true, true, true},
		{"create", m, false, true, true},
		{"same again", m, false, false, false},
		{"changed title", app.DeviceModel{ID: m.ID, Title: "Thermostat 2", Commands: m.Commands, Metrics: m.Metrics}, false, false, true},
	} {
		_, created, changed, err := e.a.PutModel(ctx, tc.model, tc.validateOnly)
		if err != nil || created != tc.wantCreated || changed != tc.wantChange {
			t.Errorf("%s: created %v changed %v err %v", tc.name, created, changed, err)
		}
	}
	if got, err := e.a.GetModel(ctx, m.ID); err != nil || got.Title != "Thermostat 2" {
		t.Errorf("GetModel %+v %v", got, err)
	}
	e.device(t)
	wantErr(t, "delete a model in use", e.a.DeleteModel(ctx, m.ID), app.ErrPrecondition)
	wantErr(t, "delete unknown", e.a.DeleteModel(ctx, "nope"), app.ErrNotFound)
	if list, _, err := e.a.ListModels(ctx, app.PageRequest{}); err != nil || len(list) != 1 {
		t.Errorf("ListModels %d %v", len(list), err)
	}
}
