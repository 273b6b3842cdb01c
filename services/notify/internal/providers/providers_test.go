package providers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/comfortech/platform/services/notify/internal/app"
	"github.com/comfortech/platform/services/notify/internal/providers"
)

// TestWebhookRotation: during a rotation both secrets sign, so receivers
// holding either verify the delivery (with the reference library).
func TestWebhookRotation(t *testing.T) {
	t.Parallel()
	oldS, newS := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_bm90LWEtcmVhbC1zZWNyZXQtYnV0LWxvbmc="
	type req struct {
		h    http.Header
		body []byte
	}
	reqs := make(chan req, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs <- req{r.Header.Clone(), must(io.ReadAll(r.Body))}
	}))
	defer srv.Close()
	w := providers.NewWebhook(providers.GuardedClient(true, 5*time.Second))
	res := w.Send(context.Background(), &app.Message{ID: "msg_1", Recipient: srv.URL, JSON: []byte(`{"a":1}`), Secrets: []string{newS, oldS}})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	r := <-reqs
	for _, s := range []string{oldS, newS} {
		wh := must(standardwebhooks.NewWebhook(s))
		if err := wh.Verify(r.body, r.h); err != nil {
			t.Errorf("verify with %s: %v", s[:10], err)
		}
	}
}

// TestSSRFGuard: private, loopback and link-local addresses are refused
// at dial time unless allowed; 410 says Gone; 429 carries Retry-After.
func TestSSRFGuard(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	status.Store(http.StatusGone)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	guarded := providers.NewWebhook(providers.GuardedClient(false, 5*time.Second))
	res := guarded.Send(context.Background(), &app.Message{ID: "m", Recipient: srv.URL, JSON: []byte(`{}`)})
	if !errors.Is(res.Err, providers.ErrForbiddenAddress) || !res.Permanent {
		t.Errorf("loopback: %+v", res)
	}
	for _, h := range []string{"127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "localhost"} {
		if providers.CheckHost(h, false) == nil {
			t.Errorf("%s allowed", h)
		}
	}
	if providers.CheckHost("93.184.216.34", false) != nil {
		t.Error("public address refused")
	}
	open := providers.NewWebhook(providers.GuardedClient(true, 5*time.Second))
	if res := open.Send(context.Background(), &app.Message{ID: "m", Recipient: srv.URL, JSON: []byte(`{}`)}); !res.Gone || res.Status != 410 {
		t.Errorf("410: %+v", res)
	}
	status.Store(http.StatusTooManyRequests)
	if res := open.Send(context.Background(), &app.Message{ID: "m", Recipient: srv.URL, JSON: []byte(`{}`)}); res.Permanent || res.RetryAfter != 7*time.Second {
		t.Errorf("429: %+v", res)
	}
}

// TestWebhookAuth: deliveries carry the receiver's authentication beside
// the signature: basic, a static bearer token, or an OAuth2
// client-credentials token (RFC 6749 §4.4) fetched once and reused, and
// fetched again after the receiver answers 401.
func TestWebhookAuth(t *testing.T) {
	t.Parallel()
	var grants atomic.Int32
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "client_credentials" || r.Form.Get("scope") != "events" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		if user != "crm" || pass != "s3cret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		n := grants.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":3600}`, n)
	}))
	defer idp.Close()
	auths := make(chan string, 10)
	var reject atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths <- r.Header.Get("Authorization")
		if reject.CompareAndSwap(true, false) {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	w := providers.NewWebhook(providers.GuardedClient(true, 5*time.Second))
	send := func(a *app.WebhookAuth) app.Result {
		return w.Send(context.Background(), &app.Message{ID: "m", Recipient: srv.URL, JSON: []byte(`{}`), Secrets: []string{"whsec_AA=="}, Auth: a})
	}
	oauth := &app.WebhookAuth{OAuth2: &app.OAuth2Auth{TokenURL: idp.URL, ClientID: "crm", ClientSecret: "s3cret", Scopes: []string{"events"}}}
	for _, c := range []struct {
		name   string
		auth   *app.WebhookAuth
		reject bool
		want   string
	}{
		{"none", nil, false, ""},
		{"basic", &app.WebhookAuth{Basic: &app.BasicAuth{Username: "crm", Password: "pw"}}, false, "Basic Y3JtOnB3"},
		{"bearer", &app.WebhookAuth{Bearer: &app.BearerAuth{Token: "static"}}, false, "Bearer static"},
		{"oauth2", oauth, false, "Bearer tok-1"},
		{"oauth2 token reused", oauth, true, "Bearer tok-1"},
		{"oauth2 token fetched again after a 401", oauth, false, "Bearer tok-2"},
	} {
		reject.Store(c.reject)
		res := send(c.auth)
		if got := <-auths; got != c.want {
			t.Errorf("%s: Authorization %q, want %q", c.name, got, c.want)
		}
		if c.reject && (res.Err == nil || res.Permanent) {
			t.Errorf("%s: 401 = %+v, want a retry", c.name, res)
		}
		if !c.reject && res.Err != nil {
			t.Errorf("%s: %+v", c.name, res)
		}
	}
	// Wrong client credentials: the token endpoint's 401 is final, and
	// the receiver is not called.
	bad := &app.WebhookAuth{OAuth2: &app.OAuth2Auth{TokenURL: idp.URL, ClientID: "crm", ClientSecret: "wrong", Scopes: []string{"events"}}}
	if res := send(bad); res.Err == nil || !res.Permanent || !strings.Contains(res.Detail, "oauth2 token") {
		t.Errorf("bad client secret: %+v", res)
	}
	if len(auths) != 0 {
		t.Error("the receiver was called without a token")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
