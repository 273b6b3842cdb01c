package app_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/comfortech/platform/services/data/internal/app"
)

// TestFleet: the operators' fleet list pages every device by serial with
// its total, refuses filters that cannot be answered, and a device's
// picture has its owner, members, home and state.
func TestFleet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, app.Limit{})
	owner, member := e.account(t), e.account(t)
	home, err := e.a.CreateHome(ctx, owner, "Home", "")
	if err != nil {
		t.Fatal(err)
	}
	id, serial, code := e.device(t)
	if _, err := e.a.ClaimDevice(ctx, owner, app.Claim{Serial: serial, Code: code, HomeID: home.ID}); err != nil {
		t.Fatal(err)
	}
	e.share(t, owner, id, member)
	if _, err := e.a.UpdateDesired(ctx, owner, id, map[string]any{"mode": "eco"}, nil); err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	if err := e.a.RecordPresence(ctx, id, true, seen, "3.1.0"); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		e.device(t)
	}

	// Pages of two by serial, the total on each.
	var serials []string
	p := app.PageRequest{Size: 2}
	for {
		got, err := e.a.ListFleetDevices(ctx, app.FleetFilter{}, p)
		if err != nil {
			t.Fatal(err)
		}
		if got.Total != 5 {
			t.Errorf("total %d, want 5", got.Total)
		}
		for _, d := range got.Devices {
			serials = append(serials, d.Serial)
		}
		if got.Next == "" {
			break
		}
		p.Token = got.Next
	}
	if fmt.Sprint(serials) != "[SN-000003 SN-000004 SN-000005 SN-000006 SN-000007]" {
		t.Errorf("serials %v", serials)
	}
	online := true
	got, err := e.a.ListFleetDevices(ctx, app.FleetFilter{Online: &online, FirmwareVersion: "3.1.0",
		LastSeenAfter: seen, LastSeenBefore: seen.Add(time.Nanosecond)}, app.PageRequest{})
	if err != nil || len(got.Devices) != 1 || got.Devices[0].ID != id || got.Total != 1 || got.Next != "" {
		t.Errorf("filtered: %+v, %v", got, err)
	}
	// A bound in the middle of a microsecond keeps the exact meaning of
	// "at or after" and "before".
	got, err = e.a.ListFleetDevices(ctx, app.FleetFilter{LastSeenAfter: seen.Add(time.Nanosecond)}, app.PageRequest{})
	if err != nil || len(got.Devices) != 0 {
		t.Errorf("seen after a nanosecond later: %+v, %v", got, err)
	}
	for _, bad := range []struct {
		name  string
		f     app.FleetFilter
		p     app.PageRequest
		field string
	}{
		{"page too large", app.FleetFilter{}, app.PageRequest{Size: 1001}, "page_size"},
		{"foreign token", app.FleetFilter{}, app.PageRequest{Token: "e30"}, "page_token"},
		{"prefix no serial can have", app.FleetFilter{SerialPrefix: "SN_"}, app.PageRequest{}, "serial_prefix"},
		{"empty time range", app.FleetFilter{LastSeenAfter: seen, LastSeenBefore: seen}, app.PageRequest{}, "last_seen_before"},
	} {
		_, err := e.a.ListFleetDevices(ctx, bad.f, bad.p)
		wantField(t, bad.name, err, bad.field)
	}
	if got, err := e.a.ListFleetDevices(ctx, app.FleetFilter{}, app.PageRequest{Size: 1000}); err != nil || len(got.Devices) != 5 {
		t.Errorf("largest page: %d devices, %v", len(got.Devices), err)
	}

	fd, err := e.a.GetFleetDevice(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if fd.Device.Serial != serial || !fd.Device.Online || fd.Owner == nil || fd.Owner.ID != owner ||
		len(fd.Members) != 1 || fd.Members[0].AccountID != member || fd.Home == nil || fd.Home.ID != home.ID ||
		fd.State.Desired.Values["mode"] != "eco" {
		t.Errorf("fleet device %+v", fd)
	}
	unclaimed, _, _ := e.device(t)
	if fd, err := e.a.GetFleetDevice(ctx, unclaimed); err != nil || fd.Owner != nil || fd.Home != nil || len(fd.Members) != 0 {
		t.Errorf("unclaimed fleet device %+v, %v", fd, err)
	}
	_, err = e.a.GetFleetDevice(ctx, uuid.NewString())
	wantErr(t, "unknown device", err, app.ErrNotFound)
}

// TestAccountAdmin: operators find accounts, see what they own and reach,
// and suspend and reinstate them, each change once with its event.
func TestAccountAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, app.Limit{})
	operator, owner, member := e.account(t), e.account(t), e.account(t)
	home, err := e.a.CreateHome(ctx, member, "Dacha", "")
	if err != nil {
		t.Fatal(err)
	}
	owned := e.claimed(t, member)
	if _, err := e.a.UpdateDevice(ctx, member, owned, app.DevicePatch{HomeID: &home.ID}); err != nil {
		t.Fatal(err)
	}
	shared := e.claimed(t, owner)
	e.share(t, owner, shared, member)

	o, err := e.a.GetAccountOverview(ctx, member)
	if err != nil {
		t.Fatal(err)
	}
	if o.Account.ID != member || len(o.Homes) != 1 || o.Homes[0].ID != home.ID || len(o.Devices) != 2 ||
		o.Devices[0].ID != owned || o.Devices[0].Role != app.AccessOwner || o.Devices[0].HomeID != home.ID ||
		o.Devices[1].ID != shared || o.Devices[1].Role != app.AccessMember {
		t.Errorf("overview %+v", o)
	}
	_, err = e.a.GetAccountOverview(ctx, uuid.NewString())
	wantErr(t, "overview of an unknown account", err, app.ErrNotFound)

	_, err = e.a.SuspendAccount(ctx, operator, member, "  ")
	wantField(t, "suspension without a reason", err, "reason")
	_, err = e.a.SuspendAccount(ctx, operator, operator, "oops")
	wantErr(t, "an operator suspends themself", err, app.ErrPrecondition)
	_, err = e.a.SuspendAccount(ctx, operator, uuid.NewString(), "fraud")
	wantErr(t, "suspend an unknown account", err, app.ErrNotFound)
	for range 2 {
		acc, err := e.a.SuspendAccount(ctx, operator, member, "chargeback")
		if err != nil || !acc.Suspended || acc.SuspendReason != "chargeback" {
			t.Fatalf("suspend: %+v, %v", acc, err)
		}
	}
	if acc, _ := e.a.SuspendAccount(ctx, operator, member, "another reason"); acc.SuspendReason != "chargeback" {
		t.Errorf("suspending again changed the reason: %+v", acc)
	}
	suspended := true
	list, _, err := e.a.ListAccounts(ctx, app.AccountFilter{Suspended: &suspended}, app.PageRequest{})
	if err != nil || len(list) != 1 || list[0].ID != member {
		t.Errorf("suspended accounts %+v, %v", list, err)
	}
	for range 2 {
		acc, err := e.a.ReinstateAccount(ctx, operator, member, "paid")
		if err != nil || acc.Suspended || acc.SuspendReason != "" {
			t.Fatalf("reinstate: %+v, %v", acc, err)
		}
	}
	types := e.events(t)
	if count(types, app.TypeAccountSuspended) != 1 || count(types, app.TypeAccountReinstated) != 1 {
		t.Errorf("events %v, want one suspension and one reinstatement", types)
	}

	all, next, err := e.a.ListAccounts(ctx, app.AccountFilter{}, app.PageRequest{Size: 2})
	if err != nil || len(all) != 2 || all[0].ID != member || all[1].ID != owner || next == "" {
		t.Errorf("first page of accounts %+v %q %v", all, next, err)
	}
	_, _, err = e.a.ListAccounts(ctx, app.AccountFilter{}, app.PageRequest{Size: 501})
	wantField(t, "accounts page too large", err, "page_size")

	if err := e.a.DeleteAccount(ctx, member); err != nil {
		t.Fatal(err)
	}
	_, err = e.a.SuspendAccount(ctx, operator, member, "fraud")
	wantErr(t, "suspend a deleted account", err, app.ErrNotFound)
	_, err = e.a.GetAccountOverview(ctx, member)
	wantErr(t, "overview of a deleted account", err, app.ErrNotFound)
}

// wantField fails unless err is ErrInvalid naming field.
func wantField(t *testing.T, name string, err error, field string) {
	t.Helper()
	ae, ok := errors.AsType[*app.Error](err)
	if !ok || ae.Kind != app.ErrInvalid || ae.Field != field {
		t.Errorf("%s: err = %v, want ErrInvalid on %s", name, err, field)
	}
}
