package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/comfortech/platform/services/device/internal/app"
)

func command(deviceID string, created time.Time, ttl time.Duration) app.Command {
	return app.Command{ID: uuid.Must(uuid.NewV7()).String(), DeviceID: deviceID, Name: "set_mode",
		Params: map[string]any{"mode": "heat"}, Status: app.CommandQueued, RequestedBy: uuid.NewString(),
		CreatedAt: created, ExpiresAt: created.Add(ttl)}
}

// testCommandLife: QUEUED → SENT → SUCCEEDED, each step conditional.
func testCommandLife(t *testing.T, s app.CommandStore) {
	ctx := context.Background()
	dev := uuid.NewString()
	c := command(dev, t0, time.Minute)
	if err := s.InsertCommand(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertCommand(ctx, c); !errors.Is(err, app.ErrConflict) {
		t.Errorf("duplicate: %v, want ErrConflict", err)
	}
	got, err := s.GetCommand(ctx, dev, c.ID)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("get: %+v, %v; want %+v", got, err, c)
	}
	if _, err := s.GetCommand(ctx, uuid.NewString(), c.ID); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("other device: %v, want ErrNotFound", err)
	}
	if q, err := s.QueuedCommands(ctx, dev, t0); err != nil || len(q) != 1 {
		t.Errorf("queued: %v, %v", q, err)
	}
	if q, _ := s.QueuedCommands(ctx, dev, t0.Add(time.Hour)); len(q) != 0 {
		t.Errorf("queued after expiry: %v", q)
	}
	sent := t0.Add(time.Second)
	if ok, err := s.MarkCommandSent(ctx, c.ID, sent); !ok || err != nil {
		t.Fatalf("mark sent: %v, %v", ok, err)
	}
	if ok, _ := s.MarkCommandSent(ctx, c.ID, sent); ok {
		t.Error("marked sent twice")
	}
	if err := s.RequeueCommand(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.MarkCommandSent(ctx, c.ID, sent); !ok {
		t.Error("requeued command not sendable")
	}
	if _, ok, _ := s.CompleteCommand(ctx, uuid.NewString(), c.ID, app.CommandSucceeded, nil, "", sent); ok {
		t.Error("completed through another device")
	}
	done := t0.Add(2 * time.Second)
	got, ok, err := s.CompleteCommand(ctx, dev, c.ID, app.CommandSucceeded, map[string]any{"mode": "heat"}, "", done)
	if err != nil || !ok {
		t.Fatalf("complete: %v, %v", ok, err)
	}
	if got.Status != app.CommandSucceeded || got.Result["mode"] != "heat" || !got.SentAt.Equal(sent) || !got.CompletedAt.Equal(done) {
		t.Errorf("completed: %+v", got)
	}
	if _, ok, _ := s.CompleteCommand(ctx, dev, c.ID, app.CommandFailed, nil, "late", done); ok {
		t.Error("final command completed again")
	}
	if due, _ := s.DueCommands(ctx, t0.Add(time.Hour), 10); len(due) != 0 {
		t.Errorf("final command due: %v", due)
	}
}

// testCommandLists: newest first, paged, filtered; due commands.
func testCommandLists(t *testing.T, s app.CommandStore) {
	ctx := context.Background()
	dev := uuid.NewString()
	var cs []app.Command
	for i := range 5 {
		c := command(dev, t0.Add(time.Duration(i)*time.Second), time.Duration(i+1)*time.Minute)
		if err := s.InsertCommand(ctx, c); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if err := s.InsertCommand(ctx, command(uuid.NewString(), t0, time.Minute)); err != nil {
		t.Fatal(err)
	}
	page, err := s.ListCommands(ctx, dev, "", "", 3)
	if err != nil || len(page) != 3 || page[0].ID != cs[4].ID || page[2].ID != cs[2].ID {
		t.Fatalf("page 1: %v, %v", page, err)
	}
	page, _ = s.ListCommands(ctx, dev, "", page[2].ID, 3)
	if len(page) != 2 || page[0].ID != cs[1].ID {
		t.Errorf("page 2: %v", page)
	}
	if _, ok, _ := s.CompleteCommand(ctx, dev, cs[0].ID, app.CommandFailed, nil, "boom", t0); !ok {
		t.Fatal("not completed")
	}
	if f, _ := s.ListCommands(ctx, dev, app.CommandFailed, "", 10); len(f) != 1 || f[0].Error != "boom" {
		t.Errorf("failed only: %v", f)
	}
	// At t0+2m30s the commands with TTL 1m..2m (created t0..t0+1s) are due,
	// the failed one excepted.
	due, err := s.DueCommands(ctx, t0.Add(150*time.Second), 10)
	if err != nil || len(due) != 2 {
		t.Errorf("due: %v, %v", due, err)
	}
}

// testOwners: the owner projection follows claims and releases.
func testOwners(t *testing.T, s app.OwnerStore) {
	ctx := context.Background()
	dev, a, b := uuid.NewString(), uuid.NewString(), uuid.NewString()
	if o, err := s.Owner(ctx, dev); o != "" || err != nil {
		t.Fatalf("unclaimed: %q, %v", o, err)
	}
	for _, step := range []struct {
		claim, release, want string
	}{
		{claim: a, want: a},
		{claim: b, want: b},
		{release: a, want: b}, // a stale release
		{release: b, want: ""},
	} {
		if step.claim != "" {
			if err := s.SetOwner(ctx, dev, step.claim, t0); err != nil {
				t.Fatal(err)
			}
		} else if err := s.ClearOwner(ctx, dev, step.release); err != nil {
			t.Fatal(err)
		}
		if o, err := s.Owner(ctx, dev); o != step.want || err != nil {
			t.Errorf("after %+v: %q, %v", step, o, err)
		}
	}
}

// testPresence: the history, newest first, by time range and page.
func testPresence(t *testing.T, s app.PresenceStore) {
	ctx := context.Background()
	dev := uuid.NewString()
	if _, ok, err := s.LatestPresenceEvent(ctx, dev); ok || err != nil {
		t.Fatalf("no history: %v, %v", ok, err)
	}
	var es []app.PresenceEvent
	for i := range 4 {
		e := app.PresenceEvent{ID: uuid.Must(uuid.NewV7()).String(), DeviceID: dev, Online: i%2 == 0,
			Reason: app.ReasonConnected, At: t0.Add(time.Duration(i) * time.Minute)}
		if !e.Online {
			e.Reason = app.ReasonDisconnected
		}
		if err := s.InsertPresenceEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	if got, ok, err := s.LatestPresenceEvent(ctx, dev); !ok || err != nil || got != es[3] {
		t.Errorf("latest: %+v, %v, %v", got, ok, err)
	}
	all, err := s.ListPresenceEvents(ctx, dev, time.Time{}, time.Time{}, "", 10)
	if err != nil || len(all) != 4 || all[0] != es[3] || all[3] != es[0] {
		t.Errorf("all: %+v, %v", all, err)
	}
	page, _ := s.ListPresenceEvents(ctx, dev, time.Time{}, time.Time{}, es[2].ID, 10)
	if len(page) != 2 || page[0] != es[1] {
		t.Errorf("after cursor: %+v", page)
	}
	r, _ := s.ListPresenceEvents(ctx, dev, t0.Add(time.Minute), t0.Add(3*time.Minute), "", 10)
	if len(r) != 2 || r[0] != es[2] || r[1] != es[1] {
		t.Errorf("range: %+v", r)
	}
}
