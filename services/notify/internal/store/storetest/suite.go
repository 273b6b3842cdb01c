package storetest

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/comfortech/platform/services/notify/internal/app"
)

// Run runs the app.Store contract against the store newStore builds.
func Run(t *testing.T, newStore func(t testing.TB) app.Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)

	t.Run("applications", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if _, err := s.GetApplication(ctx, "x"); !errors.Is(err, app.ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		for _, n := range []string{"b", "a", "c"} {
			a := &app.Application{Name: n, Title: n, EventTypes: []app.EventType{{ID: "e", Title: "E", Levels: []string{"info"}}}, CreateTime: now, UpdateTime: now}
			if err := s.PutApplication(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		page, next, err := s.ListApplications(ctx, app.Page{Size: 2})
		if err != nil || len(page) != 2 || page[0].Name != "a" || next != "b" {
			t.Fatalf("page 1 = %v %q %v", page, next, err)
		}
		page, next, err = s.ListApplications(ctx, app.Page{Size: 2, Token: next})
		if err != nil || len(page) != 1 || page[0].Name != "c" || next != "" {
			t.Fatalf("page 2 = %v %q %v", page, next, err)
		}
		got, err := s.GetApplication(ctx, "a")
		if err != nil || got.EventTypes[0].ID != "e" || !got.CreateTime.Equal(now) {
			t.Fatalf("get = %+v %v", got, err)
		}
		if err := s.DeleteApplication(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteApplication(ctx, "a"); !errors.Is(err, app.ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
	})

	t.Run("push tokens move to the last registrant", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		a, b := uuid.NewString(), uuid.NewString()
		tok := &app.PushToken{ID: uuid.NewString(), AccountID: a, Platform: app.Android, Token: "tok-0123456789abcdef", CreateTime: now, LastSeen: now}
		if err := s.PutPushToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		first := tok.ID
		again := &app.PushToken{ID: uuid.NewString(), AccountID: b, Platform: app.IOS, Token: tok.Token, CreateTime: now, LastSeen: now}
		if err := s.PutPushToken(ctx, again); err != nil || again.ID != first {
			t.Fatalf("re-register: id %s want %s, %v", again.ID, first, err)
		}
		if l, _, _ := s.ListPushTokens(ctx, a, app.Page{}); len(l) != 0 {
			t.Fatalf("old owner still has %v", l)
		}
		if l, _, _ := s.ListPushTokens(ctx, b, app.Page{}); len(l) != 1 || l[0].Platform != app.IOS {
			t.Fatalf("new owner has %v", l)
		}
		if err := s.DeletePushTokenValue(ctx, tok.Token); err != nil {
			t.Fatal(err)
		}
		if l, _, _ := s.ListPushTokens(ctx, b, app.Page{}); len(l) != 0 {
			t.Fatalf("after delete %v", l)
		}
	})

	t.Run("deliveries dedupe, claim, revive", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		d := func() *app.Delivery {
			return &app.Delivery{ID: uuid.NewString(), NotificationID: "n1", AccountID: uuid.NewString(), Channel: app.SMS, Recipient: "+10000000000",
				Status: app.StatusPending, NextAttempt: now, CreateTime: now, Source: []byte(`{}`)}
		}
		added, err := s.AddDeliveries(ctx, []*app.Delivery{d(), d()})
		if err != nil || len(added) != 1 {
			t.Fatalf("added %d, %v; want 1 (dedupe)", len(added), err)
		}
		claimed, err := s.ClaimDue(ctx, now, time.Minute, 10)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claimed %d, %v", len(claimed), err)
		}
		if again, _ := s.ClaimDue(ctx, now, time.Minute, 10); len(again) != 0 {
			t.Fatalf("claimed a leased delivery again")
		}
		c := claimed[0]
		c.Status, c.Attempts = app.StatusFailed, 3
		a := &app.Attempt{ID: uuid.NewString(), DeliveryID: c.ID, NotificationID: "n1", Channel: app.SMS, Attempt: 3, Status: app.StatusFailed, Detail: "x", Latency: time.Millisecond, Time: now}
		if err := s.RecordAttempt(ctx, c, a, app.Event{Topic: "t", Key: "k", Value: []byte("v"), Headers: map[string]string{"h": "1"}}); err != nil {
			t.Fatal(err)
		}
		log, _, err := s.ListAttempts(ctx, app.DeliveryFilter{NotificationID: "n1"}, app.Page{})
		if err != nil || len(log) != 1 || log[0].Latency != time.Millisecond || log[0].Status != app.StatusFailed {
			t.Fatalf("log = %v %v", log, err)
		}
		// A replay revives the dead delivery, once.
		if added, _ := s.AddDeliveries(ctx, []*app.Delivery{d()}); len(added) != 1 || added[0].ID != c.ID {
			t.Fatalf("revive = %v", added)
		}
		if added, _ := s.AddDeliveries(ctx, []*app.Delivery{d()}); len(added) != 0 {
			t.Fatalf("pending delivery added again")
		}
	})

	t.Run("attempts recorded in batches, leased deliveries released", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var ds []*app.Delivery
		for i := range 3 {
			ds = append(ds, &app.Delivery{ID: uuid.NewString(), NotificationID: "n" + strconv.Itoa(i), AccountID: "acct", Channel: app.Webhook,
				Recipient: "ep", Status: app.StatusPending, NextAttempt: now.Add(time.Minute), CreateTime: now})
		}
		if added, err := s.AddDeliveries(ctx, ds); err != nil || len(added) != 3 {
			t.Fatalf("added %d, %v", len(added), err)
		}
		if due, _ := s.ClaimDue(ctx, now, time.Minute, 10); len(due) != 0 {
			t.Fatalf("leased deliveries claimed: %v", due)
		}
		ds[0].Status, ds[0].Attempts = app.StatusSent, 1
		ds[1].Status, ds[1].Attempts, ds[1].NextAttempt = app.StatusPending, 1, now.Add(time.Hour)
		recs := []app.AttemptRecord{
			{Delivery: ds[0], Attempt: &app.Attempt{ID: uuid.NewString(), DeliveryID: ds[0].ID, NotificationID: "n0", Attempt: 1, Status: app.StatusSent, Time: now}},
			{Delivery: ds[1], Attempt: &app.Attempt{ID: uuid.NewString(), DeliveryID: ds[1].ID, NotificationID: "n1", Attempt: 1, Status: app.StatusRetrying, Time: now},
				Events: []app.Event{{Topic: "t", Key: "k", Value: []byte("v")}}},
			{Attempt: &app.Attempt{ID: uuid.NewString(), NotificationID: "n9", Attempt: 1, Status: app.StatusSkipped, Detail: "quiet hours", Time: now}},
		}
		if err := s.RecordAttempts(ctx, recs); err != nil {
			t.Fatal(err)
		}
		for i, want := range []struct {
			status   app.Status
			attempts int
		}{{app.StatusSent, 1}, {app.StatusPending, 1}, {app.StatusPending, 0}} {
			got, err := s.GetDelivery(ctx, ds[i].NotificationID, app.Webhook, "ep")
			if err != nil || got.Status != want.status || got.Attempts != want.attempts {
				t.Fatalf("delivery %d = %+v, %v; want %s after %d", i, got, err, want.status, want.attempts)
			}
		}
		if log, _, err := s.ListAttempts(ctx, app.DeliveryFilter{}, app.Page{}); err != nil || len(log) != 3 {
			t.Fatalf("log = %v, %v; want 3 entries", log, err)
		}
		// Release makes the leased (and pending) one due; the sent one stays sent.
		if err := s.Release(ctx, []string{ds[0].ID, ds[2].ID}); err != nil {
			t.Fatal(err)
		}
		due, err := s.ClaimDue(ctx, time.Now(), time.Minute, 10)
		if err != nil || len(due) != 1 || due[0].ID != ds[2].ID {
			t.Fatalf("due after release = %v, %v; want %s", due, err, ds[2].ID)
		}
	})

	t.Run("dead letters and delivery log pages", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for i := range 3 {
			dl := &app.DeadLetter{ID: uuid.NewString(), Topic: "notifications.outbox", Value: "{}", Reason: "r", CreateTime: now.Add(time.Duration(i) * time.Second)}
			if err := s.AddDeadLetter(ctx, dl); err != nil {
				t.Fatal(err)
			}
			if err := s.AddDeadLetter(ctx, dl); err != nil {
				t.Fatalf("idempotent add: %v", err)
			}
		}
		p1, next, err := s.ListDeadLetters(ctx, app.DeadLetterFilter{}, app.Page{Size: 2})
		if err != nil || len(p1) != 2 || next == "" || !p1[0].CreateTime.After(p1[1].CreateTime) {
			t.Fatalf("page 1 = %v %q %v", p1, next, err)
		}
		p2, _, err := s.ListDeadLetters(ctx, app.DeadLetterFilter{}, app.Page{Size: 2, Token: next})
		if err != nil || len(p2) != 1 {
			t.Fatalf("page 2 = %v %v", p2, err)
		}
		if err := s.MarkReplayed(ctx, p2[0].ID, now); err != nil {
			t.Fatal(err)
		}
		yes := true
		if r, _, _ := s.ListDeadLetters(ctx, app.DeadLetterFilter{Replayed: &yes}, app.Page{}); len(r) != 1 || r[0].ReplayCount != 1 {
			t.Fatalf("replayed = %v", r)
		}
	})

	t.Run("subscriptions", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if _, err := s.GetSubscription(ctx, "crm"); !errors.Is(err, app.ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		for _, n := range []string{"b-sub", "a-sub", "c-sub"} {
			sub := &app.Subscription{Name: n, URL: "https://" + n + ".example/hook", Topics: []string{"alerts"}, Enabled: true,
				Signing: app.Signing{Secret: "whsec_" + n}, CreateTime: now, UpdateTime: now}
			if err := s.PutSubscription(ctx, sub); err != nil {
				t.Fatal(err)
			}
		}
		page, next, err := s.ListSubscriptions(ctx, app.Page{Size: 2})
		if err != nil || len(page) != 2 || page[0].Name != "a-sub" || next != "b-sub" {
			t.Fatalf("page 1 = %v %q %v", page, next, err)
		}
		page, next, err = s.ListSubscriptions(ctx, app.Page{Size: 2, Token: next})
		if err != nil || len(page) != 1 || page[0].Name != "c-sub" || next != "" {
			t.Fatalf("page 2 = %v %q %v", page, next, err)
		}
		if page[0].Filters != nil || page[0].Auth != nil || page[0].Secret != "whsec_c-sub" || !page[0].CreateTime.Equal(now) {
			t.Fatalf("without filters and auth = %+v", page[0])
		}

		// Replaced whole, auth secrets and filters kept as given.
		later := now.Add(time.Minute)
		sub := &app.Subscription{Name: "a-sub", URL: "https://crm.example/events", Topics: []string{"alerts", "device.lifecycle"},
			Filters: []app.Filter{{Attribute: "data.device_id", Op: app.FilterPrefix, Value: "0b9f"}},
			Auth:    &app.WebhookAuth{OAuth2: &app.OAuth2Auth{TokenURL: "https://idp.example/token", ClientID: "crm", ClientSecret: "s3cret", Scopes: []string{"events"}}},
			Enabled: false, Signing: app.Signing{Secret: "whsec_new", OldSecret: "whsec_a-sub", OldExpire: later}, CreateTime: now, UpdateTime: later}
		if err := s.PutSubscription(ctx, sub); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetSubscription(ctx, "a-sub")
		if err != nil || !reflect.DeepEqual(got, sub) {
			t.Fatalf("get = %+v, %v; want %+v", got, err, sub)
		}
		if err := s.DisableSubscription(ctx, "b-sub", "endpoint answered 410", later); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetSubscription(ctx, "b-sub"); got.DisabledReason != "endpoint answered 410" || !got.Enabled || !got.UpdateTime.Equal(later) {
			t.Fatalf("disabled = %+v", got)
		}
		if err := s.DisableSubscription(ctx, "zz", "x", later); !errors.Is(err, app.ErrNotFound) {
			t.Fatalf("disable missing: %v", err)
		}
		if err := s.DeleteSubscription(ctx, "a-sub"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSubscription(ctx, "a-sub"); !errors.Is(err, app.ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
	})

	t.Run("event deliveries name their subscription", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		d := func(sub string) *app.Delivery {
			return &app.Delivery{ID: uuid.NewString(), NotificationID: "event-1", EventType: "comfortech.device.presence.v1", Channel: app.Webhook,
				Recipient: "subscription:" + sub, Masked: "crm.example", Subscription: sub, Topic: "device.lifecycle", Body: `{"id":"event-1"}`,
				Status: app.StatusPending, NextAttempt: now, CreateTime: now}
		}
		// The same event to two subscriptions: two deliveries; again: none.
		if added, err := s.AddDeliveries(ctx, []*app.Delivery{d("crm"), d("erp")}); err != nil || len(added) != 2 {
			t.Fatalf("added %d, %v", len(added), err)
		}
		if added, err := s.AddDeliveries(ctx, []*app.Delivery{d("crm")}); err != nil || len(added) != 0 {
			t.Fatalf("added again %d, %v", len(added), err)
		}
		due, err := s.ClaimDue(ctx, now, time.Minute, 10)
		if err != nil || len(due) != 2 || due[0].Subscription == "" || due[0].Topic != "device.lifecycle" || due[0].Body != `{"id":"event-1"}` {
			t.Fatalf("claimed = %+v, %v", due, err)
		}
		var recs []app.AttemptRecord
		for _, c := range due {
			c.Status, c.Attempts = app.StatusSent, 1
			recs = append(recs, app.AttemptRecord{Delivery: c, Attempt: &app.Attempt{ID: uuid.NewString(), DeliveryID: c.ID, NotificationID: "event-1",
				Channel: app.Webhook, Subscription: c.Subscription, Attempt: 1, Status: app.StatusSent, Time: now}})
		}
		recs = append(recs, app.AttemptRecord{Attempt: &app.Attempt{ID: uuid.NewString(), NotificationID: "n1", AccountID: uuid.NewString(),
			Channel: app.Push, Attempt: 1, Status: app.StatusSkipped, Time: now}})
		if err := s.RecordAttempts(ctx, recs); err != nil {
			t.Fatal(err)
		}
		log, _, err := s.ListAttempts(ctx, app.DeliveryFilter{Subscription: "crm"}, app.Page{})
		if err != nil || len(log) != 1 || log[0].Subscription != "crm" || log[0].NotificationID != "event-1" {
			t.Fatalf("crm's log = %+v, %v", log, err)
		}
		if all, _, _ := s.ListAttempts(ctx, app.DeliveryFilter{}, app.Page{}); len(all) != 3 {
			t.Fatalf("whole log has %d entries, want 3", len(all))
		}
	})

	t.Run("templates and webhooks", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		tp := &app.Template{Application: "a", EventType: "e", Channel: app.Email, Locale: "en", Body: "b", UpdateTime: now}
		if created, err := s.PutTemplate(ctx, tp); err != nil || !created {
			t.Fatalf("put = %v %v", created, err)
		}
		got, err := s.FindTemplate(ctx, "a", "e", app.Email, "en")
		if err != nil || got.ID != tp.ID {
			t.Fatalf("find = %v %v", got, err)
		}
		acct := uuid.NewString()
		e := &app.WebhookEndpoint{ID: uuid.NewString(), AccountID: acct, URL: "https://x.example/h", EventTypes: []string{"a/*"}, Enabled: true, Signing: app.Signing{Secret: "whsec_AA=="}, CreateTime: now, UpdateTime: now}
		if err := s.CreateWebhook(ctx, e); err != nil {
			t.Fatal(err)
		}
		e.Enabled, e.DisabledReason = false, "410"
		if err := s.UpdateWebhook(ctx, e); err != nil {
			t.Fatal(err)
		}
		got2, err := s.GetWebhook(ctx, e.ID)
		if err != nil || got2.Enabled || got2.DisabledReason != "410" || got2.EventTypes[0] != "a/*" {
			t.Fatalf("webhook = %+v %v", got2, err)
		}
		if err := s.DeleteWebhook(ctx, uuid.NewString(), e.ID); !errors.Is(err, app.ErrNotFound) {
			t.Fatalf("delete by another account: %v", err)
		}
	})
}
