package authgw_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	authgw "github.com/comfortech/platform/gateways/auth"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// TestGateway runs the whole gateway over HTTP against the embedded
// identity provider and an embedded Kafka, through every use case and
// every bad-input and abuse rule of the API.
func TestGateway(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	g := s.start(t, authgw.Config{})
	ph := &phones{base: 9_000_000_000}

	// The parallel subtests run within this group, so checkLogs sees them all.
	t.Run("group", func(t *testing.T) {
		t.Run("life cycle", func(t *testing.T) { t.Parallel(); testLifeCycle(t, s, g, ph) })
		t.Run("bad input", func(t *testing.T) { t.Parallel(); testBadInput(t, s, g, ph) })
		t.Run("no enumeration", func(t *testing.T) { t.Parallel(); testNoEnumeration(t, s, g, ph) })
		t.Run("admin", func(t *testing.T) { t.Parallel(); testAdmin(t, s, g, ph) })
		t.Run("authorization", func(t *testing.T) { t.Parallel(); testAuthorization(t, s, g, ph) })
		t.Run("otp", func(t *testing.T) { t.Parallel(); testOTP(t, s, g, ph) })
		t.Run("password", func(t *testing.T) { t.Parallel(); testChangePassword(t, s, g, ph) })
		t.Run("delete me", func(t *testing.T) { t.Parallel(); testDeleteMe(t, s, g, ph) })
		t.Run("rate limits", func(t *testing.T) { t.Parallel(); testRateLimits(t, s, ph) })
		t.Run("otp expiry", func(t *testing.T) { t.Parallel(); testOTPExpiry(t, s, ph) })
		t.Run("docs and ops", func(t *testing.T) { t.Parallel(); testDocsAndOps(t, g) })
	})
	t.Run("no secrets in logs", s.checkLogs)
}

// newStack starts the identity provider and Kafka and a log observer that
// records everything from debug up.
func newStack(t testing.TB) *stack {
	t.Helper()
	idpURL, secret, adminPassword := startIdP(t)
	cluster := kafkatest.NewCluster(t)
	core, logs := observer.New(zapcore.DebugLevel)
	return &stack{idpURL: idpURL, secret: secret, adminPassword: adminPassword,
		brokers: cluster.ListenAddrs(), logs: logs, log: zap.New(core)}
}

func testLifeCycle(t *testing.T, s *stack, g *gateway, ph *phones) {
	phone, pw := ph.new(), "first password 1"
	reg := g.do(t, "POST", "/v1/auth/register", "", map[string]string{
		"phone": phone, "password": pw, "name": "Ivan Petrov", "email": "Ivan@Example.com", "locale": "ru", "timezone": "Europe/Moscow"})
	expect(t, "register", reg, 200, "")
	rt := data[tokens](t, reg)
	s.remember(pw, rt.AccessToken, rt.RefreshToken)
	if rt.AccessToken == "" || rt.RefreshToken == "" || rt.TokenType != "Bearer" || rt.ExpiresIn <= 0 || rt.RefreshExpiresIn <= 0 {
		t.Fatalf("register tokens: %+v", rt)
	}

	tk := s.login(t, g, phone, pw)
	me := data[struct{ User user }](t, g.do(t, "GET", "/v1/auth/me", tk.AccessToken, nil)).User
	if me.Username != phone || me.Name != "Ivan Petrov" || me.Email != "ivan@example.com" || !me.Enabled ||
		me.PhoneVerified || strings.Join(me.Roles, ",") != "user" || me.CreateTime == "" {
		t.Fatalf("me: %+v", me)
	}

	// The data service learns of the account from this event.
	m := s.event(t, "comfortech.account.registered.v1", me.ID)
	var ev eventsv1.AccountRegistered
	if _, err := kafka.DecodeEvent(&m, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.GetAccountId() != me.ID || ev.GetPhone() != phone || ev.GetName() != "Ivan Petrov" || ev.GetLocale() != "ru" ||
		ev.GetTimezone() != "Europe/Moscow" || m.Header(kafka.HeaderSource) != "/gateways/auth" {
		t.Fatalf("AccountRegistered: %v %v", &ev, m.Headers)
	}

	ref := g.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tk.RefreshToken})
	expect(t, "refresh", ref, 200, "")
	nt := data[tokens](t, ref)
	s.remember(nt.AccessToken, nt.RefreshToken)
	if nt.AccessToken == "" || nt.RefreshToken == "" {
		t.Fatalf("refreshed tokens: %+v", nt)
	}
	expect(t, "me with the refreshed token", g.do(t, "GET", "/v1/auth/me", nt.AccessToken, nil), 200, "")

	expect(t, "logout", g.do(t, "POST", "/v1/auth/logout", "", map[string]string{"refresh_token": nt.RefreshToken}), 200, "")
	expect(t, "refresh after logout", g.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": nt.RefreshToken}),
		401, "UNAUTHENTICATED")
	expect(t, "garbage refresh token", g.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": "not.a.token"}),
		401, "UNAUTHENTICATED")
}

func testBadInput(t *testing.T, s *stack, g *gateway, ph *phones) {
	phone := ph.new()
	for _, tc := range []struct {
		name, path, body, field string
	}{
		{"phone without +", "/v1/auth/register", `{"phone":"79516519741","password":"good password 1"}`, "phone"},
		{"phone with letters", "/v1/auth/register", `{"phone":"+7951651974x","password":"good password 1"}`, "phone"},
		{"short password", "/v1/auth/register", `{"phone":"` + phone + `","password":"abc1"}`, "password"},
		{"password without digit", "/v1/auth/register", `{"phone":"` + phone + `","password":"no digits here"}`, "password"},
		{"password is the phone", "/v1/auth/register", `{"phone":"` + phone + `","password":"x` + phone[1:] + `"}`, "password"},
		{"bad email", "/v1/auth/register", `{"phone":"` + phone + `","password":"good password 1","email":"nope"}`, "email"},
		{"empty body", "/v1/auth/register", ``, "phone"},
		{"login without password", "/v1/auth/login", `{"username":"` + phone + `"}`, "password"},
		{"otp bad phone", "/v1/auth/otp/send", `{"phone":"12"}`, "phone"},
		{"otp bad code", "/v1/auth/otp/verify", `{"phone":"` + phone + `","code":"12ab"}`, "code"},
	} {
		a := g.do(t, "POST", tc.path, "", tc.body)
		if a.status != 400 || a.code() != "INVALID_ARGUMENT" || a.field() != tc.field {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.name, a.status, a.raw, tc.field)
		}
	}
	for _, tc := range []struct{ name, body, mention string }{
		{"malformed JSON", `{"phone": "+7951`, ""},
		{"wrong type", `{"phone": 79516519741, "password": "good password 1"}`, "phone"},
		{"unknown field", `{"phone": "` + phone + `", "password": "good password 1", "admin": true}`, "admin"},
	} {
		a := g.do(t, "POST", "/v1/auth/register", "", tc.body)
		if a.status != 400 || a.code() != "INVALID_ARGUMENT" || !strings.Contains(a.env.Error.Message, tc.mention) {
			t.Errorf("%s: %d %s, want 400 mentioning %q", tc.name, a.status, a.raw, tc.mention)
		}
	}

	s.register(t, g, phone, "good password 1")
	dup := g.do(t, "POST", "/v1/auth/register", "", map[string]string{"phone": phone, "password": "other password 2"})
	expect(t, "duplicate phone", dup, 409, "ALREADY_EXISTS")
	if dup.env.Error.Message != "phone already registered" {
		t.Errorf("duplicate message %q", dup.env.Error.Message)
	}
}

// testNoEnumeration checks that a wrong password and an unknown user get
// the same answer.
func testNoEnumeration(t *testing.T, s *stack, g *gateway, ph *phones) {
	phone := ph.new()
	s.register(t, g, phone, "right password 1")
	wrong := g.do(t, "POST", "/v1/auth/login", "", map[string]string{"username": phone, "password": "wrong password 1"})
	unknown := g.do(t, "POST", "/v1/auth/login", "", map[string]string{"username": ph.new(), "password": "wrong password 1"})
	s.remember("wrong password 1")
	expect(t, "wrong password", wrong, 401, "UNAUTHENTICATED")
	expect(t, "unknown user", unknown, 401, "UNAUTHENTICATED")
	wrong.env.RequestID, unknown.env.RequestID = "", ""
	if w, u := mustJSON(t, wrong.env), mustJSON(t, unknown.env); w != u {
		t.Fatalf("answers differ:\n%s\n%s", w, u)
	}
	if wrong.env.Error.Message != "invalid phone or password" {
		t.Errorf("message %q", wrong.env.Error.Message)
	}
}

func testAdmin(t *testing.T, s *stack, g *gateway, ph *phones) {
	admin := s.login(t, g, "admin", s.adminPassword)
	phone, pw := ph.new(), "user password 1"
	utk := s.register(t, g, phone, pw)
	me := data[struct{ User user }](t, g.do(t, "GET", "/v1/auth/me", utk.AccessToken, nil)).User
	id := me.ID

	// Search by part of the phone; paging over everything.
	list := data[struct {
		Items         []user
		NextPageToken string `json:"next_page_token"`
	}](t, g.do(t, "GET", "/v1/admin/users?search="+phone[len(phone)-6:], admin.AccessToken, nil))
	if len(list.Items) != 1 || list.Items[0].ID != id || strings.Join(list.Items[0].Roles, ",") != "user" {
		t.Fatalf("search: %+v", list)
	}
	page := data[struct {
		Items         []user
		NextPageToken string `json:"next_page_token"`
	}](t, g.do(t, "GET", "/v1/admin/users?page_size=1", admin.AccessToken, nil))
	if len(page.Items) != 1 || page.NextPageToken == "" {
		t.Fatalf("first page of 1: %+v", page)
	}
	next := g.do(t, "GET", "/v1/admin/users?page_size=1&page_token="+page.NextPageToken, admin.AccessToken, nil)
	if p2 := data[struct{ Items []user }](t, next); len(p2.Items) != 1 || p2.Items[0].ID == page.Items[0].ID {
		t.Fatalf("second page: %+v", p2)
	}
	expect(t, "bad page token", g.do(t, "GET", "/v1/admin/users?page_token=zzz", admin.AccessToken, nil), 400, "INVALID_ARGUMENT")

	got := data[struct{ User user }](t, g.do(t, "GET", "/v1/admin/users/"+id, admin.AccessToken, nil)).User
	if got.Username != phone {
		t.Fatalf("get: %+v", got)
	}
	expect(t, "get unknown", g.do(t, "GET", "/v1/admin/users/00000000-0000-4000-8000-000000000000", admin.AccessToken, nil), 404, "NOT_FOUND")
	expect(t, "get bad id", g.do(t, "GET", "/v1/admin/users/nope", admin.AccessToken, nil), 400, "INVALID_ARGUMENT")

	// Disable: login refused with a clear message, the old session cannot refresh.
	dis := data[struct{ User user }](t, g.do(t, "POST", "/v1/admin/users/"+id+":disable", admin.AccessToken, map[string]string{"reason": "test"}))
	if dis.User.Enabled {
		t.Fatal("disable answered an enabled user")
	}
	denied := g.do(t, "POST", "/v1/auth/login", "", map[string]string{"username": phone, "password": pw})
	expect(t, "disabled login", denied, 403, "PERMISSION_DENIED")
	if denied.env.Error.Message != "account disabled" {
		t.Errorf("disabled message %q", denied.env.Error.Message)
	}
	if a := g.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": utk.RefreshToken}); a.status != 401 && a.status != 403 {
		t.Fatalf("refresh of a disabled user: %d %s", a.status, a.raw)
	}
	en := data[struct{ User user }](t, g.do(t, "POST", "/v1/admin/users/"+id+":enable", admin.AccessToken, map[string]string{}))
	if !en.User.Enabled {
		t.Fatal("enable answered a disabled user")
	}
	// Disabling ended the sessions: enabling does not bring them back.
	expect(t, "refresh of a session ended by disable", g.do(t, "POST", "/v1/auth/refresh", "",
		map[string]string{"refresh_token": utk.RefreshToken}), 401, "UNAUTHENTICATED")
	s.login(t, g, phone, pw)

	// Reset password, temporary or not.
	expect(t, "weak reset", g.do(t, "POST", "/v1/admin/users/"+id+":reset-password", admin.AccessToken,
		map[string]any{"new_password": "weak"}), 400, "INVALID_ARGUMENT")
	newPW := "reset password 2"
	s.remember(newPW)
	expect(t, "reset", g.do(t, "POST", "/v1/admin/users/"+id+":reset-password", admin.AccessToken,
		map[string]any{"new_password": newPW}), 200, "")
	expect(t, "old password after reset", g.do(t, "POST", "/v1/auth/login", "", map[string]string{"username": phone, "password": pw}), 401, "")
	s.login(t, g, phone, newPW)
	expect(t, "temporary reset", g.do(t, "POST", "/v1/admin/users/"+id+":reset-password", admin.AccessToken,
		map[string]any{"new_password": newPW, "temporary": true}), 200, "")
	expect(t, "login with a temporary password", g.do(t, "POST", "/v1/auth/login", "", map[string]string{"username": phone, "password": newPW}),
		400, "FAILED_PRECONDITION")
	expect(t, "reset back", g.do(t, "POST", "/v1/admin/users/"+id+":reset-password", admin.AccessToken,
		map[string]any{"new_password": newPW}), 200, "")

	// Roles: grant admin, the user's next token can list users; revoke.
	granted := data[struct{ User user }](t, g.do(t, "PUT", "/v1/admin/users/"+id+"/roles/admin", admin.AccessToken, nil)).User
	if strings.Join(granted.Roles, ",") != "admin,user" {
		t.Fatalf("after grant: %v", granted.Roles)
	}
	expect(t, "grant again (idempotent)", g.do(t, "PUT", "/v1/admin/users/"+id+"/roles/admin", admin.AccessToken, nil), 200, "")
	promoted := s.login(t, g, phone, newPW)
	expect(t, "new admin lists users", g.do(t, "GET", "/v1/admin/users", promoted.AccessToken, nil), 200, "")
	revoked := data[struct{ User user }](t, g.do(t, "DELETE", "/v1/admin/users/"+id+"/roles/admin", admin.AccessToken, nil)).User
	if strings.Join(revoked.Roles, ",") != "user" {
		t.Fatalf("after revoke: %v", revoked.Roles)
	}
	demoted := s.login(t, g, phone, newPW)
	expect(t, "demoted user lists users", g.do(t, "GET", "/v1/admin/users", demoted.AccessToken, nil), 403, "PERMISSION_DENIED")
	expect(t, "unknown role", g.do(t, "PUT", "/v1/admin/users/"+id+"/roles/root", admin.AccessToken, nil), 400, "INVALID_ARGUMENT")

	// An admin cannot lock themselves out.
	self := data[struct{ User user }](t, g.do(t, "GET", "/v1/auth/me", admin.AccessToken, nil)).User
	expect(t, "disable self", g.do(t, "POST", "/v1/admin/users/"+self.ID+":disable", admin.AccessToken, map[string]string{}), 400, "FAILED_PRECONDITION")

	// Delete: the account goes with an event.
	expect(t, "delete", g.do(t, "DELETE", "/v1/admin/users/"+id, admin.AccessToken, nil), 200, "")
	expect(t, "get deleted", g.do(t, "GET", "/v1/admin/users/"+id, admin.AccessToken, nil), 404, "NOT_FOUND")
	s.event(t, "comfortech.account.deleted.v1", id)
	expect(t, "login of a deleted user", g.do(t, "POST", "/v1/auth/login", "", map[string]string{"username": phone, "password": newPW}), 401, "")
}

func testAuthorization(t *testing.T, s *stack, g *gateway, ph *phones) {
	utk := s.register(t, g, ph.new(), "user password 1")
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/admin/users"},
		{"GET", "/v1/admin/users/00000000-0000-4000-8000-000000000000"},
		{"POST", "/v1/admin/users/00000000-0000-4000-8000-000000000000:disable"},
		{"DELETE", "/v1/admin/users/00000000-0000-4000-8000-000000000000"},
		{"PUT", "/v1/admin/users/00000000-0000-4000-8000-000000000000/roles/admin"},
	} {
		var body any
		if tc.method == "POST" {
			body = map[string]string{}
		}
		expect(t, "user token on "+tc.path, g.do(t, tc.method, tc.path, utk.AccessToken, body), 403, "PERMISSION_DENIED")
		anon := g.do(t, tc.method, tc.path, "", body)
		expect(t, "anonymous on "+tc.path, anon, 401, "UNAUTHENTICATED")
		if anon.header.Get("WWW-Authenticate") == "" {
			t.Errorf("anonymous on %s: no WWW-Authenticate", tc.path)
		}
	}
	expect(t, "anonymous me", g.do(t, "GET", "/v1/auth/me", "", nil), 401, "UNAUTHENTICATED")
	expect(t, "forged token", g.do(t, "GET", "/v1/auth/me", "eyJhbGciOiJub25lIn0.e30.", nil), 401, "UNAUTHENTICATED")
	expect(t, "password anonymous", g.do(t, "POST", "/v1/auth/password", "", map[string]string{}), 401, "UNAUTHENTICATED")
}

func testOTP(t *testing.T, s *stack, g *gateway, ph *phones) {
	phone := ph.new()
	tk := s.register(t, g, phone, "otp password 1")
	sent := data[struct {
		ExpiresIn   int `json:"expires_in"`
		ResendAfter int `json:"resend_after"`
	}](t, g.do(t, "POST", "/v1/auth/otp/send", "", map[string]string{"phone": phone}))
	if sent.ExpiresIn != 300 || sent.ResendAfter != 30 {
		t.Fatalf("send: %+v", sent)
	}
	msg, ok := g.sink.Last(phone)
	if !ok || len(msg.Code) != 6 {
		t.Fatalf("dev sink: %+v %v", msg, ok)
	}
	s.remember(msg.Code)
	early := g.do(t, "POST", "/v1/auth/otp/send", "", map[string]string{"phone": phone})
	expect(t, "early resend", early, 429, "RESOURCE_EXHAUSTED")
	if ra, _ := strconv.Atoi(early.header.Get("Retry-After")); ra < 1 || ra > 30 {
		t.Fatalf("Retry-After %q", early.header.Get("Retry-After"))
	}

	wrong := "000000"
	if msg.Code == wrong {
		wrong = "111111"
	}
	a := g.do(t, "POST", "/v1/auth/otp/verify", "", map[string]string{"phone": phone, "code": wrong})
	if a.status != 400 || a.field() != "code" {
		t.Fatalf("wrong code: %d %s", a.status, a.raw)
	}
	expect(t, "right code", g.do(t, "POST", "/v1/auth/otp/verify", "", map[string]string{"phone": phone, "code": msg.Code}), 200, "")
	if a := g.do(t, "POST", "/v1/auth/otp/verify", "", map[string]string{"phone": phone, "code": msg.Code}); a.status != 400 || a.field() != "code" {
		t.Fatalf("used code: %d %s", a.status, a.raw)
	}
	me := data[struct{ User user }](t, g.do(t, "GET", "/v1/auth/me", tk.AccessToken, nil)).User
	if !me.PhoneVerified {
		t.Fatalf("phone not verified: %+v", me)
	}

	// An unregistered phone: the same answer, no SMS, no code that works.
	stranger := ph.new()
	expect(t, "send to a stranger", g.do(t, "POST", "/v1/auth/otp/send", "", map[string]string{"phone": stranger}), 200, "")
	if _, ok := g.sink.Last(stranger); ok {
		t.Fatal("a code went to an unregistered phone")
	}
}

// testOTPExpiry runs its own gateway with one-second codes and two attempts.
func testOTPExpiry(t *testing.T, s *stack, ph *phones) {
	g := s.start(t, authgw.Config{OTPTTL: time.Second, OTPMaxAttempts: 2, OTPResendInterval: time.Millisecond})
	phone := ph.new()
	s.register(t, g, phone, "otp password 1")
	send := func() string {
		expect(t, "send", g.do(t, "POST", "/v1/auth/otp/send", "", map[string]string{"phone": phone}), 200, "")
		m, _ := g.sink.Last(phone)
		s.remember(m.Code)
		return m.Code
	}
	verify := func(code string) answer {
		return g.do(t, "POST", "/v1/auth/otp/verify", "", map[string]string{"phone": phone, "code": code})
	}
	code := send()
	time.Sleep(1100 * time.Millisecond)
	if a := verify(code); a.status != 400 || a.field() != "code" {
		t.Fatalf("expired code: %d %s", a.status, a.raw)
	}
	code = send()
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	verify(wrong)
	verify(wrong) // the second wrong attempt burns the code
	if a := verify(code); a.status != 400 || a.field() != "code" {
		t.Fatalf("burnt code accepted: %d %s", a.status, a.raw)
	}
}

func testChangePassword(t *testing.T, s *stack, g *gateway, ph *phones) {
	phone, pw, next := ph.new(), "old password 1", "new password 2"
	s.remember(next)
	tk := s.register(t, g, phone, pw)
	a := g.do(t, "POST", "/v1/auth/password", tk.AccessToken, map[string]string{"current_password": "wrong one 1", "new_password": next})
	if a.status != 400 || a.field() != "current_password" {
		t.Fatalf("wrong current: %d %s", a.status, a.raw)
	}
	a = g.do(t, "POST", "/v1/auth/password", tk.AccessToken, map[string]string{"current_password": pw, "new_password": "weak"})
	if a.status != 400 || a.field() != "new_password" {
		t.Fatalf("weak new: %d %s", a.status, a.raw)
	}
	expect(t, "change", g.do(t, "POST", "/v1/auth/password", tk.AccessToken, map[string]string{"current_password": pw, "new_password": next}), 200, "")
	expect(t, "old password", g.do(t, "POST", "/v1/auth/login", "", map[string]string{"username": phone, "password": pw}), 401, "")
	s.login(t, g, phone, next)
}

func testDeleteMe(t *testing.T, s *stack, g *gateway, ph *phones) {
	phone, pw := ph.new(), "delete password 1"
	tk := s.register(t, g, phone, pw)
	me := data[struct{ User user }](t, g.do(t, "GET", "/v1/auth/me", tk.AccessToken, nil)).User
	expect(t, "delete me", g.do(t, "DELETE", "/v1/auth/me", tk.AccessToken, nil), 200, "")
	s.event(t, "comfortech.account.deleted.v1", me.ID)
	expect(t, "login after delete", g.do(t, "POST", "/v1/auth/login", "", map[string]string{"username": phone, "password": pw}), 401, "")
	// The phone is free again.
	s.register(t, g, phone, pw)
}

// testRateLimits runs its own gateway with tight limits that trusts the
// loopback proxy, so X-Forwarded-For gives each request its client IP.
func testRateLimits(t *testing.T, s *stack, ph *phones) {
	g := s.start(t, authgw.Config{RateLimitPerPhone: "3/1m", RateLimitPerIP: "5/1m", TrustedProxies: []string{"127.0.0.1"}})
	login := func(phone, ip string) answer {
		return g.do(t, "POST", "/v1/auth/login", "", map[string]string{"username": phone, "password": "whatever 1"}, "X-Forwarded-For", ip)
	}
	s.remember("whatever 1")

	// Per phone: three attempts from three addresses, the fourth is refused.
	victim := ph.new()
	for i := range 3 {
		expect(t, "attempt", login(victim, "198.51.100."+strconv.Itoa(i+1)), 401, "")
	}
	a := login(victim, "198.51.100.99")
	expect(t, "fourth attempt on one phone", a, 429, "RESOURCE_EXHAUSTED")
	if ra, _ := strconv.Atoi(a.header.Get("Retry-After")); ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q", a.header.Get("Retry-After"))
	}

	// Per IP: five phones from one address, the sixth is refused.
	for range 5 {
		expect(t, "attempt", login(ph.new(), "203.0.113.7"), 401, "")
	}
	expect(t, "sixth attempt from one address", login(ph.new(), "203.0.113.7"), 429, "RESOURCE_EXHAUSTED")
	expect(t, "another address", login(ph.new(), "203.0.113.8"), 401, "")

	// Registration has its own budget: the first succeeds, the next two are
	// duplicates, the fourth is refused before it reaches the provider.
	phone := ph.new()
	for i, want := range []int{200, 409, 409, 429} {
		a := g.do(t, "POST", "/v1/auth/register", "", map[string]string{"phone": phone, "password": "good password 1"},
			"X-Forwarded-For", "192.0.2."+strconv.Itoa(i+1))
		if a.status != want {
			t.Fatalf("registration %d: %d %s, want %d", i+1, a.status, a.raw, want)
		}
		if a.status == 200 {
			tk := data[tokens](t, a)
			s.remember(tk.AccessToken, tk.RefreshToken)
		}
	}
	s.remember("good password 1")
}

func testDocsAndOps(t *testing.T, g *gateway) {
	resp, err := g.client.Get(g.base + "/docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("docs: %d", resp.StatusCode)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := g.client.Get(g.ops + p)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
