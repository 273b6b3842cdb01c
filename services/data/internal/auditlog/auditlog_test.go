package auditlog_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/sqldb/sqldbtest"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/data/internal/app"
	"github.com/comfortech/platform/services/data/internal/auditlog"
)

// TestLog runs on SQLite and on PostgreSQL: storing is idempotent, every
// filter narrows, pages follow each other newest first without overlap,
// and bad paging names its field.
func TestLog(t *testing.T) {
	for name, url := range map[string]func(testing.TB) string{"sqlite": sqldbtest.SQLiteURL, "postgres": sqldbtest.PostgresURL} {
		t.Run(name, func(t *testing.T) {
			l := auditlog.New(sqldbtest.Open(t, url(t)))
			ctx := context.Background()
			if err := l.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			testLog(ctx, t, l)
		})
	}
}

func testLog(ctx context.Context, t *testing.T, l *auditlog.Log) {
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	after, _ := structpb.NewStruct(map[string]any{"device_id": "d1", "serial": "CT-1"})
	var all []*eventsv1.AuditEvent
	for i, e := range []struct{ actor, action, rtype, rid string }{
		{"anna", "device.provision", "device", "d1"},
		{"anna", "device.provision", "device", "d2"},
		{"boris", "device.rotate_secret", "device", "d1"},
		{"anna", "account.suspend", "account", "a1"},
		{"boris", "devices_x.odd", "device", "d3"}, // "_" must not match "device."
		{"anna", "config.apply", "config", "env"},
	} {
		all = append(all, &eventsv1.AuditEvent{
			Id: fmt.Sprintf("ev-%d", i), Action: e.action, ResourceType: e.rtype, ResourceId: e.rid,
			Actor:   &eventsv1.AuditActor{AccountId: e.actor, Username: e.actor, Roles: []string{"admin"}},
			Outcome: eventsv1.AuditOutcome_AUDIT_OUTCOME_SUCCEEDED, After: after, Time: timestamppb.New(base.Add(time.Duration(i) * time.Minute)),
		})
	}
	if err := l.Add(ctx, all...); err != nil {
		t.Fatal(err)
	}
	// Delivered again: skipped.
	if err := l.Add(ctx, all[2], all[3]); err != nil {
		t.Fatal(err)
	}

	ids := func(f auditlog.Filter, p app.PageRequest) ([]string, string) {
		t.Helper()
		evs, next, err := l.List(ctx, f, p)
		if err != nil {
			t.Fatalf("list %+v: %v", f, err)
		}
		var out []string
		for _, e := range evs {
			out = append(out, e.GetId())
		}
		return out, next
	}
	for _, c := range []struct {
		name string
		f    auditlog.Filter
		want []string
	}{
		{"everything, newest first", auditlog.Filter{}, []string{"ev-5", "ev-4", "ev-3", "ev-2", "ev-1", "ev-0"}},
		{"one actor", auditlog.Filter{ActorID: "boris"}, []string{"ev-4", "ev-2"}},
		{"an action", auditlog.Filter{Action: "device.provision"}, []string{"ev-1", "ev-0"}},
		{"an area", auditlog.Filter{Action: "device."}, []string{"ev-2", "ev-1", "ev-0"}},
		{"a resource", auditlog.Filter{ResourceType: "device", ResourceID: "d1"}, []string{"ev-2", "ev-0"}},
		{"a kind of resource", auditlog.Filter{ResourceType: "account"}, []string{"ev-3"}},
		{"a time range", auditlog.Filter{Start: base.Add(time.Minute), End: base.Add(3 * time.Minute)}, []string{"ev-2", "ev-1"}},
		{"combined", auditlog.Filter{ActorID: "anna", Action: "device.", Start: base.Add(time.Minute)}, []string{"ev-1"}},
	} {
		if got, next := ids(c.f, app.PageRequest{}); !slices.Equal(got, c.want) || next != "" {
			t.Errorf("%s: %v (next %q), want %v", c.name, got, next, c.want)
		}
	}

	var paged []string
	var tok string
	for range 3 {
		got, next := ids(auditlog.Filter{}, app.PageRequest{Size: 2, Token: tok})
		paged = append(paged, got...)
		if tok = next; tok == "" {
			break
		}
	}
	if !slices.Equal(paged, []string{"ev-5", "ev-4", "ev-3", "ev-2", "ev-1", "ev-0"}) || tok != "" {
		t.Errorf("pages of 2: %v, last token %q", paged, tok)
	}
	evs, _, err := l.List(ctx, auditlog.Filter{ResourceType: "account"}, app.PageRequest{})
	if err != nil || len(evs) != 1 || !proto.Equal(evs[0], all[3]) {
		t.Errorf("stored event does not read back whole: %v %v", evs, err)
	}

	for _, c := range []struct {
		p     app.PageRequest
		field string
	}{{app.PageRequest{Size: 1001}, "page_size"}, {app.PageRequest{Token: "not a token"}, "page_token"}} {
		_, _, err := l.List(ctx, auditlog.Filter{}, c.p)
		ae, ok := errors.AsType[*app.Error](err)
		if !errors.Is(err, app.ErrInvalid) || !ok || ae.Field != c.field {
			t.Errorf("list %+v: %v, want invalid %s", c.p, err, c.field)
		}
	}
}
