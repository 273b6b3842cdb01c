package authgw_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp"
	authgw "github.com/comfortech/platform/gateways/auth"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
)

// BenchmarkLogin logs one user in through the gateway over HTTP, against
// the embedded identity provider, from GOMAXPROCS concurrent clients, and
// reports throughput and the 50th and 99th percentile latencies.
//
// kdf=production uses the provider's production password hashing
// (argon2id, 19 MiB, 2 passes), which dominates the figures as the KDF does
// in Keycloak; kdf=cheap shows what the gateway and the token issuance
// cost around it.
func BenchmarkLogin(b *testing.B) {
	b.Run("kdf=production", func(b *testing.B) { benchmarkLogin(b, idp.DefaultHashParams) })
	b.Run("kdf=cheap", func(b *testing.B) { benchmarkLogin(b, idp.CheapHashParams) })
}

func benchmarkLogin(b *testing.B, kdf idp.HashParams) {
	idpURL, secret, _ := startIdP(b, func(c *idp.Config) { c.PasswordHashing = kdf })
	s := &stack{idpURL: idpURL, secret: secret, brokers: kafkatest.NewCluster(b).ListenAddrs(), log: zap.NewNop()}
	g := s.start(b, authgw.Config{})
	const phone, password = "+79990000001", "bench password 1"
	s.register(b, g, phone, password)
	body, _ := json.Marshal(map[string]string{"username": phone, "password": password})

	var (
		mu  sync.Mutex
		lat = make([]time.Duration, 0, b.N)
	)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var local []time.Duration
		for pb.Next() {
			t0 := time.Now()
			resp, err := g.client.Post(g.base+"/v1/auth/login", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("login: %s", resp.Status)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p int) float64 {
		i := (len(lat)*p+99)/100 - 1
		return float64(lat[max(i, 0)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(50), "p50-ms")
	b.ReportMetric(pct(99), "p99-ms")
}
