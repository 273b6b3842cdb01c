package allinone_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/comfortech/platform/deployments/allinone"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/services/device/simulator"
	"github.com/comfortech/platform/services/device/simulator/provision"
)

// subscriptionSink receives a subscription's deliveries and keeps those
// whose Standard Webhooks signature verifies (with the reference
// library, not the platform's signer).
type subscriptionSink struct {
	t      testing.TB
	mu     sync.Mutex
	secret string
	calls  int
	events []map[string]any
	ids    []string // webhook-id of each verified delivery
}

func newSubscriptionSink(t testing.TB) (*subscriptionSink, string) {
	s := &subscriptionSink{t: t}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.calls++
		wh, err := standardwebhooks.NewWebhook(s.secret)
		if err == nil {
			err = wh.Verify(body, r.Header)
		}
		if err != nil {
			t.Errorf("delivery not signed with the subscription's secret: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("delivery body %s: %v", body, err)
		}
		s.events, s.ids = append(s.events, ev), append(s.ids, r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *subscriptionSink) received() (calls int, events []map[string]any, ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, append([]map[string]any(nil), s.events...), append([]string(nil), s.ids...)
}

// putSubscription creates a subscription through the admin gateway and
// returns its signing secret.
func putSubscription(t testing.TB, adminAPI call, token, name string, sub map[string]any) string {
	t.Helper()
	code, env := adminAPI.do(http.MethodPut, "/v1/subscriptions/"+name, token, sub)
	if code != http.StatusOK {
		t.Fatalf("PUT subscription %s: %d %+v", name, code, env.Error)
	}
	put := decode[struct {
		Created bool
		Secret  string
	}](t, env)
	if !put.Created || !strings.HasPrefix(put.Secret, "whsec_") {
		t.Fatalf("PUT subscription %s: %s", name, env.Data)
	}
	return put.Secret
}

// getAsyncAPI fetches the event catalog from the admin gateway.
func getAsyncAPI(t testing.TB, p *allinone.Platform, token string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+p.Addr("admin-gateway", "http")+"/v1/events/asyncapi", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// TestAdminSubscriptionAPI drives event subscriptions and the event
// catalog through the admin gateway: every endpoint refuses anonymous
// callers (401) and app users (403) and serves the administrator; the
// signing secret is shown on creation only; bad input answers 400 naming
// the field; the catalog is an AsyncAPI document of every topic.
func TestAdminSubscriptionAPI(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	p, cancel := startWith(t, t.TempDir(), zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core)))
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}
	admin := adminToken(t, p, authAPI)
	stamp := time.Now().UnixNano() % 1_000_000
	user := authAPI.tokens("/v1/auth/register", map[string]string{"phone": fmt.Sprintf("+7957%06d1", stamp), "password": "Comfort-2026"}).AccessToken

	// The gateway is ready only while the notify service behind it is.
	resp, err := http.Get("http://" + p.Addr("admin-gateway", "ops") + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Checks map[string]string `json:"checks"`
	}
	err = json.NewDecoder(resp.Body).Decode(&ready)
	_ = resp.Body.Close()
	if err != nil || ready.Checks["notify"] != "ok" {
		t.Fatalf("admin gateway readiness: %+v (%v), want the notify service checked", ready, err)
	}

	var secrets []string // the signing secrets shown
	sub := map[string]any{"url": "https://crm.example.com/hooks/comfortech", "event_types": []string{"device.lifecycle", "alerts"}, "enabled": true,
		"filters": []map[string]string{{"attribute": "data.level", "operator": "FILTER_OPERATOR_EXACT", "value": "critical"}},
		"auth":    map[string]any{"basic": map[string]string{"username": "comfortech", "password": "hook-password"}}}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPut, "/v1/subscriptions/crm", sub},
		{http.MethodGet, "/v1/subscriptions", nil},
		{http.MethodGet, "/v1/subscriptions/crm", nil},
		{http.MethodPost, "/v1/subscriptions/crm:rotate-secret", map[string]any{"grace_period": "60s"}},
		{http.MethodDelete, "/v1/subscriptions/crm", nil},
	} {
		what := c.method + " " + c.path
		expectAdminOnly(t, adminAPI, user, c.method, c.path, c.body)
		code, env := adminAPI.do(c.method, c.path, admin, c.body)
		if code != http.StatusOK || !env.Success {
			t.Fatalf("admin %s: %d %+v", what, code, env.Error)
		}
		switch c.method + " " + c.path {
		case "PUT /v1/subscriptions/crm":
			put := decode[struct {
				Created      bool
				Secret       string
				Subscription struct {
					Status string
					Auth   struct{ Basic map[string]string }
				}
			}](t, env)
			if !put.Created || !strings.HasPrefix(put.Secret, "whsec_") || put.Subscription.Status != "SUBSCRIPTION_STATUS_ACTIVE" ||
				put.Subscription.Auth.Basic["username"] != "comfortech" || put.Subscription.Auth.Basic["password"] != "" {
				t.Fatalf("created: %s", env.Data)
			}
			secrets = append(secrets, put.Secret)
		case "GET /v1/subscriptions/crm":
			if strings.Contains(string(env.Data), "hook-password") || strings.Contains(string(env.Data), "whsec_") {
				t.Fatalf("GET shows a secret: %s", env.Data)
			}
			// Sent back as shown, nothing changes and no secret is shown.
			got := decode[struct{ Subscription map[string]any }](t, env).Subscription
			code, env := adminAPI.do(http.MethodPut, "/v1/subscriptions/crm", admin, got)
			again := decode[struct {
				Created, Changed bool
				Secret           string
			}](t, env)
			if code != http.StatusOK || again.Created || again.Changed || again.Secret != "" {
				t.Fatalf("PUT what GET showed: %d %s", code, env.Data)
			}
		case "POST /v1/subscriptions/crm:rotate-secret":
			rot := decode[struct{ Secret string }](t, env)
			if !strings.HasPrefix(rot.Secret, "whsec_") {
				t.Fatalf("rotated: %s", env.Data)
			}
			secrets = append(secrets, rot.Secret)
		}
	}
	// No part logged a secret: neither the signing secrets nor the auth's.
	for _, e := range logs.All() {
		if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, "whsec_") || strings.Contains(line, "hook-password") {
			t.Errorf("%s logged a secret: %s", e.LoggerName, line)
		}
	}
	// The audit log has each change, the subscription before and after,
	// and never a secret.
	events := auditLog(t, adminAPI, admin, "resource_type=subscription&resource_id=crm", func(evs []auditEvent) bool { return len(evs) >= 4 })
	actions := map[string]bool{}
	for _, e := range events {
		actions[e.Action] = true
		record := fmt.Sprint(e.Before, e.After)
		for _, secret := range append(secrets, "hook-password") {
			if strings.Contains(record, secret) {
				t.Errorf("%s: a secret is in the audit log: %+v", e.Action, e)
			}
		}
	}
	if !actions["subscription.put"] || !actions["subscription.rotate_secret"] || !actions["subscription.delete"] {
		t.Errorf("audit log of crm: %+v", events)
	}
	if del := events[0]; del.Action != "subscription.delete" || del.Before["url"] != "https://crm.example.com/hooks/comfortech" || del.After != nil {
		t.Errorf("delete event: %+v", del)
	}
	code, env := adminAPI.do(http.MethodGet, "/v1/subscriptions/crm", admin, nil)
	expect(t, "deleted subscription", code, env, http.StatusNotFound, "NOT_FOUND")

	for _, c := range []struct {
		name, path string
		body       map[string]any
		field      string
	}{
		{"URL without a scheme", "/v1/subscriptions/crm", map[string]any{"url": "crm.example.com/hooks", "event_types": []string{"alerts"}}, "subscription.url"},
		{"unknown topic", "/v1/subscriptions/crm", map[string]any{"url": "https://crm.example.com", "event_types": []string{"device.everything"}},
			"subscription.event_types[0]"},
		{"no topic", "/v1/subscriptions/crm", map[string]any{"url": "https://crm.example.com"}, "subscription.event_types"},
		{"bad name", "/v1/subscriptions/CRM", map[string]any{"url": "https://crm.example.com", "event_types": []string{"alerts"}}, "subscription.name"},
		{"bad filter attribute", "/v1/subscriptions/crm", map[string]any{"url": "https://crm.example.com", "event_types": []string{"alerts"},
			"filters": []map[string]string{{"attribute": "level", "operator": "FILTER_OPERATOR_EXACT", "value": "x"}}}, "subscription.filters[0].attribute"},
		{"basic auth without a password", "/v1/subscriptions/crm", map[string]any{"url": "https://crm.example.com", "event_types": []string{"alerts"},
			"auth": map[string]any{"basic": map[string]string{"username": "u"}}}, "subscription.auth.basic.password"},
		{"OAuth2 token URL not http(s)", "/v1/subscriptions/crm", map[string]any{"url": "https://crm.example.com", "event_types": []string{"alerts"},
			"auth": map[string]any{"oauth2": map[string]any{"token_url": "ftp://idp.example.com/token", "client_id": "c", "client_secret": "s"}}},
			"subscription.auth.oauth2.token_url"},
	} {
		code, env := adminAPI.do(http.MethodPut, c.path, admin, c.body)
		expectInvalid(t, c.name, code, env, c.field)
	}

	// The event catalog: administrators only, an AsyncAPI document with a
	// channel per topic.
	if code, _, _ := getAsyncAPI(t, p, ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous catalog: %d", code)
	}
	if code, _, _ := getAsyncAPI(t, p, user); code != http.StatusForbidden {
		t.Errorf("app user catalog: %d", code)
	}
	code, ctype, body := getAsyncAPI(t, p, admin)
	var doc struct {
		AsyncAPI string `json:"asyncapi"`
		Channels map[string]struct {
			Address  string         `json:"address"`
			Messages map[string]any `json:"messages"`
		} `json:"channels"`
	}
	if err := json.Unmarshal(body, &doc); code != http.StatusOK || ctype != "application/json" || err != nil || doc.AsyncAPI != "3.0.0" {
		t.Fatalf("catalog: %d %s %v %.200s", code, ctype, err, body)
	}
	addresses := map[string]bool{}
	for _, ch := range doc.Channels {
		addresses[ch.Address] = len(ch.Messages) > 0
	}
	for _, topic := range []string{"device.telemetry", "device.lifecycle", "account.events", "alerts", "notifications.outbox", "notifications.delivery", "audit"} {
		if !addresses[topic] {
			t.Errorf("the catalog has no messages on %s: %v", topic, addresses)
		}
	}
	if doc.Channels["deviceLifecycle"].Messages["DevicePresenceChanged"] == nil {
		t.Errorf("no presence event in the catalog")
	}
}

// TestSubscriptionReceivesDeviceLifecycle: an operator subscribes a URL to
// a device's presence events; when the simulated device connects over
// MQTT, the URL receives the device.lifecycle event, signed with the
// subscription's secret, as a CloudEvent; a subscription filtered on
// another device receives nothing; the attempt is in the delivery log.
func TestSubscriptionReceivesDeviceLifecycle(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}
	admin := adminToken(t, p, authAPI)
	creds, err := (&provision.Client{AdminURL: "http://" + p.Addr("admin-gateway", "http"), Token: admin}).Provision(t.Context(),
		provision.Request{Count: 2, SerialPrefix: "SIM-SUB"})
	if err != nil {
		t.Fatal(err)
	}
	dev, other := creds[0], creds[1]

	sink, sinkURL := newSubscriptionSink(t)
	presence := func(url, deviceID string) map[string]any {
		return map[string]any{"url": url, "event_types": []string{"device.lifecycle"}, "enabled": true,
			"filters": []map[string]string{
				{"attribute": "type", "operator": "FILTER_OPERATOR_EXACT", "value": "comfortech.device.presence.v1"},
				{"attribute": "data.device_id", "operator": "FILTER_OPERATOR_EXACT", "value": deviceID},
			}}
	}
	secret := putSubscription(t, adminAPI, admin, "presence", presence(sinkURL+"/events", dev.ID))
	sink.mu.Lock()
	sink.secret = secret
	sink.mu.Unlock()
	otherSink, otherURL := newSubscriptionSink(t)
	secret = putSubscription(t, adminAPI, admin, "other-device", presence(otherURL, other.ID))
	otherSink.mu.Lock()
	otherSink.secret = secret
	otherSink.mu.Unlock()

	// The device connects and says it is online, as the protocol asks.
	fleet, err := simulator.New(simulator.Config{Broker: "tcp://" + p.Addr("mqtt", "mqtt"), Devices: creds[:1], Interval: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fleetCtx, stopFleet := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- fleet.Run(fleetCtx) }()
	defer func() {
		stopFleet()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var events []map[string]any
	var ids []string
	eventually(t, 30*time.Second, "the presence event delivered", func() (bool, string) {
		var calls int
		calls, events, ids = sink.received()
		return len(events) > 0, fmt.Sprintf("%d calls, %d verified", calls, len(events))
	})
	ev := events[0]
	data, _ := ev["data"].(map[string]any)
	if ev["specversion"] != "1.0" || ev["type"] != "comfortech.device.presence.v1" || ev["source"] != "/services/device" ||
		ev["subject"] != dev.ID || ev["id"] != ids[0] || data["device_id"] != dev.ID || data["online"] != true ||
		data["reason"] != "PRESENCE_REASON_CONNECTED" {
		t.Errorf("delivered event = %v", ev)
	}
	if calls, _, _ := otherSink.received(); calls != 0 {
		t.Errorf("the subscription of another device was called %d times", calls)
	}

	// The delivery log has the attempt, naming the subscription.
	conn, err := grpc.NewClient(p.Addr("notify", "grpc"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+admin)
	eventually(t, 10*time.Second, "the delivery in the log", func() (bool, string) {
		l, err := notifyv1.NewDeliveryServiceClient(conn).ListDeliveries(ctx, &notifyv1.ListDeliveriesRequest{Subscription: "presence"})
		if err != nil || len(l.Items) == 0 {
			return false, fmt.Sprint(l, err)
		}
		d := l.Items[0]
		return d.Status == notifyv1.DeliveryStatus_DELIVERY_STATUS_SENT && d.NotificationId == ids[0] && d.Subscription == "presence", d.String()
	})
}
