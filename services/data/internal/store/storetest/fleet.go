package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/comfortech/platform/services/data/internal/app"
)

// testFleet checks every fleet filter, alone and combined, against the
// same filter applied in Go to the devices the case created: the pages
// (walked with the cursor) hold exactly the matches, in byte order of
// serial, and the count agrees.
func testFleet(t *testing.T, f *fixture) {
	ctx := context.Background()
	owners := []app.Account{f.account(t), f.account(t), f.account(t)}
	homes := []app.Home{f.home(t, owners[0].ID), f.home(t, owners[0].ID), f.home(t, owners[1].ID)}
	// Serials whose byte order differs from a linguistic one: a hyphen
	// sorts before digits and letters, capitals before small letters.
	serials := []string{"FL-1", "FL-10", "FL-2", "FL1X", "FL-1-B", "fl-3", "FLA", "AB-9", "FL-", "FL-11"}
	for i := range 30 {
		serials = append(serials, fmt.Sprintf("CT-%04d", i))
	}
	var devices []app.Device
	for i, serial := range serials {
		d := app.Device{ID: uuid.NewString(), Serial: serial, Model: []string{"thermo-x1", "heater-h2", "purifier-p3"}[i%3],
			FirmwareVersion: []string{"1.0.0", "2.0.0"}[i/2%2], ClaimCodeHash: []byte{byte(i)}, CreatedAt: f.at(i), UpdatedAt: f.at(i)}
		if i%4 != 0 {
			d.OwnerID, d.Name, d.ClaimedAt = owners[i%3].ID, "Device", f.at(100+i)
			switch d.OwnerID {
			case owners[0].ID:
				d.HomeID = homes[i/3%2].ID
			case owners[1].ID:
				if i%2 == 1 {
					d.HomeID = homes[2].ID
				}
			}
		}
		d.Online = i%3 == 0
		if i%5 != 0 {
			d.LastSeen = f.at(1000 + 10*i)
		}
		f.tx(t, func(tx app.Tx) error {
			if _, err := tx.InsertDevice(ctx, d); err != nil {
				return err
			}
			return tx.UpdateDevice(ctx, d)
		})
		devices = append(devices, d)
	}

	yes, no := true, false
	cases := []struct {
		name   string
		filter app.FleetFilter
		match  func(d app.Device) bool
	}{
		{"everything", app.FleetFilter{}, func(app.Device) bool { return true }},
		{"model", app.FleetFilter{Model: "heater-h2"}, func(d app.Device) bool { return d.Model == "heater-h2" }},
		{"firmware", app.FleetFilter{FirmwareVersion: "2.0.0"}, func(d app.Device) bool { return d.FirmwareVersion == "2.0.0" }},
		{"online", app.FleetFilter{Online: &yes}, func(d app.Device) bool { return d.Online }},
		{"offline", app.FleetFilter{Online: &no}, func(d app.Device) bool { return !d.Online }},
		{"owner", app.FleetFilter{OwnerID: owners[1].ID}, func(d app.Device) bool { return d.OwnerID == owners[1].ID }},
		{"home", app.FleetFilter{HomeID: homes[0].ID}, func(d app.Device) bool { return d.HomeID == homes[0].ID }},
		{"claimed", app.FleetFilter{Claimed: &yes}, func(d app.Device) bool { return d.OwnerID != "" }},
		{"unclaimed", app.FleetFilter{Claimed: &no}, func(d app.Device) bool { return d.OwnerID == "" }},
		{"seen at or after", app.FleetFilter{LastSeenAfter: f.at(1000 + 10*12)}, func(d app.Device) bool {
			return !d.LastSeen.IsZero() && !d.LastSeen.Before(f.at(1000+10*12))
		}},
		{"seen before or never", app.FleetFilter{LastSeenBefore: f.at(1000 + 10*12)}, func(d app.Device) bool {
			return d.LastSeen.IsZero() || d.LastSeen.Before(f.at(1000+10*12))
		}},
		{"seen within", app.FleetFilter{LastSeenAfter: f.at(1000 + 10*5), LastSeenBefore: f.at(1000 + 10*25)}, func(d app.Device) bool {
			return !d.LastSeen.IsZero() && !d.LastSeen.Before(f.at(1000+10*5)) && d.LastSeen.Before(f.at(1000+10*25))
		}},
		{"serial prefix", app.FleetFilter{SerialPrefix: "FL-1"}, func(d app.Device) bool { return strings.HasPrefix(d.Serial, "FL-1") }},
		{"serial prefix is case-sensitive", app.FleetFilter{SerialPrefix: "fl"}, func(d app.Device) bool { return strings.HasPrefix(d.Serial, "fl") }},
		{"serial prefix ending in a hyphen", app.FleetFilter{SerialPrefix: "FL-"}, func(d app.Device) bool { return strings.HasPrefix(d.Serial, "FL-") }},
		{"whole serial as prefix", app.FleetFilter{SerialPrefix: "CT-0007"}, func(d app.Device) bool { return d.Serial == "CT-0007" }},
		{"no serial has the prefix", app.FleetFilter{SerialPrefix: "ZZ"}, func(app.Device) bool { return false }},
		{"model, online and claimed", app.FleetFilter{Model: "thermo-x1", Online: &yes, Claimed: &yes}, func(d app.Device) bool {
			return d.Model == "thermo-x1" && d.Online && d.OwnerID != ""
		}},
		{"owner, firmware and seen after", app.FleetFilter{OwnerID: owners[0].ID, FirmwareVersion: "1.0.0", LastSeenAfter: f.at(1000)},
			func(d app.Device) bool {
				return d.OwnerID == owners[0].ID && d.FirmwareVersion == "1.0.0" && !d.LastSeen.IsZero()
			}},
		{"prefix and offline", app.FleetFilter{SerialPrefix: "CT-00", Online: &no}, func(d app.Device) bool {
			return strings.HasPrefix(d.Serial, "CT-00") && !d.Online
		}},
		{"owner of another home", app.FleetFilter{OwnerID: owners[2].ID, HomeID: homes[0].ID}, func(app.Device) bool { return false }},
	}
	for _, c := range cases {
		var want []string
		for _, d := range devices {
			if c.match(d) {
				want = append(want, d.Serial)
			}
		}
		slices.Sort(want) // byte order
		var (
			got   []string
			after app.Cursor
		)
		for range len(devices) {
			page, err := f.s.ListFleetDevices(ctx, c.filter, after, 4)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			for _, d := range page {
				got = append(got, d.Serial)
			}
			if len(page) < 4 {
				break
			}
			after = app.Cursor{ID: page[len(page)-1].Serial}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: listed %v, want %v", c.name, got, want)
		}
		n, err := f.s.CountFleetDevices(ctx, c.filter, len(devices))
		if err != nil || n != int64(len(want)) {
			t.Errorf("%s: count %d, %v; want %d", c.name, n, err, len(want))
		}
		// Above the exact limit the count may be an estimate, never
		// below the limit.
		if len(want) > 3 {
			if n, err := f.s.CountFleetDevices(ctx, c.filter, 3); err != nil || n < 4 {
				t.Errorf("%s: count above an exact limit of 3: %d, %v", c.name, n, err)
			}
		}
	}

	// A listed device is whole.
	page, err := f.s.ListFleetDevices(ctx, app.FleetFilter{SerialPrefix: "CT-0007"}, app.Cursor{}, 10)
	if err != nil || len(page) != 1 {
		t.Fatalf("one device: %+v, %v", page, err)
	}
	want := devices[slices.IndexFunc(devices, func(d app.Device) bool { return d.Serial == "CT-0007" })]
	if got := page[0]; got.ID != want.ID || got.Model != want.Model || got.FirmwareVersion != want.FirmwareVersion ||
		got.OwnerID != want.OwnerID || got.HomeID != want.HomeID || got.Online != want.Online ||
		!got.LastSeen.Equal(want.LastSeen) || !got.ClaimedAt.Equal(want.ClaimedAt) || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("listed %+v, want %+v", got, want)
	}
}

// testAccountList checks the operators' account search: exact phone,
// case-insensitive substring of name, e-mail or phone (LIKE's wildcards
// taken literally), status; newest first, paged; deleted accounts never.
func testAccountList(t *testing.T, f *fixture) {
	ctx := context.Background()
	people := []struct{ name, email string }{
		{"Ivan Petrov", "ivan@example.com"}, {"Anna Ivanova", "anna@example.org"}, {"Boris", ""},
		{"100% Pure_Name", "pure@example.com"}, {"Olga", "OLGA@Example.com"}, {"Ghost", "ghost@example.com"},
	}
	var accounts []app.Account
	for i, p := range people {
		a := app.Account{ID: uuid.NewString(), Phone: fmt.Sprintf("+7911000%04d", i), Name: p.name, Email: p.email,
			Locale: "en", Timezone: "UTC", CreatedAt: f.at(i), UpdatedAt: f.at(i)}
		a.Suspended = i%2 == 1
		if a.Suspended {
			a.SuspendReason = "fraud"
		}
		f.tx(t, func(tx app.Tx) error {
			if _, err := tx.InsertAccount(ctx, a); err != nil {
				return err
			}
			return tx.UpdateAccount(ctx, a)
		})
		accounts = append(accounts, a)
	}
	ghost := accounts[5]
	f.tx(t, func(tx app.Tx) error { return tx.TombstoneAccount(ctx, ghost.ID, f.at(50)) })

	yes, no := true, false
	for _, c := range []struct {
		name   string
		filter app.AccountFilter
		want   []int // indexes into accounts, newest first
	}{
		{"everyone but the deleted", app.AccountFilter{}, []int{4, 3, 2, 1, 0}},
		{"exact phone", app.AccountFilter{Phone: accounts[2].Phone}, []int{2}},
		{"part of a phone is no exact phone", app.AccountFilter{Phone: "+7911000"}, nil},
		{"name, any case", app.AccountFilter{Query: "IVAN"}, []int{1, 0}},
		{"e-mail, any case", app.AccountFilter{Query: "example.com"}, []int{4, 3, 0}},
		{"phone digits", app.AccountFilter{Query: "0003"}, []int{3}},
		{"a percent sign is literal", app.AccountFilter{Query: "0%"}, []int{3}},
		{"an underscore is literal", app.AccountFilter{Query: "e_n"}, []int{3}},
		{"an underscore is no wildcard", app.AccountFilter{Query: "n_a"}, nil},
		{"suspended", app.AccountFilter{Suspended: &yes}, []int{3, 1}},
		{"active matching a query", app.AccountFilter{Suspended: &no, Query: "o"}, []int{4, 2, 0}},
		{"deleted accounts are not found", app.AccountFilter{Query: "ghost"}, nil},
	} {
		var (
			got   []string
			after app.Cursor
		)
		for range len(accounts) {
			page, err := f.s.ListAccounts(ctx, c.filter, after, 2)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			for _, a := range page {
				got = append(got, a.ID)
			}
			if len(page) < 2 {
				break
			}
			last := page[len(page)-1]
			after = app.Cursor{Time: last.CreatedAt.UnixMicro(), ID: last.ID}
		}
		var want []string
		for _, i := range c.want {
			want = append(want, accounts[i].ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: listed %v, want %v", c.name, got, want)
		}
	}
	page, err := f.s.ListAccounts(ctx, app.AccountFilter{Phone: accounts[3].Phone}, app.Cursor{}, 10)
	if err != nil || len(page) != 1 || page[0] != accounts[3] {
		t.Errorf("listed account %+v, %v; want %+v", page, err, accounts[3])
	}
}
