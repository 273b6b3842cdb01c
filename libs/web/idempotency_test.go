package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/web"
)

func TestIdempotency(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	release, slowStarted := make(chan struct{}), make(chan struct{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := runs.Add(1)
		switch r.URL.Path {
		case "/slow":
			close(slowStarted)
			<-release
		case "/fail":
			web.WriteError(w, r, http.ErrHandlerTimeout)
			return
		case "/panic":
			panic("boom")
		}
		w.Header().Set("Location", "/v1/homes/"+string('0'+rune(n)))
		web.WriteData(w, http.StatusCreated, map[string]int32{"run": n})
	})
	withAccount := func(account string) web.Middleware {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), &auth.Principal{Subject: account})))
			})
		}
	}
	idem := web.Idempotency(web.IdempotencyConfig{})
	serve := func(account, method, path, key, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if key != "" {
			req.Header.Set(web.IdempotencyHeader, key)
		}
		rec := httptest.NewRecorder()
		web.Chain(handler, web.Recover(zap.NewNop()), withAccount(account), idem).ServeHTTP(rec, req)
		return rec
	}

	first := serve("a", http.MethodPost, "/v1/homes", "k1", `{"name":"Home"}`)
	again := serve("a", http.MethodPost, "/v1/homes", "k1", `{"name":"Home"}`)
	if first.Code != 201 || again.Code != 201 || again.Body.String() != first.Body.String() ||
		again.Header().Get("Location") != first.Header().Get("Location") || again.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s / %d %s", first.Code, first.Body, again.Code, again.Body)
	}
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times for one key", runs.Load())
	}

	tests := []struct {
		name                       string
		account, method, path, key string
		body                       string
		want                       int
		ran                        bool
	}{
		{"different body is refused", "a", http.MethodPost, "/v1/homes", "k1", `{"name":"Other"}`, http.StatusUnprocessableEntity, false},
		{"another account runs its own", "b", http.MethodPost, "/v1/homes", "k1", `{"name":"Home"}`, http.StatusCreated, true},
		{"another path runs its own", "a", http.MethodPost, "/v1/devices:claim", "k1", `{"name":"Home"}`, http.StatusCreated, true},
		{"no key runs every time", "a", http.MethodPost, "/v1/homes", "", `{}`, http.StatusCreated, true},
		{"other methods are not involved", "a", http.MethodPut, "/v1/homes", "k1", `{}`, http.StatusCreated, true},
		{"overlong key", "a", http.MethodPost, "/v1/homes", strings.Repeat("k", 300), `{}`, http.StatusBadRequest, false},
	}
	for _, tt := range tests {
		before := runs.Load()
		rec := serve(tt.account, tt.method, tt.path, tt.key, tt.body)
		if rec.Code != tt.want || (runs.Load() != before) != tt.ran {
			t.Errorf("%s: status %d (want %d), ran %v (want %v): %s", tt.name, rec.Code, tt.want, runs.Load() != before, tt.ran, rec.Body)
		}
	}

	for _, path := range []string{"/fail", "/panic"} {
		before := runs.Load()
		serve("a", http.MethodPost, path, "k-"+path, `{}`)
		serve("a", http.MethodPost, path, "k-"+path, `{}`)
		if runs.Load()-before != 2 {
			t.Errorf("%s: a server error was replayed instead of retried", path)
		}
	}

	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- serve("a", http.MethodPost, "/slow", "k-slow", `{}`) }()
	<-slowStarted
	if rec := serve("a", http.MethodPost, "/slow", "k-slow", `{}`); rec.Code != http.StatusConflict {
		t.Errorf("a retry during the first request: %d, want 409", rec.Code)
	}
	close(release)
	if rec := <-done; rec.Code != http.StatusCreated {
		t.Fatalf("slow first request: %d", rec.Code)
	}
}
