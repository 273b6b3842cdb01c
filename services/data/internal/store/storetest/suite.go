package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/sqldb"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
	"github.com/comfortech/platform/services/data/internal/store/sqlstore"
)

// Run runs the contract suite of app.Store on databases from open, each
// case on a fresh one.
func Run(t *testing.T, open Opener) {
	cases := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"accounts", testAccounts},
		{"homes and rooms", testHomesAndRooms},
		{"devices", testDevices},
		{"fleet list", testFleet},
		{"accounts list", testAccountList},
		{"shares", testShares},
		{"state", testState},
		{"models", testModels},
		{"transactions and outbox", testTransactions},
		{"read-modify-write is serialised", testSerialised},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := open(t)
			c.fn(t, &fixture{db: db, s: sqlstore.New(db), t0: time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)})
		})
	}
}

// fixture is one case's store and helpers.
type fixture struct {
	db *sqldb.DB
	s  app.Store
	t0 time.Time
	n  int
}

// at returns t0 plus i seconds, a distinct and ordered time.
func (f *fixture) at(i int) time.Time { return f.t0.Add(time.Duration(i) * time.Second) }

// tx runs fn in a transaction and fails the test on error.
func (f *fixture) tx(t *testing.T, fn func(tx app.Tx) error) {
	t.Helper()
	if err := f.s.InTx(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) account(t *testing.T) app.Account {
	t.Helper()
	f.n++
	a := app.Account{ID: uuid.NewString(), Phone: fmt.Sprintf("+7900000%04d", f.n), Name: "User", Locale: "en",
		Timezone: "UTC", CreatedAt: f.at(f.n), UpdatedAt: f.at(f.n)}
	f.tx(t, func(tx app.Tx) error {
		ok, err := tx.InsertAccount(context.Background(), a)
		if err == nil && !ok {
			err = errors.New("account not inserted")
		}
		return err
	})
	return a
}

func (f *fixture) home(t *testing.T, owner string) app.Home {
	t.Helper()
	f.n++
	h := app.Home{ID: uuid.NewString(), OwnerID: owner, Name: "Home", CreatedAt: f.at(f.n), UpdatedAt: f.at(f.n)}
	f.tx(t, func(tx app.Tx) error { return tx.InsertHome(context.Background(), h) })
	return h
}

func (f *fixture) device(t *testing.T) app.Device {
	t.Helper()
	f.n++
	d := app.Device{ID: uuid.NewString(), Serial: fmt.Sprintf("SN-%06d", f.n), Model: "thermo-x1",
		ClaimCodeHash: []byte{1, 2, 3, byte(f.n)}, CreatedAt: f.at(f.n), UpdatedAt: f.at(f.n)}
	f.tx(t, func(tx app.Tx) error {
		ok, err := tx.InsertDevice(context.Background(), d)
		if err == nil && !ok {
			err = errors.New("device not inserted")
		}
		return err
	})
	return d
}

func (f *fixture) claim(t *testing.T, d app.Device, owner, home string) app.Device {
	t.Helper()
	f.n++
	d.OwnerID, d.HomeID, d.Name, d.ClaimedAt, d.UpdatedAt = owner, home, "Heater", f.at(f.n), f.at(f.n)
	f.tx(t, func(tx app.Tx) error {
		ok, err := tx.ClaimDevice(context.Background(), d)
		if err == nil && !ok {
			err = errors.New("device not claimed")
		}
		return err
	})
	return d
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, app.ErrNotFound) {
		t.Errorf("%s: err = %v, want ErrNotFound", what, err)
	}
}

func testAccounts(t *testing.T, f *fixture) {
	ctx := context.Background()
	a := f.account(t)
	got, err := f.s.GetAccount(ctx, a.ID)
	if err != nil || got != a {
		t.Fatalf("GetAccount = %+v, %v; want %+v", got, err, a)
	}
	if got, err := f.s.AccountByPhone(ctx, a.Phone); err != nil || got.ID != a.ID {
		t.Fatalf("AccountByPhone = %+v, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		acc  app.Account
	}{
		{"same id", app.Account{ID: a.ID, Phone: "+79999999999", CreatedAt: f.t0, UpdatedAt: f.t0}},
		{"same phone", app.Account{ID: uuid.NewString(), Phone: a.Phone, CreatedAt: f.t0, UpdatedAt: f.t0}},
	} {
		f.tx(t, func(tx app.Tx) error {
			ok, err := tx.InsertAccount(ctx, tc.acc)
			if ok {
				t.Errorf("%s: inserted a duplicate", tc.name)
			}
			return err
		})
	}
	a.Name, a.Email, a.Locale, a.Timezone, a.UpdatedAt = "Ivan", "ivan@example.com", "ru", "Europe/Moscow", f.at(100)
	f.tx(t, func(tx app.Tx) error { return tx.UpdateAccount(ctx, a) })
	if got, _ := f.s.GetAccount(ctx, a.ID); got != a {
		t.Errorf("after update %+v, want %+v", got, a)
	}
	a.Suspended, a.SuspendReason, a.UpdatedAt = true, "chargeback", f.at(101)
	f.tx(t, func(tx app.Tx) error { return tx.UpdateAccount(ctx, a) })
	if got, _ := f.s.GetAccount(ctx, a.ID); got != a {
		t.Errorf("after suspension %+v, want %+v", got, a)
	}
	f.tx(t, func(tx app.Tx) error { return tx.TombstoneAccount(ctx, a.ID, f.at(200)) })
	got, err = f.s.GetAccount(ctx, a.ID)
	if err != nil || !got.Deleted() || got.Phone != "" || got.Name != "" || got.Email != "" || !got.DeletedAt.Equal(f.at(200)) {
		t.Errorf("tombstone = %+v, %v", got, err)
	}
	_, err = f.s.AccountByPhone(ctx, a.Phone)
	wantNotFound(t, "phone of a deleted account", err)
	_, err = f.s.GetAccount(ctx, uuid.NewString())
	wantNotFound(t, "unknown account", err)
	// The phone is free again.
	f.tx(t, func(tx app.Tx) error {
		ok, err := tx.InsertAccount(ctx, app.Account{ID: uuid.NewString(), Phone: a.Phone, CreatedAt: f.t0, UpdatedAt: f.t0})
		if !ok {
			t.Error("phone of a tombstone not reusable")
		}
		return err
	})
}

func testHomesAndRooms(t *testing.T, f *fixture) {
	ctx := context.Background()
	owner, other := f.account(t), f.account(t)
	var homes []app.Home
	for range 5 {
		homes = append(homes, f.home(t, owner.ID))
	}
	f.home(t, other.ID)
	// Pages of two, in creation order, continuing after the cursor.
	var listed []app.Home
	var after app.Cursor
	for {
		page, err := f.s.ListHomes(ctx, owner.ID, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, page...)
		if len(page) < 2 {
			break
		}
		last := page[len(page)-1]
		after = app.Cursor{Time: last.CreatedAt.UnixMicro(), ID: last.ID}
	}
	if len(listed) != len(homes) {
		t.Fatalf("listed %d homes, want %d", len(listed), len(homes))
	}
	for i := range homes {
		if listed[i] != homes[i] {
			t.Errorf("home %d = %+v, want %+v", i, listed[i], homes[i])
		}
	}

	h := homes[0]
	h.Name, h.Timezone, h.UpdatedAt = "Dacha", "Europe/Moscow", f.at(50)
	f.tx(t, func(tx app.Tx) error { return tx.UpdateHome(ctx, h) })
	if got, err := f.s.GetHome(ctx, h.ID); err != nil || got != h {
		t.Errorf("GetHome = %+v, %v; want %+v", got, err, h)
	}

	r1 := app.Room{ID: uuid.NewString(), HomeID: h.ID, Name: "Kitchen", CreatedAt: f.at(60), UpdatedAt: f.at(60)}
	r2 := app.Room{ID: uuid.NewString(), HomeID: h.ID, Name: "Bedroom", CreatedAt: f.at(61), UpdatedAt: f.at(61)}
	f.tx(t, func(tx app.Tx) error { return errors.Join(tx.InsertRoom(ctx, r1), tx.InsertRoom(ctx, r2)) })
	dup := app.Room{ID: uuid.NewString(), HomeID: h.ID, Name: "Kitchen", CreatedAt: f.at(62), UpdatedAt: f.at(62)}
	if err := f.s.InTx(ctx, func(tx app.Tx) error { return tx.InsertRoom(ctx, dup) }); !errors.Is(err, app.ErrConflict) {
		t.Errorf("duplicate room name: %v, want ErrConflict", err)
	}
	r2.Name = "Kitchen"
	if err := f.s.InTx(ctx, func(tx app.Tx) error { return tx.UpdateRoom(ctx, r2) }); !errors.Is(err, app.ErrConflict) {
		t.Errorf("rename to a taken name: %v, want ErrConflict", err)
	}
	// The same name in another home is fine.
	f.tx(t, func(tx app.Tx) error {
		return tx.InsertRoom(ctx, app.Room{ID: uuid.NewString(), HomeID: homes[1].ID, Name: "Kitchen", CreatedAt: f.t0, UpdatedAt: f.t0})
	})
	if _, err := f.s.GetRoom(ctx, homes[1].ID, r1.ID); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("room through another home: %v", err)
	}

	// Device counts, and deleting a room keeps its devices in the home.
	d := f.device(t)
	d = f.claim(t, d, owner.ID, h.ID)
	d.RoomID = r1.ID
	f.tx(t, func(tx app.Tx) error { return tx.UpdateDevice(ctx, d) })
	if got, _ := f.s.GetHome(ctx, h.ID); got.DeviceCount != 1 {
		t.Errorf("home device count %d", got.DeviceCount)
	}
	if got, _ := f.s.GetRoom(ctx, h.ID, r1.ID); got.DeviceCount != 1 {
		t.Errorf("room device count %d", got.DeviceCount)
	}
	f.tx(t, func(tx app.Tx) error { return tx.DeleteRoom(ctx, r1.ID) })
	if got, _ := f.s.GetDevice(ctx, d.ID); got.HomeID != h.ID || got.RoomID != "" {
		t.Errorf("device after room deletion: home %q room %q", got.HomeID, got.RoomID)
	}
	rooms, err := f.s.ListRooms(ctx, h.ID, app.Cursor{}, 10)
	if err != nil || len(rooms) != 1 || rooms[0].ID != r2.ID {
		t.Errorf("rooms after deletion: %+v, %v", rooms, err)
	}

	// Moving devices, then deleting the emptied home with its rooms.
	f.tx(t, func(tx app.Tx) error { return tx.MoveHomeDevices(ctx, h.ID, homes[1].ID, f.at(70)) })
	if got, _ := f.s.GetDevice(ctx, d.ID); got.HomeID != homes[1].ID || !got.UpdatedAt.Equal(f.at(70)) {
		t.Errorf("moved device: %+v", got)
	}
	f.tx(t, func(tx app.Tx) error { return tx.DeleteHome(ctx, h.ID) })
	_, err = f.s.GetHome(ctx, h.ID)
	wantNotFound(t, "deleted home", err)
	_, err = f.s.GetRoom(ctx, h.ID, r2.ID)
	wantNotFound(t, "room of a deleted home", err)

	f.tx(t, func(tx app.Tx) error {
		if err := tx.MoveHomeDevices(ctx, homes[1].ID, homes[2].ID, f.at(80)); err != nil {
			return err
		}
		return tx.DeleteHomesOf(ctx, other.ID)
	})
	if list, _ := f.s.ListHomes(ctx, other.ID, app.Cursor{}, 10); len(list) != 0 {
		t.Errorf("homes of other after DeleteHomesOf: %d", len(list))
	}
}

func testDevices(t *testing.T, f *fixture) {
	ctx := context.Background()
	owner, member, stranger := f.account(t), f.account(t), f.account(t)
	d := f.device(t)
	got, err := f.s.GetDevice(ctx, d.ID)
	if err != nil || got.Serial != d.Serial || got.OwnerID != "" || string(got.ClaimCodeHash) != string(d.ClaimCodeHash) ||
		!got.CreatedAt.Equal(d.CreatedAt) || !got.ClaimedAt.IsZero() {
		t.Fatalf("GetDevice = %+v, %v", got, err)
	}
	if got, err := f.s.GetDeviceBySerial(ctx, d.Serial); err != nil || got.ID != d.ID {
		t.Fatalf("GetDeviceBySerial = %+v, %v", got, err)
	}
	_, err = f.s.GetDeviceBySerial(ctx, "SN-NOPE")
	wantNotFound(t, "unknown serial", err)
	for _, dup := range []app.Device{
		{ID: d.ID, Serial: "SN-OTHER", Model: "m", CreatedAt: f.t0, UpdatedAt: f.t0},
		{ID: uuid.NewString(), Serial: d.Serial, Model: "m", CreatedAt: f.t0, UpdatedAt: f.t0},
	} {
		f.tx(t, func(tx app.Tx) error {
			ok, err := tx.InsertDevice(ctx, dup)
			if ok {
				t.Errorf("duplicate device %+v inserted", dup)
			}
			return err
		})
	}

	h := f.home(t, owner.ID)
	d = f.claim(t, d, owner.ID, h.ID)
	f.tx(t, func(tx app.Tx) error {
		again := d
		again.OwnerID = stranger.ID
		ok, err := tx.ClaimDevice(ctx, again)
		if ok {
			t.Error("claimed a claimed device")
		}
		return err
	})
	d.Online, d.LastSeen, d.FirmwareVersion = true, f.at(90), "1.2.3"
	f.tx(t, func(tx app.Tx) error { return tx.UpdateDevice(ctx, d) })
	if got, _ := f.s.GetDevice(ctx, d.ID); !got.Online || !got.LastSeen.Equal(f.at(90)) || got.FirmwareVersion != "1.2.3" ||
		got.OwnerID != owner.ID || got.HomeID != h.ID || !got.ClaimedAt.Equal(d.ClaimedAt) {
		t.Errorf("updated device %+v", got)
	}

	// A second device owned by member and shared with owner; an unclaimed one.
	d2 := f.claim(t, f.device(t), member.ID, "")
	f.tx(t, func(tx app.Tx) error {
		return tx.InsertShare(ctx, app.Share{DeviceID: d2.ID, AccountID: owner.ID, CreatedAt: f.at(95)})
	})
	f.device(t)

	for _, tc := range []struct {
		name    string
		account string
		filter  app.DeviceFilter
		want    []string
		roles   []app.AccessRole
	}{
		{"owner sees owned and shared", owner.ID, app.DeviceFilter{}, []string{d.ID, d2.ID}, []app.AccessRole{app.AccessOwner, app.AccessMember}},
		{"home filter selects owned", owner.ID, app.DeviceFilter{HomeID: h.ID}, []string{d.ID}, []app.AccessRole{app.AccessOwner}},
		{"member sees own", member.ID, app.DeviceFilter{}, []string{d2.ID}, []app.AccessRole{app.AccessOwner}},
		{"stranger sees nothing", stranger.ID, app.DeviceFilter{}, nil, nil},
	} {
		views, err := f.s.ListAccessibleDevices(ctx, tc.account, tc.filter, app.Cursor{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(views) != len(tc.want) {
			t.Errorf("%s: %d devices, want %d", tc.name, len(views), len(tc.want))
			continue
		}
		for i, v := range views {
			if v.ID != tc.want[i] || v.Role != tc.roles[i] {
				t.Errorf("%s: device %d = %s role %d, want %s role %d", tc.name, i, v.ID, v.Role, tc.want[i], tc.roles[i])
			}
		}
	}
	page, err := f.s.ListAccessibleDevices(ctx, owner.ID, app.DeviceFilter{}, app.Cursor{Time: d.ClaimedAt.UnixMicro(), ID: d.ID}, 10)
	if err != nil || len(page) != 1 || page[0].ID != d2.ID {
		t.Errorf("second page: %+v, %v", page, err)
	}
	if owned, err := f.s.ListOwnedDevices(ctx, owner.ID); err != nil || len(owned) != 1 || owned[0].ID != d.ID {
		t.Errorf("ListOwnedDevices = %+v, %v", owned, err)
	}
	if n, err := f.s.CountDevicesOfModel(ctx, "thermo-x1"); err != nil || n != 3 {
		t.Errorf("CountDevicesOfModel = %d, %v", n, err)
	}

	// Deleting a device takes its shares and state with it.
	f.tx(t, func(tx app.Tx) error {
		return tx.PutState(ctx, app.DeviceState{DeviceID: d2.ID, Desired: app.Document{Values: map[string]any{"a": 1.0}, Version: 1}})
	})
	f.tx(t, func(tx app.Tx) error { return tx.DeleteDevice(ctx, d2.ID) })
	_, err = f.s.GetDevice(ctx, d2.ID)
	wantNotFound(t, "deleted device", err)
	_, err = f.s.GetShare(ctx, d2.ID, owner.ID)
	wantNotFound(t, "share of a deleted device", err)
	if st, err := f.s.GetState(ctx, d2.ID); err != nil || st.Desired.Version != 0 {
		t.Errorf("state of a deleted device: %+v, %v", st, err)
	}
}

func testShares(t *testing.T, f *fixture) {
	ctx := context.Background()
	owner := f.account(t)
	d := f.claim(t, f.device(t), owner.ID, "")
	var members []app.Account
	for i := range 3 {
		m := f.account(t)
		members = append(members, m)
		f.tx(t, func(tx app.Tx) error {
			return tx.InsertShare(ctx, app.Share{DeviceID: d.ID, AccountID: m.ID, CreatedAt: f.at(100 + i)})
		})
	}
	err := f.s.InTx(ctx, func(tx app.Tx) error {
		return tx.InsertShare(ctx, app.Share{DeviceID: d.ID, AccountID: members[0].ID, CreatedAt: f.at(200)})
	})
	if !errors.Is(err, app.ErrConflict) {
		t.Errorf("duplicate share: %v, want ErrConflict", err)
	}
	s, err := f.s.GetShare(ctx, d.ID, members[1].ID)
	if err != nil || s.MemberPhone != members[1].Phone || s.MemberName != members[1].Name || !s.CreatedAt.Equal(f.at(101)) {
		t.Errorf("GetShare = %+v, %v", s, err)
	}
	first, err := f.s.ListShares(ctx, d.ID, app.Cursor{}, 2)
	if err != nil || len(first) != 2 || first[0].AccountID != members[0].ID || first[1].AccountID != members[1].ID {
		t.Fatalf("ListShares page 1 = %+v, %v", first, err)
	}
	rest, err := f.s.ListShares(ctx, d.ID, app.Cursor{Time: first[1].CreatedAt.UnixMicro(), ID: first[1].AccountID}, 2)
	if err != nil || len(rest) != 1 || rest[0].AccountID != members[2].ID {
		t.Errorf("ListShares page 2 = %+v, %v", rest, err)
	}
	if got, err := f.s.ListReceivedShares(ctx, members[2].ID); err != nil || len(got) != 1 || got[0].DeviceID != d.ID {
		t.Errorf("ListReceivedShares = %+v, %v", got, err)
	}
	f.tx(t, func(tx app.Tx) error {
		ok, err := tx.DeleteShare(ctx, d.ID, members[0].ID)
		if !ok {
			t.Error("DeleteShare of an existing share reported false")
		}
		if ok, _ := tx.DeleteShare(ctx, d.ID, members[0].ID); ok {
			t.Error("DeleteShare twice reported true")
		}
		return err
	})
	var gone []string
	f.tx(t, func(tx app.Tx) error {
		var err error
		gone, err = tx.DeleteSharesOfDevice(ctx, d.ID)
		return err
	})
	if len(gone) != 2 {
		t.Errorf("DeleteSharesOfDevice returned %v", gone)
	}
	if list, _ := f.s.ListShares(ctx, d.ID, app.Cursor{}, 10); len(list) != 0 {
		t.Errorf("shares left: %+v", list)
	}
}

func testState(t *testing.T, f *fixture) {
	ctx := context.Background()
	d := f.device(t)
	st, err := f.s.GetState(ctx, d.ID)
	if err != nil || st.Desired.Version != 0 || len(st.Desired.Values) != 0 || st.Reported.Values == nil || st.Desired.FieldTimes == nil {
		t.Fatalf("initial state %+v, %v", st, err)
	}
	want := app.DeviceState{DeviceID: d.ID,
		Desired: app.Document{Values: map[string]any{"mode": "heat", "target": 21.5, "schedule": map[string]any{"on": true}},
			Version: 3, FieldTimes: map[string]time.Time{"mode": f.at(1), "target": f.at(2), "schedule": f.at(3)}, UpdatedAt: f.at(3)},
		Reported: app.Document{Values: map[string]any{"mode": "off", "list": []any{1.0, "x", nil}},
			Version: 7, FieldTimes: map[string]time.Time{"mode": f.at(4), "list": f.at(4)}, UpdatedAt: f.at(4)},
	}
	for range 2 { // insert, then the upsert path
		f.tx(t, func(tx app.Tx) error { return tx.PutState(ctx, want) })
		got, err := f.s.GetState(ctx, d.ID)
		if err != nil || !stateEqual(got, want) {
			t.Fatalf("GetState = %+v, %v; want %+v", got, err, want)
		}
		want.Desired.Version++
		want.Desired.Values["extra"] = "v"
	}
}

func stateEqual(a, b app.DeviceState) bool {
	return a.DeviceID == b.DeviceID && docEqual(a.Desired, b.Desired) && docEqual(a.Reported, b.Reported)
}

func docEqual(a, b app.Document) bool {
	if a.Version != b.Version || !a.UpdatedAt.Equal(b.UpdatedAt) || fmt.Sprint(a.Values) != fmt.Sprint(b.Values) ||
		len(a.FieldTimes) != len(b.FieldTimes) {
		return false
	}
	for k, v := range a.FieldTimes {
		if !v.Equal(b.FieldTimes[k]) {
			return false
		}
	}
	return true
}

func testModels(t *testing.T, f *fixture) {
	ctx := context.Background()
	rule := &datav1.AlertRuleTemplate{Name: "Too cold", Condition: &datav1.AlertCondition{Metric: "temperature"}}
	m := app.DeviceModel{ID: "thermo-x1", Title: "Thermo X1", Description: "A thermostat",
		Metrics:  []app.MetricSpec{{Name: "temperature", Title: "Temperature", Unit: "°C"}},
		Commands: []string{"reboot"}, DefaultAlertRules: []*datav1.AlertRuleTemplate{rule},
		CreatedAt: f.at(1), UpdatedAt: f.at(1)}
	f.tx(t, func(tx app.Tx) error { return tx.PutModel(ctx, m) })
	got, err := f.s.GetModel(ctx, m.ID)
	if err != nil || got.Title != m.Title || got.Description != m.Description || len(got.Metrics) != 1 || got.Metrics[0] != m.Metrics[0] ||
		len(got.Commands) != 1 || len(got.DefaultAlertRules) != 1 || !proto.Equal(got.DefaultAlertRules[0], rule) ||
		!got.CreatedAt.Equal(f.at(1)) {
		t.Fatalf("GetModel = %+v, %v", got, err)
	}
	m.Title, m.Metrics, m.DefaultAlertRules, m.UpdatedAt = "Thermo X1 v2", nil, nil, f.at(2)
	f.tx(t, func(tx app.Tx) error { return tx.PutModel(ctx, m) })
	if got, _ := f.s.GetModel(ctx, m.ID); got.Title != m.Title || len(got.Metrics) != 0 || len(got.DefaultAlertRules) != 0 ||
		!got.UpdatedAt.Equal(f.at(2)) || !got.CreatedAt.Equal(f.at(1)) {
		t.Errorf("replaced model %+v", got)
	}
	for _, id := range []string{"a-model", "z-model"} {
		f.tx(t, func(tx app.Tx) error {
			return tx.PutModel(ctx, app.DeviceModel{ID: id, Title: id, CreatedAt: f.t0, UpdatedAt: f.t0})
		})
	}
	page, err := f.s.ListModels(ctx, app.Cursor{ID: "a-model"}, 10)
	if err != nil || len(page) != 2 || page[0].ID != "thermo-x1" || page[1].ID != "z-model" {
		t.Errorf("ListModels after a-model = %+v, %v", page, err)
	}
	f.tx(t, func(tx app.Tx) error { return tx.DeleteModel(ctx, "z-model") })
	_, err = f.s.GetModel(ctx, "z-model")
	wantNotFound(t, "deleted model", err)
}

func testTransactions(t *testing.T, f *fixture) {
	ctx := context.Background()
	boom := errors.New("boom")
	a := app.Account{ID: uuid.NewString(), Phone: "+79001112233", CreatedAt: f.t0, UpdatedAt: f.t0}
	msg := kafka.Message{Topic: "account.events", Key: []byte(a.ID), Value: []byte(`{}`)}
	err := f.s.InTx(ctx, func(tx app.Tx) error {
		if _, err := tx.InsertAccount(ctx, a); err != nil {
			return err
		}
		if err := tx.Enqueue(ctx, msg); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx returned %v, want the function's error", err)
	}
	_, err = f.s.GetAccount(ctx, a.ID)
	wantNotFound(t, "account of a rolled back transaction", err)
	if n := f.outboxRows(t); n != 0 {
		t.Errorf("outbox holds %d rows after rollback", n)
	}
	f.tx(t, func(tx app.Tx) error {
		if _, err := tx.InsertAccount(ctx, a); err != nil {
			return err
		}
		return tx.Enqueue(ctx, msg)
	})
	if n := f.outboxRows(t); n != 1 {
		t.Errorf("outbox holds %d rows after commit, want 1", n)
	}
}

func (f *fixture) outboxRows(t *testing.T) int {
	t.Helper()
	var n int
	if err := f.db.QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// testSerialised runs concurrent read-modify-write transactions on one
// device's state, as UpdateDesired does: none may be lost.
func testSerialised(t *testing.T, f *fixture) {
	ctx := context.Background()
	d := f.device(t)
	const workers, rounds = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range rounds {
				err := f.s.InTx(ctx, func(tx app.Tx) error {
					if _, err := tx.GetDevice(ctx, d.ID); err != nil {
						return err
					}
					st, err := tx.GetState(ctx, d.ID)
					if err != nil {
						return err
					}
					st.Desired.Version++
					return tx.PutState(ctx, st)
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st, _ := f.s.GetState(ctx, d.ID); st.Desired.Version != workers*rounds {
		t.Errorf("version %d after %d increments: updates were lost", st.Desired.Version, workers*rounds)
	}
}
