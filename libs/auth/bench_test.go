package auth_test

import (
	"context"
	"testing"

	"github.com/comfortech/platform/libs/auth"
)

// BenchmarkVerify measures token verification with a cached JWKS, the cost a
// gateway or service pays on every request (issue 3 target: 20,000/s on one
// core). "rsa" verifies the signature every time (the verified-token cache
// off, as for a token seen for the first time); "serial" and "parallel"
// present the same token again, as an app does for the token's lifetime.
// Run with -cpu=1 for the single-core figures.
func BenchmarkVerify(b *testing.B) {
	iss := newIssuer(b)
	v := newVerifier(b, iss)
	tok := iss.mint(iss.userClaims())
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}

	b.Run("rsa", func(b *testing.B) {
		uncached := newVerifier(b, iss, func(c *auth.Config) { c.CacheSize = -1 })
		b.ReportAllocs()
		for b.Loop() {
			if _, err := uncached.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
	})
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
	})
}
