package auth_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/comfortech/platform/libs/auth"
)

func TestTokenSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ttl      time.Duration // expires_in of issued tokens
		early    time.Duration
		calls    int
		wantHits int64
	}{
		{name: "cached until near expiry", ttl: accessTTL, calls: 5, wantHits: 1},
		{name: "refreshed inside the early window", ttl: 20 * time.Second, early: 30 * time.Second, calls: 3, wantHits: 3},
		{name: "default early window leaves 60 s tokens cached", ttl: 60 * time.Second, calls: 3, wantHits: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			iss := newIssuer(t)
			iss.tokenTTL.Store(int64(tc.ttl / time.Second))
			ts, err := auth.NewTokenSource(auth.ClientCredentialsConfig{
				Issuer: iss.URL, ClientID: svcClientID, ClientSecret: svcClientSec, EarlyRefresh: tc.early,
			})
			if err != nil {
				t.Fatal(err)
			}
			v := newVerifier(t, iss)
			for range tc.calls {
				tok, err := ts.Token()
				if err != nil {
					t.Fatal(err)
				}
				p, err := v.Verify(context.Background(), tok.AccessToken)
				if err != nil {
					t.Fatalf("service token does not verify: %v", err)
				}
				if !p.IsServiceAccount() || p.ClientID != svcClientID {
					t.Errorf("principal %v: not the service account", p)
				}
			}
			if got := iss.tokenHits.Load(); got != tc.wantHits {
				t.Errorf("token endpoint hits = %d, want %d", got, tc.wantHits)
			}
		})
	}
}

func TestTokenSourceSharesOneFetch(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	ts, err := auth.NewTokenSource(auth.ClientCredentialsConfig{Issuer: iss.URL, ClientID: svcClientID, ClientSecret: svcClientSec})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			md, err := ts.GetRequestMetadata(context.Background())
			if err != nil || !strings.HasPrefix(md["authorization"], "Bearer ey") {
				t.Errorf("metadata %v, err %v", md, err)
			}
		})
	}
	wg.Wait()
	if got := iss.tokenHits.Load(); got != 1 {
		t.Errorf("token endpoint hits = %d, want 1", got)
	}
	if ts.RequireTransportSecurity() {
		t.Error("RequireTransportSecurity must be false for in-cluster plaintext gRPC")
	}
}

func TestTokenSourceWrongSecret(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	const wrong = "wrongSecret123"
	ts, err := auth.NewTokenSource(auth.ClientCredentialsConfig{Issuer: iss.URL, ClientID: svcClientID, ClientSecret: wrong})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.Token()
	if err == nil {
		t.Fatal("token issued with a wrong secret")
	}
	if !strings.Contains(err.Error(), "unauthorized_client") || strings.Contains(err.Error(), wrong) {
		t.Errorf("error = %v: want the IdP's error and no secret", err)
	}
}

func TestNewTokenSourceRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  auth.ClientCredentialsConfig
	}{
		{"no client id", auth.ClientCredentialsConfig{Issuer: "http://id.test/realms/comfortech", ClientSecret: "x"}},
		{"no secret", auth.ClientCredentialsConfig{Issuer: "http://id.test/realms/comfortech", ClientID: "x"}},
		{"no issuer or token URL", auth.ClientCredentialsConfig{ClientID: "x", ClientSecret: "y"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := auth.NewTokenSource(tc.cfg); err == nil {
				t.Error("accepted")
			}
		})
	}
}
