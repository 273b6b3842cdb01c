package app_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/comfortech/platform/gateways/auth/internal/app"
)

// fakeIdP is an in-memory identity provider with Keycloak's observable
// behaviour for the calls the use cases make. fail injects an error per
// method name.
type fakeIdP struct {
	mu      sync.Mutex
	users   map[string]*fakeUser
	nextID  int
	fail    map[string]error
	deleted []string
}

type fakeUser struct {
	app.User
	password string
	attrs    map[string]string
}

func newFakeIdP() *fakeIdP {
	return &fakeIdP{users: map[string]*fakeUser{}, fail: map[string]error{}}
}

func (f *fakeIdP) err(op string) error { return f.fail[op] }

func (f *fakeIdP) byName(username string) *fakeUser {
	for _, u := range f.users {
		if u.Username == username {
			return u
		}
	}
	return nil
}

func (f *fakeIdP) Login(_ context.Context, username, password string) (app.Tokens, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("Login"); err != nil {
		return app.Tokens{}, err
	}
	u := f.byName(username)
	switch {
	case u == nil:
		return app.Tokens{}, app.ErrInvalidCredentials
	case !u.Enabled:
		return app.Tokens{}, app.ErrAccountDisabled
	case u.password != password:
		return app.Tokens{}, app.ErrInvalidCredentials
	}
	return app.Tokens{AccessToken: "at-" + u.ID, RefreshToken: "rt-" + u.ID, ExpiresIn: 300, RefreshExpiresIn: 1800, TokenType: "Bearer"}, nil
}

func (f *fakeIdP) Refresh(context.Context, string) (app.Tokens, error) {
	return app.Tokens{}, app.ErrInvalidToken
}

func (f *fakeIdP) Logout(context.Context, string) error { return nil }

func (f *fakeIdP) CreateUser(_ context.Context, nu app.NewUser) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("CreateUser"); err != nil {
		return "", err
	}
	if f.byName(nu.Username) != nil {
		return "", &app.ConflictError{Field: "phone"}
	}
	f.nextID++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", f.nextID)
	f.users[id] = &fakeUser{User: app.User{ID: id, Username: nu.Username, FirstName: nu.FirstName, LastName: nu.LastName,
		Email: nu.Email, Enabled: true, CreatedAt: time.Now()}, attrs: map[string]string{}}
	return id, nil
}

func (f *fakeIdP) user(id string) (*fakeUser, error) {
	u, ok := f.users[id]
	if !ok {
		return nil, fmt.Errorf("%w: user %s", app.ErrNotFound, id)
	}
	return u, nil
}

func (f *fakeIdP) SetPassword(_ context.Context, id, password string, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("SetPassword"); err != nil {
		return err
	}
	u, err := f.user(id)
	if err != nil {
		return err
	}
	u.password = password
	return nil
}

func (f *fakeIdP) User(_ context.Context, id string) (app.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.user(id)
	if err != nil {
		return app.User{}, err
	}
	out := u.User
	out.Roles = slices.Clone(u.Roles)
	out.PhoneVerified = u.attrs[app.AttrPhoneVerified] == "true"
	return out, nil
}

func (f *fakeIdP) UserByUsername(ctx context.Context, username string) (app.User, error) {
	f.mu.Lock()
	u := f.byName(username)
	f.mu.Unlock()
	if u == nil {
		return app.User{}, app.ErrNotFound
	}
	return f.User(ctx, u.ID)
}

func (f *fakeIdP) Users(_ context.Context, q app.UserQuery) ([]app.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []app.User
	for _, u := range f.users {
		all = append(all, u.User)
	}
	slices.SortFunc(all, func(a, b app.User) int { return compare(a.ID, b.ID) })
	if q.First >= len(all) {
		return nil, nil
	}
	all = all[q.First:]
	if len(all) > q.Max {
		all = all[:q.Max]
	}
	return all, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (f *fakeIdP) SetEnabled(_ context.Context, id string, enabled bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("SetEnabled"); err != nil {
		return err
	}
	u, err := f.user(id)
	if err != nil {
		return err
	}
	u.Enabled = enabled
	return nil
}

func (f *fakeIdP) SetAttribute(_ context.Context, id, name, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.user(id)
	if err != nil {
		return err
	}
	u.attrs[name] = value
	return nil
}

func (f *fakeIdP) DeleteUser(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.user(id); err != nil {
		return err
	}
	delete(f.users, id)
	f.deleted = append(f.deleted, id)
	return nil
}

func (f *fakeIdP) GrantRole(_ context.Context, id, role string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("GrantRole"); err != nil {
		return err
	}
	u, err := f.user(id)
	if err != nil {
		return err
	}
	if !slices.Contains(u.Roles, role) {
		u.Roles = append(u.Roles, role)
	}
	return nil
}

func (f *fakeIdP) RevokeRole(_ context.Context, id, role string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.user(id)
	if err != nil {
		return err
	}
	u.Roles = slices.DeleteFunc(u.Roles, func(r string) bool { return r == role })
	return nil
}

func (f *fakeIdP) EndSessions(context.Context, string) error { return nil }

// fakeEvents records events; fail makes every publish fail.
type fakeEvents struct {
	mu         sync.Mutex
	registered []app.RegisteredAccount
	deleted    []string
	fail       error
}

func (e *fakeEvents) Registered(_ context.Context, a app.RegisteredAccount) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return e.fail
	}
	e.registered = append(e.registered, a)
	return nil
}

func (e *fakeEvents) Deleted(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return e.fail
	}
	e.deleted = append(e.deleted, id)
	return nil
}

// fakeSender keeps the codes sent.
type fakeSender struct {
	mu    sync.Mutex
	codes map[string][]string
	fail  error
}

func (s *fakeSender) SendCode(_ context.Context, phone, code string, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if s.codes == nil {
		s.codes = map[string][]string{}
	}
	s.codes[phone] = append(s.codes[phone], code)
	return nil
}

func (s *fakeSender) last(phone string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.codes[phone]
	if len(c) == 0 {
		return ""
	}
	return c[len(c)-1]
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
