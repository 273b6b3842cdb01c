package allinone_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/comfortech/platform/deployments/allinone"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
)

// benchConns is the number of concurrent connections of the load
// generator, as issue 4 asks.
const benchConns = 64

// BenchmarkDeviceRead measures an authenticated GET /v1/devices/{id}
// through the main gateway → data service → store, at 64 connections,
// beside a baseline in the same run: a hand-written net/http handler that
// verifies the token with golang-jwt and makes the same gRPC call.
// The load generator runs in the same process on the same 2 cores.
func BenchmarkDeviceRead(b *testing.B) {
	p, cancel := startBench(b)
	defer func() {
		cancel()
		_ = p.Wait()
	}()
	authAPI := call{t: b, base: "http://" + p.Addr("auth-gateway", "http")}
	mainAPI := call{t: b, base: "http://" + p.Addr("main-gateway", "http")}
	user, deviceID := claimedDevice(b, p, authAPI, mainAPI, fmt.Sprintf("+7952%07d", time.Now().UnixNano()%10_000_000))

	baseline := startBaseline(b, p)
	for _, target := range []struct{ name, url string }{
		{"gateway", mainAPI.base + "/v1/devices/" + deviceID},
		{"baseline", baseline + "/v1/devices/" + deviceID},
	} {
		b.Run(target.name, func(b *testing.B) { load(b, target.url, user.token) })
	}
}

// load sends b.N authenticated GETs over benchConns keep-alive
// connections and reports throughput and latency percentiles.
func load(b *testing.B, url, token string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConns, MaxConnsPerHost: benchConns}}
	defer client.CloseIdleConnections()
	get := func() (time.Duration, error) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("status %d", resp.StatusCode)
		}
		return time.Since(start), nil
	}
	for range benchConns { // warm the connections
		if _, err := get(); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range benchConns {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				d, err := get()
				if err != nil {
					failed.Store(err)
					return
				}
				lat[i] = d
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// startBaseline serves GET /v1/devices/{id} by hand: golang-jwt with the
// realm's JWKS (keyfunc), then the same gRPC call the gateway makes.
func startBaseline(b *testing.B, p *allinone.Platform) string {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	kf, err := keyfunc.NewDefaultCtx(ctx, []string{p.Issuer + "/protocol/openid-connect/certs"})
	if err != nil {
		b.Fatal(err)
	}
	conn, err := grpc.NewClient(p.Addr("data", "grpc"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	devices := datav1.NewDeviceServiceClient(conn)
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(p.Issuer), jwt.WithExpirationRequired())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/devices/{id}", func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Error(w, "unauthenticated", http.StatusUnauthorized)
			return
		}
		var claims jwt.MapClaims
		if _, err := parser.ParseWithClaims(raw, &claims, kf.Keyfunc); err != nil || claims["typ"] != "Bearer" {
			http.Error(w, "unauthenticated", http.StatusUnauthorized)
			return
		}
		rctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(r.Context(), "authorization", "Bearer "+raw), 10*time.Second)
		defer cancel()
		resp, err := devices.GetDevice(rctx, &datav1.GetDeviceRequest{DeviceId: r.PathValue("id")})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		body, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// claimedDevice registers a user and a device, has the user claim it, and
// returns both.
func claimedDevice(t testing.TB, p *allinone.Platform, authAPI, mainAPI call, phone string) (appUser, string) {
	t.Helper()
	user := newAppUser(t, authAPI, mainAPI, phone)
	serial := "CT-" + phone[1:]
	reg, err := asDevice(t, p).RegisterDevice(context.Background(), &datav1.RegisterDeviceRequest{
		DeviceId: newUUID(t), Serial: serial, Model: "thermostat-t1", FirmwareVersion: "1.0.0", ClaimCode: "CLAIM-123456",
	})
	if err != nil {
		t.Fatalf("register device: %v", err)
	}
	code, env := mainAPI.do(http.MethodPost, "/v1/devices:claim", user.token, map[string]string{"serial": serial, "claim_code": "CLAIM-123456"})
	if code != http.StatusOK {
		t.Fatalf("claim: %d %+v", code, env.Error)
	}
	return user, reg.GetDevice().GetId()
}
