package clientip_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/comfortech/platform/gateways/auth/internal/clientip"
)

func TestIP(t *testing.T) {
	t.Parallel()
	r, err := clientip.New([]string{"10.0.0.0/8", "192.0.2.7", " "})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"direct", "198.51.100.1:5000", nil, "198.51.100.1"},
		{"untrusted peer's header ignored", "198.51.100.1:5000", []string{"203.0.113.9"}, "198.51.100.1"},
		{"trusted proxy", "10.1.2.3:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"spoofed left entries ignored", "10.1.2.3:5000", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9"},
		{"chain of trusted proxies", "10.1.2.3:5000", []string{"203.0.113.9, 192.0.2.7", "10.9.9.9"}, "203.0.113.9"},
		{"garbled hop", "10.1.2.3:5000", []string{"203.0.113.9, junk"}, "10.1.2.3"},
		{"trusted proxy without header", "192.0.2.7:1", nil, "192.0.2.7"},
		{"ipv6", "[2001:db8::1]:443", nil, "2001:db8::1"},
		{"v4-mapped", "[::ffff:198.51.100.1]:1", nil, "198.51.100.1"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		if got := r.IP(req); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := clientip.New([]string{"not-an-ip"}); err == nil {
		t.Error("a bad proxy address was accepted")
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	r, _ := clientip.New(nil)
	var got string
	h := r.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) { got = clientip.From(req.Context()) }))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "198.51.100.1:5000"
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got != "198.51.100.1" {
		t.Fatalf("context holds %q", got)
	}
}
