package authgw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	authgw "github.com/comfortech/platform/gateways/auth"
	"github.com/comfortech/platform/gateways/auth/devsink"
	"github.com/comfortech/platform/libs/config"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/libs/web"
)

// gateway is one running auth gateway and what a test needs to reach it.
type gateway struct {
	base, ops string
	sink      *devsink.Sink
	client    *http.Client
}

// stack is the shared identity provider and Kafka the tests run against.
type stack struct {
	idpURL, secret, adminPassword string
	brokers                       []string
	logs                          *observer.ObservedLogs
	log                           *zap.Logger

	// secrets collects every password, token and code the tests used, so
	// that the logs can be searched for them at the end.
	mu      sync.Mutex
	secrets []string
}

func (s *stack) remember(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		if v != "" {
			s.secrets = append(s.secrets, v)
		}
	}
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// start runs a gateway with cfg's zero fields filled for the stack, and
// waits until it is ready.
func (s *stack) start(t testing.TB, cfg authgw.Config) *gateway {
	t.Helper()
	cfg.KeycloakURL = s.idpURL
	cfg.ClientSecret = config.Secret(s.secret)
	cfg.KafkaBrokers = s.brokers
	if cfg.RateLimitPerPhone == "" {
		cfg.RateLimitPerPhone = "off"
	}
	if cfg.RateLimitPerIP == "" {
		cfg.RateLimitPerIP = "off"
	}
	sink := devsink.New(0)
	cfg.CodeSender = sink
	httpL, opsL := listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- authgw.Run(ctx, cfg, s.log, process.WithHTTPListener(httpL), process.WithOpsListener(opsL))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	g := &gateway{
		base: "http://" + httpL.Addr().String(), ops: "http://" + opsL.Addr().String(), sink: sink,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := g.client.Get(g.ops + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g
			}
			if time.Now().After(deadline) {
				t.Fatalf("gateway not ready: %s", body)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("gateway not ready: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("Run stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// envelope is the gateway's answer.
type envelope struct {
	Success   bool            `json:"success"`
	Data      json.RawMessage `json:"data"`
	Error     *web.ErrorBody  `json:"error"`
	RequestID string          `json:"request_id"`
}

// answer is one HTTP exchange's result.
type answer struct {
	status int
	env    envelope
	header http.Header
	raw    []byte
}

// field returns the first field named in the error details.
func (a answer) field() string {
	if a.env.Error == nil || len(a.env.Error.Details) == 0 {
		return ""
	}
	return a.env.Error.Details[0].Field
}

func (a answer) code() string {
	if a.env.Error == nil {
		return ""
	}
	return a.env.Error.Code
}

// do sends body (a string is sent as is, anything else as JSON) with the
// bearer token (if any) and header pairs.
func (g *gateway) do(t testing.TB, method, path, token string, body any, header ...string) answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, g.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	if err := json.Unmarshal(raw, &a.env); err != nil {
		t.Fatalf("%s %s: %d, not an envelope: %s", method, path, resp.StatusCode, raw)
	}
	return a
}

// tokens is the data of a login, register or refresh answer.
type tokens struct {
	AccessToken      string `json:"access_token"`
	RefreshToken     string `json:"refresh_token"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	TokenType        string `json:"token_type"`
}

// user is the data of a user answer.
type user struct {
	ID            string   `json:"id"`
	Username      string   `json:"username"`
	Name          string   `json:"name"`
	Email         string   `json:"email"`
	PhoneVerified bool     `json:"phone_verified"`
	Enabled       bool     `json:"enabled"`
	Roles         []string `json:"roles"`
	CreateTime    string   `json:"create_time"`
}

func data[T any](t testing.TB, a answer) T {
	t.Helper()
	var v T
	if !a.env.Success {
		t.Fatalf("want success, got %d %s", a.status, a.raw)
	}
	if err := json.Unmarshal(a.env.Data, &v); err != nil {
		t.Fatalf("data: %v: %s", err, a.env.Data)
	}
	return v
}

// expect fails unless a has status and, when given, error code.
func expect(t testing.TB, what string, a answer, status int, code string) {
	t.Helper()
	if a.status != status || (code != "" && a.code() != code) {
		t.Fatalf("%s: got %d %s, want %d %s", what, a.status, a.raw, status, code)
	}
}

func (s *stack) register(t testing.TB, g *gateway, phone, password string) tokens {
	t.Helper()
	s.remember(password)
	a := g.do(t, "POST", "/v1/auth/register", "", map[string]string{"phone": phone, "password": password})
	expect(t, "register "+phone, a, 200, "")
	tk := data[tokens](t, a)
	s.remember(tk.AccessToken, tk.RefreshToken)
	return tk
}

func (s *stack) login(t testing.TB, g *gateway, username, password string) tokens {
	t.Helper()
	s.remember(password)
	a := g.do(t, "POST", "/v1/auth/login", "", map[string]string{"username": username, "password": password})
	expect(t, "login "+username, a, 200, "")
	tk := data[tokens](t, a)
	s.remember(tk.AccessToken, tk.RefreshToken)
	return tk
}

// phones hands out distinct phone numbers, so parallel tests never collide.
type phones struct {
	mu   sync.Mutex
	next int
	base int64
}

func (p *phones) new() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	return fmt.Sprintf("+7%010d", p.base+int64(p.next))
}

// event finds the event of type typ keyed by accountID on account.events.
func (s *stack) event(t testing.TB, typ, accountID string) kafka.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n := kafkatest.EndOffset(t, s.brokers, "account.events"); n > 0 {
			for _, m := range kafkatest.ReadTopic(t, s.brokers, "account.events", int(n), 10*time.Second) {
				if string(m.Key) == accountID && m.Header(kafka.HeaderType) == typ {
					return m
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s", typ, accountID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkLogs fails when any log entry holds a remembered secret.
func (s *stack) checkLogs(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	n := 0
	for _, e := range s.logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		line := buf.String()
		buf.Free()
		n++
		for _, secret := range s.secrets {
			if strings.Contains(line, secret) {
				t.Errorf("a log line holds a secret (%d chars): %s", len(secret), strings.ReplaceAll(line, secret, "<SECRET>"))
			}
		}
	}
	if n == 0 || len(s.secrets) == 0 {
		t.Errorf("nothing checked: %d log lines, %d secrets", n, len(s.secrets))
	}
}
