package notify_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	"github.com/comfortech/platform/libs/process"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/services/notify"
	"github.com/comfortech/platform/services/notify/internal/store/storetest"
)

// providers are the fakes of the third-party services, built from their
// documented wire formats, and a real SMTP server.
type providers struct {
	mu     sync.Mutex
	fcm    []map[string]any // messages:send bodies
	sms    []map[string]string
	mails  []string
	hooks  map[string]int // webhook-id → verified deliveries
	hookN  int            // requests received
	fail   int            // webhook requests to fail with 503 first
	throt  bool           // answer the next webhook request 429 Retry-After: 1
	gone   map[string]bool
	secret string
}

func (p *providers) lock() func() { p.mu.Lock(); return p.mu.Unlock }

type smtpSession struct{ p *providers }

func (s smtpSession) Reset()                               {}
func (s smtpSession) Logout() error                        { return nil }
func (s smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s smtpSession) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	defer s.p.lock()()
	s.p.mails = append(s.p.mails, string(b))
	return nil
}

func startProviders(t *testing.T) (*providers, notify.Config) {
	p := &providers{hooks: map[string]int{}, gone: map[string]bool{}}
	var cfg notify.Config

	// OAuth2 token endpoint (service-account JWT bearer grant).
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.Form.Get("assertion") == "" {
			http.Error(w, "bad grant", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"ya29.test","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(tokenSrv.Close)
	// FCM HTTP v1.
	fcm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/projects/demo/messages:send" || r.Header.Get("Authorization") != "Bearer ya29.test" {
			http.Error(w, `{"error":{"status":"UNAUTHENTICATED"}}`, http.StatusUnauthorized)
			return
		}
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		msg, _ := body["message"].(map[string]any)
		defer p.lock()()
		if tok, _ := msg["token"].(string); p.gone[tok] {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"code":404,"status":"NOT_FOUND","details":[{"errorCode":"UNREGISTERED"}]}}`)
			return
		}
		p.fcm = append(p.fcm, msg)
		_, _ = io.WriteString(w, `{"name":"projects/demo/messages/1"}`)
	}))
	t.Cleanup(fcm.Close)
	// Twilio Messages API.
	twilio := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if r.URL.Path != "/2010-04-01/Accounts/AC123/Messages.json" || !ok || user != "AC123" || pass != "tw-token" {
			http.Error(w, `{"code":20003}`, http.StatusUnauthorized)
			return
		}
		_ = r.ParseForm()
		defer p.lock()()
		p.sms = append(p.sms, map[string]string{"To": r.Form.Get("To"), "From": r.Form.Get("From"), "Body": r.Form.Get("Body")})
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"sid":"SM1","status":"queued"}`)
	}))
	t.Cleanup(twilio.Close)
	// SMTP.
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return smtpSession{p}, nil }))
	srv.Domain, srv.AllowInsecureAuth = "localhost", true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))})
	creds, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "demo", "private_key_id": "k1",
		"private_key": string(pemKey), "client_email": "notify@demo.iam.gserviceaccount.com", "token_uri": tokenSrv.URL})
	credFile := filepath.Join(t.TempDir(), "fcm.json")
	if err := os.WriteFile(credFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.FCM = notify.FCMConfig{BaseURL: fcm.URL, ProjectID: "demo", CredentialsFile: credFile}
	cfg.Twilio = notify.TwilioConfig{BaseURL: twilio.URL, AccountSID: "AC123", AuthToken: "tw-token", From: "+15550000000"}
	cfg.SMTP = notify.SMTPConfig{Addr: l.Addr().String(), From: "no-reply@comfortech.test"}
	return p, cfg
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// webhookSink verifies each delivery with the Standard Webhooks library
// and counts it once per webhook-id; it fails the first p.fail requests.
func (p *providers) webhookSink(t testing.TB) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		defer p.lock()()
		p.hookN++
		if p.fail > 0 {
			p.fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if p.throt {
			p.throt = false
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		wh, err := standardwebhooks.NewWebhook(p.secret)
		if err != nil {
			t.Errorf("secret: %v", err)
		}
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("webhook signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		p.hooks[r.Header.Get("webhook-id")]++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.Close)
	return s
}

type service struct {
	ops     string // the ops listener's address (/metrics)
	conn    *grpc.ClientConn
	idp     *idptest.Server
	brokers []string
}

// testLogger logs into the test's output, but not into a benchmark's,
// whose output is its figures.
func testLogger(t testing.TB) *zap.Logger {
	if _, bench := t.(*testing.B); bench {
		return zap.NewNop()
	}
	return zaptest.NewLogger(t)
}

func start(t testing.TB, databaseURL string, cfg notify.Config) *service {
	t.Helper()
	s, _ := launch(t, idptest.Start(t), kafkatest.NewCluster(t).ListenAddrs(), databaseURL, cfg)
	return s
}

// launch runs the service against an identity provider and brokers until
// the test ends or stop is called.
func launch(t testing.TB, idp *idptest.Server, brokers []string, databaseURL string, cfg notify.Config, opts ...process.Option) (*service, func()) {
	t.Helper()
	grpcL := must(net.Listen("tcp", "127.0.0.1:0"))
	opsL := must(net.Listen("tcp", "127.0.0.1:0"))
	cfg.Auth = auth.Settings{Issuer: idp.Issuer()}
	cfg.DatabaseURL, cfg.KafkaBrokers = databaseURL, brokers
	cfg.MaxAttempts, cfg.MinBackoff, cfg.MaxBackoff, cfg.Workers = 6, 50*time.Millisecond, 300*time.Millisecond, 8
	if cfg.Webhook.Timeout == 0 {
		cfg.Webhook = notify.WebhookConfig{AllowPrivate: true, Timeout: 5 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- notify.Run(ctx, cfg, testLogger(t), append(opts, process.WithGRPCListener(grpcL), process.WithOpsListener(opsL))...)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	conn := must(grpc.NewClient(grpcL.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials())))
	t.Cleanup(func() { _ = conn.Close() })
	eventually(t, "the service to be ready", func() bool {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
	return &service{ops: opsL.Addr().String(), conn: conn, idp: idp, brokers: brokers}, stop
}

func eventually(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func as(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

func publish(t testing.TB, brokers []string, msgs ...kafka.Message) {
	t.Helper()
	p := must(kafka.NewProducer(kafkatest.Config(brokers), nil, nil))
	defer func() { _ = p.Close() }()
	for len(msgs) > 0 {
		n := min(500, len(msgs))
		if err := p.PublishBatch(context.Background(), msgs[:n]); err != nil {
			t.Fatal(err)
		}
		msgs = msgs[n:]
	}
}

func notification(t testing.TB, n *eventsv1.OutboxNotification) kafka.Message {
	m, err := kafka.EncodeEvent(context.Background(), notify.TopicOutbox, kafka.Event{Source: "/services/data",
		Type: "comfortech.notification.requested.v1", Key: n.GetAccountId(), Data: n})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestService drives the whole service: catalog, preferences, recipients,
// templates, dispatch to FCM, Twilio, SMTP and a flaky webhook sink, the
// delivery log and its events, dead letters and direct sends.
func TestService(t *testing.T) {
	t.Parallel()
	for name, url := range map[string]func(t testing.TB) string{
		"sqlite": storetest.SQLiteURL, "postgres": storetest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testService(t, url(t))
		})
	}
}

func testService(t *testing.T, databaseURL string) {
	p, cfg := startProviders(t)
	catalog := t.TempDir()
	if err := os.WriteFile(filepath.Join(catalog, "billing.yaml"), []byte("name: billing\ntitle: Billing\nevent_types:\n  - id: invoice-ready\n    title: Invoice ready\n    levels: [info]\n    default_channels: [email]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.CatalogDir = catalog
	s := start(t, databaseURL, cfg)
	admin := as(s.idp.AdminLogin(t).AccessToken)
	svcCtx := as(s.idp.ServiceToken(t, "comfortech-auth-gateway"))
	alice := s.idp.CreateUser(t, "+79510000001")
	aliceCtx := as(s.idp.Login(t, alice.Username, alice.Password).AccessToken)

	cat := notifyv1.NewCatalogServiceClient(s.conn)
	apps := must(cat.ListApplications(admin, &notifyv1.ListApplicationsRequest{}))
	if len(apps.Items) != 2 || apps.Items[0].Name != "billing" || apps.Items[1].Name != "comfortech" {
		t.Fatalf("catalog at start-up = %v", apps.Items)
	}
	put := &notifyv1.PutApplicationRequest{Application: &notifyv1.Application{Name: "devices", Title: "Devices", EventTypes: []*notifyv1.EventType{
		{Id: "filter-change", Title: "Filter", Levels: []string{"info"}, DefaultChannels: []notifyv1.Channel{notifyv1.Channel_CHANNEL_PUSH}}}}}
	if r := must(cat.PutApplication(admin, put)); !r.Created || !r.Changed {
		t.Errorf("first put = %v", r)
	}
	if r := must(cat.PutApplication(admin, put)); r.Created || r.Changed {
		t.Errorf("same put again = %v", r)
	}
	if _, err := cat.PutApplication(aliceCtx, put); status.Code(err) != codes.PermissionDenied {
		t.Errorf("user PutApplication: %v", err)
	}

	// Alice: push token, a webhook, preferences and an e-mail template.
	tokens := notifyv1.NewPushTokenServiceClient(s.conn)
	must(tokens.RegisterPushToken(aliceCtx, &notifyv1.RegisterPushTokenRequest{Platform: notifyv1.Platform_PLATFORM_ANDROID, Token: "fcm-token-alice-0001", AppVersion: "2.3.1"}))
	sink := p.webhookSink(t)
	hooks := notifyv1.NewWebhookEndpointServiceClient(s.conn)
	ep := must(hooks.CreateWebhookEndpoint(aliceCtx, &notifyv1.CreateWebhookEndpointRequest{Url: sink.URL + "/hook", EventTypes: []string{"comfortech/*"}}))
	p.mu.Lock()
	p.secret, p.fail, p.throt = ep.Secret, 3, true // down for three requests, then 429, then up
	p.mu.Unlock()
	prefs := notifyv1.NewPreferenceServiceClient(s.conn)
	must(prefs.UpdateNotificationPreferences(aliceCtx, &notifyv1.UpdateNotificationPreferencesRequest{Preferences: &notifyv1.NotificationPreferences{
		Rules: []*notifyv1.PreferenceRule{{Application: "comfortech", EventType: "alert.raised",
			Channels: []notifyv1.Channel{notifyv1.Channel_CHANNEL_PUSH, notifyv1.Channel_CHANNEL_EMAIL, notifyv1.Channel_CHANNEL_WEBHOOK}}},
		QuietHours: &notifyv1.QuietHours{Start: "22:00", End: "07:00"}}}))
	must(notifyv1.NewTemplateServiceClient(s.conn).PutTemplate(admin, &notifyv1.PutTemplateRequest{Template: &notifyv1.Template{
		Application: "comfortech", EventType: "alert.raised", Channel: notifyv1.Channel_CHANNEL_EMAIL, Locale: "en",
		Subject: "Alert on {{.device_name}}", Body: "{{.device_name}}: {{.Message}}", HtmlBody: "<p>{{.device_name}} &mdash; {{.Message}}</p>"}}))

	payload, _ := structpb.NewStruct(map[string]any{"device_name": "Bedroom", "value": 9.5, "email": "alice@example.com", "phone": "+79510000001"})
	alert := &eventsv1.OutboxNotification{Application: "comfortech", EventType: "alert.raised", Level: "critical", Message: "Too cold: 9.5 °C",
		Timestamp: timestamppb.Now(), AccountId: alice.ID, Id: uuid.NewString(), Payload: payload}
	// The same notification twice, and a malformed one.
	bad := kafka.Message{Topic: notify.TopicOutbox, Key: []byte("x"), Value: []byte(`{"application":"comfortech"}`)}
	publish(t, s.brokers, notification(t, alert), notification(t, alert), bad)

	eventually(t, "push, e-mail and the webhook", func() bool {
		defer p.lock()()
		return len(p.fcm) == 1 && len(p.mails) == 1 && p.hooks[alert.Id] == 1
	})
	p.mu.Lock()
	if n, _ := p.fcm[0]["notification"].(map[string]any); n["body"] != "Too cold: 9.5 °C" {
		t.Errorf("push = %v", p.fcm[0])
	}
	if m := p.mails[0]; !strings.Contains(m, "Subject: Alert on Bedroom") || !strings.Contains(m, "text/html") || !strings.Contains(m, "text/plain") {
		t.Errorf("mail = %s", m)
	}
	if p.hookN != 5 {
		t.Errorf("webhook requests = %d, want 3 failures + 429 + 1", p.hookN)
	}
	p.mu.Unlock()

	// Attempts are recorded in batches shortly after they happen: wait for
	// the last one to be in the log.
	deliveries := notifyv1.NewDeliveryServiceClient(s.conn)
	var (
		log            *notifyv1.ListDeliveriesResponse
		sent, retrying int
	)
	eventually(t, "the delivery log to hold every attempt", func() bool {
		log = must(deliveries.ListDeliveries(admin, &notifyv1.ListDeliveriesRequest{NotificationId: alert.Id}))
		sent, retrying = 0, 0
		for _, d := range log.Items {
			switch d.Status {
			case notifyv1.DeliveryStatus_DELIVERY_STATUS_SENT:
				sent++
			case notifyv1.DeliveryStatus_DELIVERY_STATUS_RETRYING:
				retrying++
			}
		}
		return sent == 3 && retrying == 4
	})
	// The same attempts in the metrics.
	body := scrape(t, s.ops)
	for _, want := range []string{
		`comfort_notify_delivery_attempts_total{channel="webhook",status="retrying"} 4`,
		`comfort_notify_delivery_attempts_total{channel="webhook",status="sent"} 1`,
		`comfort_notify_delivery_attempts_total{channel="push",status="sent"} 1`,
		`comfort_notify_delivery_attempts_total{channel="email",status="sent"} 1`,
		`comfort_notify_dead_letters_total{channel="webhook"} 0`,
		`comfort_notify_delivery_duration_seconds_count{channel="webhook"} 5`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	events := kafkatest.ReadTopic(t, s.brokers, notify.TopicDelivery, 7, 20*time.Second)
	if len(events) < 7 || events[0].Header(kafka.HeaderType) != notify.TypeDelivery {
		t.Errorf("notifications.delivery: %d events", len(events))
	}

	// The malformed record is in the DLQ with its reason, and listed.
	dlq := kafkatest.ReadTopic(t, s.brokers, notify.TopicDLQ, 1, 20*time.Second)
	if r := dlq[0].Header(kafka.HeaderDLQReason); !strings.Contains(r, "event_type") {
		t.Errorf("dlq reason = %q", r)
	}
	dead := notifyv1.NewDeadLetterServiceClient(s.conn)
	var dl *notifyv1.DeadLetter
	eventually(t, "the dead letter to be listed", func() bool {
		l, err := dead.ListDeadLetters(admin, &notifyv1.ListDeadLettersRequest{})
		if err == nil && len(l.Items) == 1 && l.Items[0].Reason != "" {
			dl = l.Items[0]
		}
		return dl != nil
	})
	// Replayed, it is still malformed: dead-lettered again.
	if r := must(dead.ReplayDeadLetter(admin, &notifyv1.ReplayDeadLetterRequest{DeadLetterId: dl.Id})); r.DeadLetter.ReplayCount != 1 {
		t.Errorf("replay = %v", r.DeadLetter)
	}
	eventually(t, "the replayed record to be dead-lettered again", func() bool {
		l, err := dead.ListDeadLetters(admin, &notifyv1.ListDeadLettersRequest{})
		return err == nil && len(l.Items) == 2
	})

	// A stale push token: removed, and the critical alert goes by SMS.
	p.mu.Lock()
	p.gone["fcm-token-alice-0001"] = true
	p.mu.Unlock()
	co := &eventsv1.OutboxNotification{Application: "comfortech", EventType: "device.co_detected", Level: "critical", Message: "CO detected",
		Timestamp: timestamppb.Now(), AccountId: alice.ID, Id: uuid.NewString(), Payload: payload}
	must(prefs.UpdateNotificationPreferences(aliceCtx, &notifyv1.UpdateNotificationPreferencesRequest{Preferences: &notifyv1.NotificationPreferences{
		Rules: []*notifyv1.PreferenceRule{{Application: "comfortech", EventType: "device.co_detected", Channels: []notifyv1.Channel{notifyv1.Channel_CHANNEL_PUSH}}}}}))
	publish(t, s.brokers, notification(t, co))
	eventually(t, "the SMS fallback", func() bool {
		defer p.lock()()
		return len(p.sms) == 1 && p.sms[0]["To"] == "+79510000001" && p.sms[0]["Body"] == "CO detected"
	})
	if l := must(tokens.ListPushTokens(aliceCtx, &notifyv1.ListPushTokensRequest{})); len(l.Items) != 0 {
		t.Errorf("stale token kept: %v", l.Items)
	}

	// Direct sends: services only, idempotent.
	direct := notifyv1.NewDirectServiceClient(s.conn)
	req := &notifyv1.SendDirectMessageRequest{Id: "otp-1", Channel: notifyv1.Channel_CHANNEL_SMS, Recipient: &notifyv1.SendDirectMessageRequest_Phone{Phone: "+79510000009"}, Body: "Code 1234"}
	if _, err := direct.SendDirectMessage(aliceCtx, req); status.Code(err) != codes.PermissionDenied {
		t.Errorf("user direct send: %v", err)
	}
	for range 2 {
		if r := must(direct.SendDirectMessage(svcCtx, req)); !r.Sent {
			t.Errorf("direct = %v", r)
		}
	}
	p.mu.Lock()
	if len(p.sms) != 2 || p.sms[1]["Body"] != "Code 1234" {
		t.Errorf("sms = %v", p.sms)
	}
	p.mu.Unlock()
	if _, err := notifyv1.NewDevSinkServiceClient(s.conn).ListSinkMessages(admin, &notifyv1.ListSinkMessagesRequest{}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("dev sink off: %v", err)
	}
}

// scrape returns the text of /metrics at opsAddr.
func scrape(t testing.TB, opsAddr string) string {
	t.Helper()
	resp, err := http.Get("http://" + opsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
