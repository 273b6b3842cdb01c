package allinone_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/deployments/allinone"
	"github.com/comfortech/platform/libs/metrics"
	"github.com/comfortech/platform/libs/rpc"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
)

// appUser is a registered account with its tokens.
type appUser struct {
	phone, token string
}

// newAppUser registers phone through the auth gateway and waits until the
// data service has created the account from the AccountRegistered event.
func newAppUser(t testing.TB, authAPI, mainAPI call, phone string) appUser {
	t.Helper()
	tk := authAPI.tokens("/v1/auth/register", map[string]string{"phone": phone, "password": "Comfort-2026", "name": "User " + phone[len(phone)-2:]})
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, env := mainAPI.do(http.MethodGet, "/v1/me", tk.AccessToken, nil)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("account of %s never appeared: %d %+v", phone, code, env.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return appUser{phone: phone, token: tk.AccessToken}
}

// asDevice returns a data-service client that acts as the device service.
func asDevice(t testing.TB, p *allinone.Platform) datav1.DataInternalServiceClient {
	t.Helper()
	ts, err := p.ServiceSettings("device").NewTokenSource()
	if err != nil || ts == nil {
		t.Fatalf("device service account: %v", err)
	}
	conn, err := rpc.Dial(p.Addr("data", "grpc"), metrics.New(), rpc.WithPerRPCCredentials(ts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return datav1.NewDataInternalServiceClient(conn)
}

func decode[T any](t testing.TB, env envelope) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(env.Data, &v); err != nil {
		t.Fatalf("decode %s: %v", env.Data, err)
	}
	return v
}

// TestAppEndToEnd drives the mobile app's API through the running platform
// with a plain HTTP client: homes, claiming, state, telemetry written
// through the data service's append API, sharing, and every isolation
// rule between two accounts.
func TestAppEndToEnd(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	api := call{t, "http://" + p.Addr("main-gateway", "http")}
	stamp := time.Now().UnixNano() % 1_000_000
	anna := newAppUser(t, authAPI, api, fmt.Sprintf("+7951%06d1", stamp))
	boris := newAppUser(t, authAPI, api, fmt.Sprintf("+7951%06d2", stamp))

	// A home, created once even when the POST is retried.
	homeReq := map[string]string{"name": "Dacha"}
	code, env := api.doKey(http.MethodPost, "/v1/homes", anna.token, "home-1", homeReq)
	code2, env2 := api.doKey(http.MethodPost, "/v1/homes", anna.token, "home-1", homeReq)
	if code != http.StatusOK || code2 != code || string(env.Data) != string(env2.Data) {
		t.Fatalf("create home and its retry: %d %s / %d %s", code, env.Data, code2, env2.Data)
	}
	home := decode[struct {
		Home struct{ ID string } `json:"home"`
	}](t, env).Home.ID

	// The device service registers a device at provisioning; Anna claims it.
	dev := asDevice(t, p)
	serial := fmt.Sprintf("CT-%d", stamp)
	reg, err := dev.RegisterDevice(t.Context(), &datav1.RegisterDeviceRequest{
		DeviceId: newUUID(t), Serial: serial, Model: "thermostat-t1", FirmwareVersion: "1.0.0", ClaimCode: "CLAIM-123456",
	})
	if err != nil {
		t.Fatalf("register device: %v", err)
	}
	deviceID := reg.GetDevice().GetId()
	code, env = api.do(http.MethodPost, "/v1/devices:claim", anna.token, map[string]string{"serial": serial, "claim_code": "WRONG-000000"})
	expect(t, "claim with a wrong code", code, env, http.StatusNotFound, "NOT_FOUND")
	code, env = api.do(http.MethodPost, "/v1/devices:claim", anna.token, map[string]string{"serial": serial, "claim_code": "CLAIM-123456", "name": "Living room", "home_id": home})
	if code != http.StatusOK {
		t.Fatalf("claim: %d %+v", code, env.Error)
	}
	code, env = api.do(http.MethodPost, "/v1/devices:claim", boris.token, map[string]string{"serial": serial, "claim_code": "CLAIM-123456"})
	expect(t, "claim of a claimed device", code, env, http.StatusConflict, "ALREADY_EXISTS")

	// Desired state with optimistic concurrency.
	code, env = api.do(http.MethodPatch, "/v1/devices/"+deviceID+"/state", anna.token, map[string]any{"desired": map[string]any{"target_temperature": 21.5}})
	if code != http.StatusOK {
		t.Fatalf("write desired state: %d %+v", code, env.Error)
	}
	code, env = api.do(http.MethodPatch, "/v1/devices/"+deviceID+"/state", anna.token, map[string]any{"desired": map[string]any{"mode": "eco"}, "expected_version": 99})
	expect(t, "stale desired version", code, env, http.StatusConflict, "ABORTED")
	code, env = api.do(http.MethodGet, "/v1/devices/"+deviceID+"/state", anna.token, nil)
	if code != http.StatusOK || !strings.Contains(string(env.Data), "target_temperature") {
		t.Fatalf("read state: %d %s", code, env.Data)
	}

	// A command to the (never connected) device waits QUEUED in the device
	// service; presence says offline; Boris can reach neither.
	code, env = api.do(http.MethodPost, "/v1/devices/"+deviceID+"/commands", anna.token, map[string]any{"name": "set_mode", "params": map[string]any{"mode": "eco"}, "ttl": "60s"})
	if code != http.StatusOK || !strings.Contains(string(env.Data), "COMMAND_STATUS_QUEUED") {
		t.Fatalf("send command: %d %s %+v", code, env.Data, env.Error)
	}
	code, env = api.do(http.MethodGet, "/v1/devices/"+deviceID+"/commands", anna.token, nil)
	if code != http.StatusOK || len(decode[struct{ Items []json.RawMessage }](t, env).Items) != 1 {
		t.Fatalf("list commands: %d %s", code, env.Data)
	}
	code, env = api.do(http.MethodGet, "/v1/devices/"+deviceID+"/presence", anna.token, nil)
	if code != http.StatusOK || strings.Contains(string(env.Data), `"online":true`) {
		t.Fatalf("presence: %d %s", code, env.Data)
	}
	code, env = api.do(http.MethodPost, "/v1/devices/"+deviceID+"/commands", boris.token, map[string]any{"name": "reboot"})
	expect(t, "Boris sends a command", code, env, http.StatusNotFound, "NOT_FOUND")
	code, env = api.do(http.MethodGet, "/v1/devices/"+deviceID+"/presence", boris.token, nil)
	expect(t, "Boris reads presence", code, env, http.StatusNotFound, "NOT_FOUND")

	// Telemetry through the append API, read back through the gateway.
	now := time.Now().Truncate(time.Second)
	records := make([]*datav1.TelemetryRecord, 0, 10)
	for i := range 10 {
		records = append(records, &datav1.TelemetryRecord{DeviceId: deviceID, Seq: int64(i + 1),
			Time: timestamppb.New(now.Add(time.Duration(i-10) * time.Second)), Metrics: map[string]float64{"temperature": 20 + float64(i)/10}})
	}
	for range 2 { // the second append is all duplicates
		if _, err := dev.AppendTelemetry(t.Context(), &datav1.AppendTelemetryRequest{Records: records}); err != nil {
			t.Fatalf("append telemetry: %v", err)
		}
	}
	q := url.Values{"start_time": {now.Add(-time.Minute).Format(time.RFC3339)}, "end_time": {now.Add(time.Minute).Format(time.RFC3339)}}
	code, env = api.do(http.MethodGet, "/v1/devices/"+deviceID+"/telemetry?"+q.Encode(), anna.token, nil)
	points := decode[struct{ Items []json.RawMessage }](t, env).Items
	if code != http.StatusOK || len(points) != 10 {
		t.Fatalf("query telemetry: %d, %d points (want 10 once): %s", code, len(points), env.Data)
	}

	// Boris reaches nothing of Anna's: every endpoint answers NOT_FOUND.
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/homes/" + home},
		{http.MethodPatch, "/v1/homes/" + home},
		{http.MethodDelete, "/v1/homes/" + home},
		{http.MethodGet, "/v1/homes/" + home + "/rooms"},
		{http.MethodGet, "/v1/devices/" + deviceID},
		{http.MethodPatch, "/v1/devices/" + deviceID},
		{http.MethodDelete, "/v1/devices/" + deviceID},
		{http.MethodGet, "/v1/devices/" + deviceID + "/state"},
		{http.MethodPatch, "/v1/devices/" + deviceID + "/state"},
		{http.MethodGet, "/v1/devices/" + deviceID + "/telemetry?" + q.Encode()},
		{http.MethodGet, "/v1/devices/" + deviceID + "/telemetry/latest"},
		{http.MethodGet, "/v1/devices/" + deviceID + "/telemetry/aggregate?" + q.Encode() + "&bucket=60s"},
		{http.MethodGet, "/v1/devices/" + deviceID + "/alert-rules"},
		{http.MethodPost, "/v1/devices/" + deviceID + "/alert-rules"},
		{http.MethodGet, "/v1/devices/" + deviceID + "/shares"},
		{http.MethodPost, "/v1/devices/" + deviceID + "/shares"},
		{http.MethodPost, "/v1/homes/" + home + "/rooms"},
	} {
		body := map[string]any{}
		switch {
		case c.method == http.MethodPatch && strings.HasSuffix(c.path, "/state"):
			body = map[string]any{"desired": map[string]any{"mode": "off"}}
		case c.method == http.MethodPatch:
			body = map[string]any{"name": "Mine now"}
		case strings.HasSuffix(c.path, "/shares") && c.method == http.MethodPost:
			body = map[string]any{"phone": boris.phone}
		case strings.HasSuffix(c.path, "/alert-rules"):
			body = map[string]any{"name": "Too cold", "condition": map[string]any{
				"metric": "temperature", "operator": "OPERATOR_LESS_THAN", "threshold": 10, "level": "warning"}}
		case strings.HasSuffix(c.path, "/rooms"):
			body = map[string]any{"name": "Kitchen"}
		}
		if c.method == http.MethodGet || c.method == http.MethodDelete {
			body = nil
		}
		code, env := api.do(c.method, c.path, boris.token, body)
		expect(t, "Boris: "+c.method+" "+c.path, code, env, http.StatusNotFound, "NOT_FOUND")
	}

	// Anna shares the device with Boris: he may read, not rename or unclaim.
	code, env = api.do(http.MethodPost, "/v1/devices/"+deviceID+"/shares", anna.token, map[string]string{"phone": boris.phone})
	if code != http.StatusOK {
		t.Fatalf("share: %d %+v", code, env.Error)
	}
	if code, env := api.do(http.MethodGet, "/v1/devices/"+deviceID, boris.token, nil); code != http.StatusOK {
		t.Fatalf("member reads the shared device: %d %+v", code, env.Error)
	}
	code, env = api.do(http.MethodPatch, "/v1/devices/"+deviceID, boris.token, map[string]string{"name": "Mine now"})
	expect(t, "member renames", code, env, http.StatusForbidden, "PERMISSION_DENIED")
	code, env = api.do(http.MethodDelete, "/v1/devices/"+deviceID, boris.token, nil)
	expect(t, "member unclaims", code, env, http.StatusForbidden, "PERMISSION_DENIED")
	code, env = api.do(http.MethodPost, "/v1/devices/"+deviceID+"/shares", boris.token, map[string]string{"phone": anna.phone})
	expect(t, "member shares", code, env, http.StatusForbidden, "PERMISSION_DENIED")
	code, env = api.do(http.MethodGet, "/v1/homes/"+home, boris.token, nil)
	expect(t, "member reads the owner's home", code, env, http.StatusNotFound, "NOT_FOUND")
	rule := map[string]any{"name": "Too cold", "condition": map[string]any{
		"metric": "temperature", "operator": "OPERATOR_LESS_THAN", "threshold": 10, "level": "warning"}}
	if code, env := api.do(http.MethodPost, "/v1/devices/"+deviceID+"/alert-rules", anna.token, rule); code != http.StatusOK {
		t.Fatalf("owner creates an alert rule: %d %+v", code, env.Error)
	}
	code, env = api.do(http.MethodPost, "/v1/devices/"+deviceID+"/alert-rules", boris.token, rule)
	expect(t, "member creates an alert rule", code, env, http.StatusForbidden, "PERMISSION_DENIED")
	if code, env := api.do(http.MethodGet, "/v1/devices/"+deviceID+"/telemetry?"+q.Encode(), boris.token, nil); code != http.StatusOK {
		t.Fatalf("member reads telemetry: %d %+v", code, env.Error)
	}

	// Bad input names the field.
	code, env = api.do(http.MethodPost, "/v1/homes", anna.token, map[string]string{"name": ""})
	if code != http.StatusBadRequest || len(env.Error.Details) == 0 || env.Error.Details[0].Field != "name" {
		t.Fatalf("empty home name: %d %+v", code, env.Error)
	}
}
