package allinone_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/comfortech/platform/deployments/allinone/devstack"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/metrics"
	"github.com/comfortech/platform/libs/rpc"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
)

// sinkMessage is a message of the dev inbox as the admin API lists it.
type sinkMessage struct {
	ID        string
	Channel   string
	Recipient string
	Body      string
}

// inbox lists the dev inbox's SMS to phone, newest first.
func inbox(t testing.TB, adminAPI call, token, phone string) []sinkMessage {
	t.Helper()
	code, env := adminAPI.do(http.MethodGet, "/v1/notifications/dev-sink/messages?channel=CHANNEL_SMS&recipient="+
		strings.ReplaceAll(phone, "+", "%2B"), token, nil)
	if code != http.StatusOK {
		t.Fatalf("dev inbox: %d %+v", code, env.Error)
	}
	return decode[struct{ Items []sinkMessage }](t, env).Items
}

// TestAdminNotificationsAPI drives the notify service's operator API
// through the admin gateway, and the dev sinks of `make run`:
//   - every endpoint refuses anonymous callers (401) and app users (403)
//     and serves administrators; bad input answers 400 naming the field;
//   - a one-time code goes from the auth gateway through the notify
//     service, worded by the operator's template, into the dev inbox the
//     admin API lists, and verifies the phone; the delivery log shows it;
//   - a malformed outbox message becomes a dead letter an operator can
//     read, replay and delete;
//   - e-mail reaches the embedded SMTP server.
func TestAdminNotificationsAPI(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}
	admin := adminToken(t, p, authAPI)
	stamp := time.Now().UnixNano() % 1_000_000
	phone := fmt.Sprintf("+7956%06d1", stamp)
	user := authAPI.tokens("/v1/auth/register", map[string]string{"phone": phone, "password": "Comfort-2026"}).AccessToken

	// The operator words one-time codes with a template.
	code, env := adminAPI.do(http.MethodPut, "/v1/notifications/templates", admin, map[string]any{
		"application": "auth", "event_type": "one-time-code", "channel": "CHANNEL_SMS", "locale": "en",
		"body": "Comfortech login code {{.code}}, valid {{.expires_in_minutes}} min",
	})
	if code != http.StatusOK {
		t.Fatalf("put template: %d %+v", code, env.Error)
	}
	// A one-time code: sent through the notify service into the dev inbox.
	if code, env := authAPI.do(http.MethodPost, "/v1/auth/otp/send", "", map[string]string{"phone": phone}); code != http.StatusOK {
		t.Fatalf("otp send: %d %+v", code, env.Error)
	}
	msgs := inbox(t, adminAPI, admin, phone)
	if len(msgs) != 1 {
		t.Fatalf("dev inbox holds %d SMS to %s, want 1: %+v", len(msgs), phone, msgs)
	}
	m := regexp.MustCompile(`^Comfortech login code (\d+), valid 5 min$`).FindStringSubmatch(msgs[0].Body)
	if m == nil {
		t.Fatalf("SMS body %q, want the operator's template", msgs[0].Body)
	}
	code, env = authAPI.do(http.MethodPost, "/v1/auth/otp/verify", "", map[string]string{"phone": phone, "code": m[1]})
	if code != http.StatusOK || !decode[struct {
		PhoneVerified bool `json:"phone_verified"`
	}](t, env).PhoneVerified {
		t.Fatalf("otp verify with the code from the inbox: %d %+v", code, env.Error)
	}
	code, env = adminAPI.do(http.MethodGet, "/v1/notifications/deliveries?channel=CHANNEL_SMS&event_type=one-time-code", admin, nil)
	if code != http.StatusOK {
		t.Fatalf("delivery log: %d %+v", code, env.Error)
	}
	deliveries := decode[struct {
		Items []struct{ ID, Recipient, Status string }
	}](t, env).Items
	if len(deliveries) == 0 || deliveries[0].Status != "DELIVERY_STATUS_SENT" || strings.Contains(deliveries[0].Recipient, phone[4:]) {
		t.Fatalf("delivery log of the code: %+v, want one sent, the phone masked", deliveries)
	}

	deadLetter := deadLetterFromOutbox(t, p.Addr("kafka", "kafka"), adminAPI, admin)

	// Every routed endpoint: refused to anonymous callers and app users,
	// served to the administrator (in this order: deletions last).
	app := "/v1/notifications/applications/thermostats"
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPut, app, map[string]any{"title": "Thermostats", "event_types": []map[string]any{
			{"id": "filter-change", "title": "Filter change", "levels": []string{"info", "warning"}, "default_channels": []string{"CHANNEL_PUSH"}},
		}}},
		{http.MethodGet, "/v1/notifications/applications", nil},
		{http.MethodGet, app, nil},
		{http.MethodPut, "/v1/notifications/templates", map[string]any{
			"application": "thermostats", "event_type": "filter-change", "channel": "CHANNEL_PUSH", "locale": "en", "body": "Change the filter"}},
		{http.MethodGet, "/v1/notifications/templates", nil},
		{http.MethodGet, "/v1/notifications/deliveries", nil},
		{http.MethodGet, "/v1/notifications/deliveries/" + deliveries[0].ID, nil},
		{http.MethodGet, "/v1/notifications/dead-letters", nil},
		{http.MethodGet, "/v1/notifications/dead-letters/" + deadLetter, nil},
		{http.MethodPost, "/v1/notifications/dead-letters/" + deadLetter + ":replay", map[string]any{}},
		{http.MethodGet, "/v1/notifications/dev-sink/messages", nil},
		{http.MethodDelete, "/v1/notifications/dead-letters/" + deadLetter, nil},
		{http.MethodDelete, "/v1/notifications/dev-sink/messages", nil},
		{http.MethodDelete, app, nil},
	} {
		what := c.method + " " + c.path
		expectAdminOnly(t, adminAPI, user, c.method, c.path, c.body)
		if code, env := adminAPI.do(c.method, c.path, admin, c.body); code != http.StatusOK || !env.Success {
			t.Fatalf("admin %s: %d %+v", what, code, env.Error)
		}
	}
	if msgs := inbox(t, adminAPI, admin, phone); len(msgs) != 0 {
		t.Errorf("dev inbox after clearing: %+v", msgs)
	}
	code, env = adminAPI.do(http.MethodGet, "/v1/notifications/templates", admin, nil)
	if code != http.StatusOK {
		t.Fatalf("templates: %d %+v", code, env.Error)
	}
	var tmpl string
	for _, x := range decode[struct {
		Items []struct{ ID, Application string }
	}](t, env).Items {
		if x.Application == "auth" {
			tmpl = x.ID
		}
	}
	if tmpl == "" {
		t.Fatal("the one-time-code template is not listed")
	}
	what := "DELETE /v1/notifications/templates/{id}"
	code, env = adminAPI.do(http.MethodDelete, "/v1/notifications/templates/"+tmpl, user, nil)
	expect(t, "app user "+what, code, env, http.StatusForbidden, "PERMISSION_DENIED")
	if code, env := adminAPI.do(http.MethodDelete, "/v1/notifications/templates/"+tmpl, admin, nil); code != http.StatusOK {
		t.Fatalf("admin %s: %d %+v", what, code, env.Error)
	}

	for _, c := range []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"bad application name", http.MethodPut, "/v1/notifications/applications/Thermo_Stats", map[string]any{"title": "x"}, "application.name"},
		{"event type without levels", http.MethodPut, app, map[string]any{"title": "Thermostats",
			"event_types": []map[string]any{{"id": "filter-change", "title": "Filter change"}}}, "application.event_types[0].levels"},
		{"template without body", http.MethodPut, "/v1/notifications/templates", map[string]any{
			"application": "thermostats", "event_type": "filter-change", "channel": "CHANNEL_PUSH", "locale": "en"}, "template.body"},
		{"page too large", http.MethodGet, "/v1/notifications/deliveries?page_size=5000", nil, "page_size"},
		{"bad account filter", http.MethodGet, "/v1/notifications/deliveries?account_id=anna", nil, "account_id"},
	} {
		code, env := adminAPI.do(c.method, c.path, admin, c.body)
		expectInvalid(t, c.name, code, env, c.field)
	}

	mailReachesSMTP(t, p.Addr("notify", "grpc"), p.ServiceSettings("auth-gateway"), p.Mail)
}

// deadLetterFromOutbox publishes a malformed notification and returns the
// id of the dead letter the admin API then lists, with the reason.
func deadLetterFromOutbox(t *testing.T, broker string, adminAPI call, admin string) string {
	t.Helper()
	producer, err := kafka.NewProducer(kafka.Config{Brokers: []string{broker}, ClientID: "notify-admin-test"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = producer.Close() }()
	key := fmt.Sprintf("malformed-%d", time.Now().UnixNano())
	if err := producer.Publish(t.Context(), kafka.Message{Topic: "notifications.outbox", Key: []byte(key), Value: []byte(`{"application":`)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, env := adminAPI.do(http.MethodGet, "/v1/notifications/dead-letters", admin, nil)
		if code != http.StatusOK {
			t.Fatalf("dead letters: %d %+v", code, env.Error)
		}
		for _, d := range decode[struct {
			Items []struct{ ID, Key, Reason string }
		}](t, env).Items {
			if d.Key == key {
				if d.Reason == "" {
					t.Fatalf("dead letter %+v has no reason", d)
				}
				return d.ID
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the malformed notification never became a dead letter")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mailReachesSMTP sends an e-mail directly, as a platform service, and
// finds it in the embedded SMTP server's store.
func mailReachesSMTP(t *testing.T, notifyAddr string, settings auth.Settings, mail *devstack.Mail) {
	t.Helper()
	ts, err := settings.NewTokenSource()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := rpc.Dial(notifyAddr, metrics.New(), rpc.WithPerRPCCredentials(ts))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := notifyv1.NewDirectServiceClient(conn).SendDirectMessage(ctx, &notifyv1.SendDirectMessageRequest{
		Id: fmt.Sprintf("mail-%d", time.Now().UnixNano()), Channel: notifyv1.Channel_CHANNEL_EMAIL,
		Recipient: &notifyv1.SendDirectMessageRequest_Email{Email: "anna@example.com"},
		Subject:   "Welcome to Comfortech", Body: "Your home is ready.",
	})
	if err != nil || !res.GetSent() {
		t.Fatalf("direct e-mail: %v %+v", err, res)
	}
	paths, err := mail.Messages()
	if err != nil || len(paths) != 1 {
		t.Fatalf("embedded SMTP server holds %v (%v), want the one e-mail", paths, err)
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"X-Envelope-To: <anna@example.com>", "Subject: Welcome to Comfortech", "Your home is ready."} {
		if !strings.Contains(string(b), want) {
			t.Errorf("kept e-mail lacks %q:\n%s", want, b)
		}
	}
}
