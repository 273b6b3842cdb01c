package providers_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
