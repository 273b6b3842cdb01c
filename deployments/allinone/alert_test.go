package allinone_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/metrics"
	"github.com/comfortech/platform/libs/rpc"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
)

// webhookSink receives Standard Webhooks and checks each signature with its
// own HMAC, independent of the notify service's code.
type webhookSink struct {
	mu       sync.Mutex
	secret   string
	bodies   []string
	badSigns int
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	s.mu.Lock()
	defer s.mu.Unlock()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s.secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	ok := err == nil
	if ok {
		ok = false
		for _, sig := range strings.Fields(r.Header.Get("webhook-signature")) {
			ok = ok || hmac.Equal([]byte(sig), []byte(want))
		}
	}
	if !ok {
		s.badSigns++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.bodies = append(s.bodies, string(body))
	w.WriteHeader(http.StatusNoContent)
}

func (s *webhookSink) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// TestAlertReachesOwner follows a device's alert through the running
// platform: the owner chooses webhooks for raised alerts and registers an
// endpoint, creates a rule; the device service appends a cold reading;
// the data service raises the alert and writes its notification; the
// notify service routes it by the owner's preferences and delivers it,
// signed, to the owner's endpoint; the delivery log shows it.
func TestAlertReachesOwner(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	api := call{t, "http://" + p.Addr("main-gateway", "http")}
	owner, deviceID := claimedDevice(t, p, authAPI, api, fmt.Sprintf("+7954%07d", time.Now().UnixNano()%10_000_000))

	sink := &webhookSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()

	code, env := api.do(http.MethodPut, "/v1/notifications/preferences", owner.token, map[string]any{
		"rules": []map[string]any{{"application": "comfortech", "event_type": "alert.raised", "channels": []string{"CHANNEL_WEBHOOK"}}},
	})
	if code != http.StatusOK {
		t.Fatalf("preferences: %d %+v", code, env.Error)
	}
	code, env = api.do(http.MethodPost, "/v1/notifications/webhooks", owner.token, map[string]any{"url": srv.URL + "/hooks", "description": "home automation"})
	if code != http.StatusOK {
		t.Fatalf("webhook endpoint: %d %+v", code, env.Error)
	}
	sink.mu.Lock()
	sink.secret = decode[struct{ Secret string }](t, env).Secret
	sink.mu.Unlock()
	code, env = api.do(http.MethodPost, "/v1/devices/"+deviceID+"/alert-rules", owner.token, map[string]any{"name": "Too cold",
		"condition": map[string]any{"metric": "temperature", "operator": "OPERATOR_LESS_THAN", "threshold": 10, "level": "critical"}})
	if code != http.StatusOK {
		t.Fatalf("alert rule: %d %+v", code, env.Error)
	}

	if _, err := asDevice(t, p).AppendTelemetry(context.Background(), &datav1.AppendTelemetryRequest{Records: []*datav1.TelemetryRecord{{
		DeviceId: deviceID, Seq: 1, Time: timestamppb.Now(), Metrics: map[string]float64{"temperature": 5},
	}}}); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for len(sink.received()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no webhook delivery (bad signatures: %d)", sink.badSigns)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var got struct {
		Type string `json:"type"`
		Data struct {
			AccountID string `json:"account_id"`
			EventType string `json:"event_type"`
			Level     string `json:"level"`
			Payload   struct {
				DeviceID string  `json:"device_id"`
				Value    float64 `json:"value"`
			} `json:"payload"`
		} `json:"data"`
	}
	body := sink.received()[0]
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.Type != "comfortech.alert.raised" ||
		got.Data.EventType != "alert.raised" || got.Data.Level != "critical" ||
		got.Data.Payload.DeviceID != deviceID || got.Data.Payload.Value != 5 {
		t.Fatalf("webhook body: %s (%v)", body, err)
	}

	// The delivery log, as an operator sees it.
	admin := authAPI.tokens("/v1/auth/login", map[string]string{"username": "admin", "password": p.AdminPassword.Reveal()})
	conn, err := rpc.Dial(p.Addr("notify", "grpc"), metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+admin.AccessToken)
	log, err := notifyv1.NewDeliveryServiceClient(conn).ListDeliveries(ctx, &notifyv1.ListDeliveriesRequest{
		EventType: "alert.raised", Channel: notifyv1.Channel_CHANNEL_WEBHOOK})
	if err != nil {
		t.Fatal(err)
	}
	sent := false
	for _, d := range log.GetItems() {
		sent = sent || d.GetStatus() == notifyv1.DeliveryStatus_DELIVERY_STATUS_SENT
	}
	if !sent {
		t.Fatalf("delivery log: %v", log.GetItems())
	}
}
