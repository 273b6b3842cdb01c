package app_test

import (
	"errors"
	"testing"
	"time"

	"github.com/comfortech/platform/gateways/auth/internal/app"
	"github.com/comfortech/platform/gateways/auth/internal/otpstore"
	"github.com/comfortech/platform/gateways/auth/internal/ratelimit"
)

type harness struct {
	svc    *app.Service
	idp    *fakeIdP
	events *fakeEvents
	sms    *fakeSender
	clock  *clock
}

type option func(*app.Config, *ratelimit.Limit, *ratelimit.Limit)

func withLimits(phone, ip string) option {
	return func(_ *app.Config, p, i *ratelimit.Limit) {
		*p, _ = ratelimit.ParseLimit(phone)
		*i, _ = ratelimit.ParseLimit(ip)
	}
}

func newHarness(t *testing.T, opts ...option) *harness {
	t.Helper()
	h := &harness{idp: newFakeIdP(), events: &fakeEvents{}, sms: &fakeSender{},
		clock: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	cfg := app.Config{OTPTTL: 5 * time.Minute, OTPMaxAttempts: 3, OTPResendInterval: 30 * time.Second}
	var phone, ip ratelimit.Limit
	for _, o := range opts {
		o(&cfg, &phone, &ip)
	}
	perPhone, err := ratelimit.New(phone, 0, ratelimit.WithClock(h.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	perIP, err := ratelimit.New(ip, 0, ratelimit.WithClock(h.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	h.svc, err = app.New(app.Deps{
		IdP: h.idp, Events: h.events, PerPhone: perPhone, PerIP: perIP,
		Codes: otpstore.New(0, h.clock.Now), Sender: h.sms, Now: h.clock.Now,
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const (
	phone    = "+79516519741"
	password = "correct horse 1"
)

func (h *harness) register(t *testing.T, phone string) string {
	t.Helper()
	if _, err := h.svc.Register(t.Context(), app.Registration{Phone: phone, Password: password, ClientIP: "192.0.2.1"}); err != nil {
		t.Fatalf("register %s: %v", phone, err)
	}
	u, err := h.idp.UserByUsername(t.Context(), phone)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func fieldOf(err error) string {
	var fe *app.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

func TestRegister(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tok, err := h.svc.Register(t.Context(), app.Registration{
		Phone: phone, Password: password, Name: "  Ivan   Petrov ", Email: "Ivan@Example.com", ClientIP: "192.0.2.1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("tokens: %+v", tok)
	}
	u, err := h.idp.UserByUsername(t.Context(), phone)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Enabled || u.FirstName != "Ivan" || u.LastName != "Petrov" || u.Email != "ivan@example.com" || len(u.Roles) != 1 || u.Roles[0] != app.RoleUser {
		t.Fatalf("user: %+v", u)
	}
	if len(h.events.registered) != 1 {
		t.Fatalf("events: %+v", h.events.registered)
	}
	ev := h.events.registered[0]
	if ev.AccountID != u.ID || ev.Phone != phone || ev.Name != "Ivan Petrov" || ev.Locale != "en" || ev.Timezone != "UTC" || ev.Time.IsZero() {
		t.Fatalf("event: %+v", ev)
	}

	_, err = h.svc.Register(t.Context(), app.Registration{Phone: phone, Password: password, ClientIP: "192.0.2.2"})
	if !errors.Is(err, app.ErrAlreadyExists) {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestRegisterRefusesBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, tc := range []struct {
		name, phone, password, field string
	}{
		{"no plus", "79516519741", password, "phone"},
		{"letters", "+7951651974a", password, "phone"},
		{"too short phone", "+7951", password, "phone"},
		{"short password", phone, "abc123", "password"},
		{"no digit", phone, "abcdefghij", "password"},
		{"no letter", phone, "1234567890", "password"},
		{"phone as password", phone, "79516519741a", "password"},
	} {
		_, err := h.svc.Register(t.Context(), app.Registration{Phone: tc.phone, Password: tc.password})
		if got := fieldOf(err); got != tc.field {
			t.Errorf("%s: error %v names %q, want %q", tc.name, err, got, tc.field)
		}
	}
	if len(h.idp.users) != 0 {
		t.Fatal("a refused registration created a user")
	}
}

// TestRegisterCompensates checks that a user is never left without its
// AccountRegistered event.
func TestRegisterCompensates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(h *harness)
		want  error
	}{
		{"publish fails", func(h *harness) { h.events.fail = errors.New("kafka down") }, app.ErrUnavailable},
		{"role grant fails", func(h *harness) { h.idp.fail["GrantRole"] = app.ErrUnavailable }, app.ErrUnavailable},
		{"password refused", func(h *harness) {
			h.idp.fail["SetPassword"] = &app.FieldError{Field: "password", Reason: "refused"}
		}, app.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			tc.setup(h)
			_, err := h.svc.Register(t.Context(), app.Registration{Phone: phone, Password: password})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if len(h.idp.users) != 0 || len(h.idp.deleted) != 1 {
				t.Fatalf("user left behind: users %d, deleted %v", len(h.idp.users), h.idp.deleted)
			}
		})
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.register(t, phone)
	if _, err := h.svc.Login(t.Context(), phone, password, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	_, wrong := h.svc.Login(t.Context(), phone, "wrong password 1", "192.0.2.1")
	_, unknown := h.svc.Login(t.Context(), "+79990000000", password, "192.0.2.1")
	if !errors.Is(wrong, app.ErrInvalidCredentials) || !errors.Is(unknown, app.ErrInvalidCredentials) {
		t.Fatalf("wrong password %v, unknown user %v", wrong, unknown)
	}
	if err := h.idp.SetEnabled(t.Context(), id, false); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Login(t.Context(), phone, password, "192.0.2.1"); !errors.Is(err, app.ErrAccountDisabled) {
		t.Fatalf("disabled: %v", err)
	}
}

// TestSetSuspended: a suspended account's user cannot log in until the
// account is reinstated; a user that is gone is nothing to do, an
// unreachable identity provider an error to retry.
func TestSetSuspended(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.register(t, phone)
	for range 2 { // redelivered events change nothing more
		if err := h.svc.SetSuspended(t.Context(), id, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.svc.Login(t.Context(), phone, password, "192.0.2.1"); !errors.Is(err, app.ErrAccountDisabled) {
		t.Fatalf("login while suspended: %v", err)
	}
	if err := h.svc.SetSuspended(t.Context(), id, false); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Login(t.Context(), phone, password, "192.0.2.1"); err != nil {
		t.Fatalf("login after reinstatement: %v", err)
	}
	if err := h.svc.SetSuspended(t.Context(), "5f0c8d3e-0000-4000-8000-00000000dead", true); err != nil {
		t.Errorf("suspension of an unknown user: %v", err)
	}
	h.idp.fail["SetEnabled"] = app.ErrUnavailable
	if err := h.svc.SetSuspended(t.Context(), id, true); !errors.Is(err, app.ErrUnavailable) {
		t.Errorf("suspension with the identity provider down: %v", err)
	}
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withLimits("3/1m", "5/1m"))
	h.register(t, phone)
	for i := range 3 {
		if _, err := h.svc.Login(t.Context(), phone, "wrong password 1", "192.0.2.1"); !errors.Is(err, app.ErrInvalidCredentials) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, err := h.svc.Login(t.Context(), phone, password, "192.0.2.1")
	var rl *app.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 || rl.RetryAfter > 20*time.Second {
		t.Fatalf("fourth attempt per phone: %v", err)
	}
	// Another phone from the same address: the IP still has budget (5),
	// counting the 4 charged so far… one left.
	if _, err := h.svc.Login(t.Context(), "+79990000001", password, "192.0.2.1"); !errors.Is(err, app.ErrInvalidCredentials) {
		t.Fatalf("other phone: %v", err)
	}
	if _, err := h.svc.Login(t.Context(), "+79990000002", password, "192.0.2.1"); !errors.Is(err, app.ErrRateLimited) {
		t.Fatalf("per-IP limit: %v", err)
	}
	// A refill period later the phone may try again.
	h.clock.Advance(time.Minute)
	if _, err := h.svc.Login(t.Context(), phone, password, "192.0.2.9"); err != nil {
		t.Fatalf("after refill: %v", err)
	}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.register(t, phone)
	c := app.Caller{ID: id, Username: phone}
	for _, tc := range []struct {
		name, current, next, field string
	}{
		{"wrong current", "nope nope 1", "new password 2", "current_password"},
		{"weak new", password, "short1", "new_password"},
		{"same", password, password, "new_password"},
		{"contains phone", password, "x79516519741", "new_password"},
	} {
		if err := h.svc.ChangePassword(t.Context(), c, tc.current, tc.next); fieldOf(err) != tc.field {
			t.Errorf("%s: %v, want a field error on %s", tc.name, err, tc.field)
		}
	}
	if err := h.svc.ChangePassword(t.Context(), c, password, "new password 2"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Login(t.Context(), phone, "new password 2", ""); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
}

func TestDeleteMe(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.register(t, phone)
	h.events.fail = errors.New("kafka down")
	if err := h.svc.DeleteMe(t.Context(), id); !errors.Is(err, app.ErrUnavailable) {
		t.Fatalf("publish failing: %v", err)
	}
	if _, err := h.idp.User(t.Context(), id); err != nil {
		t.Fatal("the user was deleted although the event was not published")
	}
	h.events.fail = nil
	if err := h.svc.DeleteMe(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	// Retrying after success is harmless (idempotent consumers).
	if err := h.svc.DeleteMe(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if len(h.events.deleted) != 2 || h.events.deleted[0] != id {
		t.Fatalf("events: %v", h.events.deleted)
	}
}

func TestAdmin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	admin := h.register(t, "+70000000001")
	var ids []string
	for _, p := range []string{"+70000000002", "+70000000003", "+70000000004"} {
		ids = append(ids, h.register(t, p))
	}
	ctx := t.Context()

	// Paging: 4 users, pages of 3.
	page, err := h.svc.ListUsers(ctx, app.UserFilter{PageSize: 3})
	if err != nil || len(page.Users) != 3 || page.NextPageToken == "" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	page, err = h.svc.ListUsers(ctx, app.UserFilter{PageSize: 3, PageToken: page.NextPageToken})
	if err != nil || len(page.Users) != 1 || page.NextPageToken != "" {
		t.Fatalf("second page: %+v %v", page, err)
	}
	if _, err := h.svc.ListUsers(ctx, app.UserFilter{PageToken: "garbage"}); fieldOf(err) != "page_token" {
		t.Fatalf("bad page token: %v", err)
	}

	for _, tc := range []struct {
		name string
		do   func() error
		want error
	}{
		{"disable self", func() error { _, err := h.svc.SetUserEnabled(ctx, admin, admin, false, ""); return err }, app.ErrPrecondition},
		{"delete self", func() error { return h.svc.DeleteUser(ctx, admin, admin) }, app.ErrPrecondition},
		{"revoke own admin", func() error { _, err := h.svc.ChangeRole(ctx, admin, admin, app.RoleAdmin, false); return err }, app.ErrPrecondition},
		{"unknown role", func() error { _, err := h.svc.ChangeRole(ctx, admin, ids[0], "root", true); return err }, app.ErrInvalid},
		{"get unknown", func() error { _, err := h.svc.GetUser(ctx, "00000000-0000-4000-8000-999999999999"); return err }, app.ErrNotFound},
		{"delete unknown", func() error { return h.svc.DeleteUser(ctx, admin, "00000000-0000-4000-8000-999999999999") }, app.ErrNotFound},
		{"weak reset", func() error { return h.svc.ResetPassword(ctx, admin, ids[0], "password", false) }, app.ErrInvalid},
	} {
		if err := tc.do(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}

	u, err := h.svc.SetUserEnabled(ctx, admin, ids[0], false, "spam")
	if err != nil || u.Enabled {
		t.Fatalf("disable: %+v %v", u, err)
	}
	u, err = h.svc.ChangeRole(ctx, admin, ids[1], app.RoleAdmin, true)
	if err != nil || len(u.Roles) != 2 {
		t.Fatalf("grant: %+v %v", u, err)
	}
	if err := h.svc.DeleteUser(ctx, admin, ids[2]); err != nil {
		t.Fatal(err)
	}
	if len(h.events.deleted) != 1 || h.events.deleted[0] != ids[2] {
		t.Fatalf("AccountDeleted: %v", h.events.deleted)
	}
}

func TestValidatePhone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		phone string
		ok    bool
	}{
		{"+79516519741", true},
		{"+12025550123", true},
		{"+491234567", true},
		{"+123456789012345", true},
		{"+1234567890123456", false},
		{"79516519741", false},
		{"+09516519741", false},
		{"+7 951 651 97 41", false},
		{"", false},
	} {
		if err := app.ValidatePhone("phone", tc.phone); (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.phone, err)
		}
	}
}

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		password, username string
		ok                 bool
	}{
		{"abcdefg1", phone, true},
		{"пароль123", phone, true},
		{"abcdef1", phone, false},
		{"abcdefgh", phone, false},
		{"12345678", phone, false},
		{"my79516519741", phone, false},
		{"Admin12345", "admin", false},
		{"x1234567a", "admin", true},
	} {
		if err := app.ValidatePassword("password", tc.password, tc.username); (err == nil) != tc.ok {
			t.Errorf("%q for %q: %v", tc.password, tc.username, err)
		}
	}
	long := make([]byte, app.MaxPasswordLen+1)
	for i := range long {
		long[i] = 'a'
	}
	long[0] = '1'
	if err := app.ValidatePassword("password", string(long), phone); err == nil {
		t.Error("129 characters accepted")
	}
}

func TestSplitName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, first, last, name string }{
		{"", "", "", ""},
		{"Ivan", "Ivan", "", "Ivan"},
		{" Ivan  Petrov ", "Ivan", "Petrov", "Ivan Petrov"},
		{"Mary Ann Smith", "Mary", "Ann Smith", "Mary Ann Smith"},
	} {
		f, l := app.SplitName(tc.in)
		if f != tc.first || l != tc.last {
			t.Errorf("%q: %q %q", tc.in, f, l)
		}
		if got := (app.User{FirstName: f, LastName: l}).Name(); got != tc.name {
			t.Errorf("%q: Name() = %q, want %q", tc.in, got, tc.name)
		}
	}
}
