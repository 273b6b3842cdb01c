package notify_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/services/notify"
	"github.com/comfortech/platform/services/notify/internal/store/storetest"
)

// eventSink is a subscriber's receiver: it checks each delivery's
// Standard Webhooks signature with the reference library, and its bearer
// token, and keeps the verified bodies by webhook-id.
type eventSink struct {
	t      testing.TB
	mu     sync.Mutex
	secret string
	token  string
	fail   int  // requests to answer 503 first
	gone   bool // answer the next request 410
	calls  int
	bodies map[string][]string
}

func newEventSink(t testing.TB, token string) (*eventSink, *httptest.Server) {
	s := &eventSink{t: t, token: token, bodies: map[string][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.calls++
		switch {
		case s.fail > 0:
			s.fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case s.gone:
			s.gone = false
			w.WriteHeader(http.StatusGone)
			return
		case r.Header.Get("Authorization") != "Bearer "+s.token:
			t.Errorf("delivery with Authorization %q", r.Header.Get("Authorization"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		wh, err := standardwebhooks.NewWebhook(s.secret)
		if err == nil {
			err = wh.Verify(body, r.Header)
		}
		if err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		id := r.Header.Get("webhook-id")
		s.bodies[id] = append(s.bodies[id], string(body))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *eventSink) set(f func(s *eventSink)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// received returns the bodies delivered with webhook-id id.
func (s *eventSink) received(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[id]
}

func (s *eventSink) total() (calls, verified int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bodies {
		verified += len(b)
	}
	return s.calls, verified
}

func lifecycle(t testing.TB, typ, deviceID string, data proto.Message) kafka.Message {
	t.Helper()
	m, err := kafka.EncodeEvent(t.Context(), "device.lifecycle", kafka.Event{Source: "/services/device", Type: typ, Key: deviceID, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEventSubscriptions: operators subscribe URLs to platform events;
// a device.lifecycle event reaches the subscription whose filters match,
// signed with its secret and authenticated with its token, after the
// receiver's failures are retried; a subscription whose filter does not
// match receives nothing; every attempt is in the delivery log (naming the
// subscription) and on notifications.delivery; a receiver answering 410
// disables its subscription, whose dead letter is delivered again once
// the operator enables it.
func TestEventSubscriptions(t *testing.T) {
	t.Parallel()
	s := start(t, storetest.SQLiteURL(t), notify.Config{})
	admin := as(s.idp.AdminLogin(t).AccessToken)
	user := s.idp.CreateUser(t, "+79510000007")
	userCtx := as(s.idp.Login(t, user.Username, user.Password).AccessToken)
	subs := notifyv1.NewSubscriptionServiceClient(s.conn)

	if _, err := subs.ListSubscriptions(t.Context(), &notifyv1.ListSubscriptionsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("anonymous list: %v", err)
	}
	if _, err := subs.ListSubscriptions(userCtx, &notifyv1.ListSubscriptionsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("app user list: %v", err)
	}

	device := uuid.NewString()
	crm, crmSrv := newEventSink(t, "crm-token")
	crm.set(func(s *eventSink) { s.fail = 2 }) // down for two requests
	offline, offlineSrv := newEventSink(t, "erp-token")
	crmSub := &notifyv1.Subscription{Name: "crm", Url: crmSrv.URL + "/events", EventTypes: []string{"device.lifecycle"}, Enabled: true,
		Filters: []*notifyv1.AttributeFilter{
			{Attribute: "type", Operator: notifyv1.FilterOperator_FILTER_OPERATOR_PREFIX, Value: "comfortech.device.presence"},
			{Attribute: "data.device_id", Operator: notifyv1.FilterOperator_FILTER_OPERATOR_EXACT, Value: device},
		},
		Auth: &notifyv1.SubscriptionAuth{Method: &notifyv1.SubscriptionAuth_Bearer{Bearer: &notifyv1.BearerAuth{Token: "crm-token"}}}}
	put := must(subs.PutSubscription(admin, &notifyv1.PutSubscriptionRequest{Subscription: crmSub}))
	if !put.Created || !put.Changed || !strings.HasPrefix(put.Secret, "whsec_") ||
		put.Subscription.Status != notifyv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE || put.Subscription.Auth.GetBearer().GetToken() != "" {
		t.Fatalf("create = %v", put)
	}
	crm.set(func(s *eventSink) { s.secret = put.Secret })
	// The same subscription again, its token left out as Get shows it:
	// nothing changes, no secret is shown.
	got := must(subs.GetSubscription(admin, &notifyv1.GetSubscriptionRequest{SubscriptionName: "crm"})).Subscription
	if again := must(subs.PutSubscription(admin, &notifyv1.PutSubscriptionRequest{Subscription: got})); again.Created || again.Changed || again.Secret != "" {
		t.Errorf("same subscription again = %v", again)
	}
	put = must(subs.PutSubscription(admin, &notifyv1.PutSubscriptionRequest{Subscription: &notifyv1.Subscription{
		Name: "erp", Url: offlineSrv.URL, EventTypes: []string{"device.lifecycle", "alerts"}, Enabled: true,
		Filters: []*notifyv1.AttributeFilter{{Attribute: "data.online", Operator: notifyv1.FilterOperator_FILTER_OPERATOR_EXACT, Value: "false"}},
		Auth:    &notifyv1.SubscriptionAuth{Method: &notifyv1.SubscriptionAuth_Bearer{Bearer: &notifyv1.BearerAuth{Token: "erp-token"}}}}}))
	offline.set(func(s *eventSink) { s.secret = put.Secret })
	watcher, watcherSrv := newEventSink(t, "")
	must(subs.PutSubscription(admin, &notifyv1.PutSubscriptionRequest{Subscription: &notifyv1.Subscription{
		Name: "deliveries", Url: watcherSrv.URL, EventTypes: []string{notify.TopicDelivery}, Enabled: true}}))
	_, err := subs.PutSubscription(admin, &notifyv1.PutSubscriptionRequest{Subscription: &notifyv1.Subscription{
		Name: "no-password", Url: crmSrv.URL, EventTypes: []string{"alerts"},
		Auth: &notifyv1.SubscriptionAuth{Method: &notifyv1.SubscriptionAuth_Basic{Basic: &notifyv1.BasicAuth{Username: "crm"}}}}})
	if field := badField(err); status.Code(err) != codes.InvalidArgument || field != "subscription.auth.basic.password" {
		t.Errorf("basic auth without a password: %v (field %q)", err, field)
	}

	// The device comes online; it was also claimed (not a presence event)
	// and other devices report telemetry (no subscription takes it).
	online := lifecycle(t, "comfortech.device.presence.v1", device, &eventsv1.DevicePresenceChanged{DeviceId: device, Online: true,
		Reason: eventsv1.PresenceReason_PRESENCE_REASON_CONNECTED, Time: timestamppb.Now()})
	claimed := lifecycle(t, "comfortech.device.claimed.v1", device, &eventsv1.DeviceClaimed{DeviceId: device, OwnerAccountId: user.ID})
	telemetry, err := kafka.EncodeEvent(t.Context(), "device.telemetry", kafka.Event{Source: "/services/device", Type: "comfortech.device.telemetry.v1",
		Key: device, Data: &eventsv1.TelemetryReported{DeviceId: device}})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, s.brokers, claimed, online, telemetry)
	eventID := online.Header(kafka.HeaderID)

	eventually(t, "the presence event delivered to crm", func() bool { return len(crm.received(eventID)) == 1 })
	var body struct {
		SpecVersion, ID, Type, Source, Subject, Time, DataContentType string
		Data                                                          struct {
			DeviceID string `json:"device_id"`
			Online   bool
			Reason   string
		}
	}
	if err := json.Unmarshal([]byte(crm.received(eventID)[0]), &body); err != nil {
		t.Fatal(err)
	}
	if body.SpecVersion != "1.0" || body.ID != eventID || body.Type != "comfortech.device.presence.v1" || body.Source != "/services/device" ||
		body.Subject != device || body.DataContentType != "application/json" || body.Time == "" ||
		body.Data.DeviceID != device || !body.Data.Online || body.Data.Reason != "PRESENCE_REASON_CONNECTED" {
		t.Errorf("delivered event = %+v", body)
	}

	deliveries := notifyv1.NewDeliveryServiceClient(s.conn)
	var log []*notifyv1.Delivery
	eventually(t, "crm's three attempts in the delivery log", func() bool {
		log = must(deliveries.ListDeliveries(admin, &notifyv1.ListDeliveriesRequest{Subscription: "crm"})).Items
		return len(log) == 3
	})
	for i, want := range []notifyv1.DeliveryStatus{notifyv1.DeliveryStatus_DELIVERY_STATUS_SENT,
		notifyv1.DeliveryStatus_DELIVERY_STATUS_RETRYING, notifyv1.DeliveryStatus_DELIVERY_STATUS_RETRYING} {
		d := log[i]
		if d.Status != want || d.Subscription != "crm" || d.NotificationId != eventID || d.EventType != "comfortech.device.presence.v1" ||
			d.AccountId != "" || d.Recipient != strings.TrimPrefix(crmSrv.URL, "http://") || d.Channel != notifyv1.Channel_CHANNEL_WEBHOOK {
			t.Errorf("log[%d] = %v, want %s", i, d, want)
		}
	}
	records := kafkatest.ReadTopic(t, s.brokers, notify.TopicDelivery, 3, 20*time.Second)
	for _, r := range records {
		var d eventsv1.DeliveryAttempted
		if _, err := kafka.DecodeEvent(&r, &d); err != nil || d.Subscription != "crm" || string(r.Key) != "crm" || d.NotificationId != eventID {
			t.Errorf("notifications.delivery record %s: %v (%v)", r.Key, &d, err)
		}
	}
	if calls, _ := offline.total(); calls != 0 {
		t.Errorf("erp, whose filter matches none of these events, was called %d times", calls)
	}
	if l := must(deliveries.ListDeliveries(admin, &notifyv1.ListDeliveriesRequest{Subscription: "erp"})).Items; len(l) != 0 {
		t.Errorf("erp's delivery log = %v", l)
	}

	// A new secret: the old one keeps signing during the grace period,
	// so a receiver holding either verifies deliveries.
	rot := must(subs.RotateSubscriptionSecret(admin, &notifyv1.RotateSubscriptionSecretRequest{SubscriptionName: "crm", GracePeriod: durationpb.New(time.Hour)}))
	if rot.Secret == "" || rot.Secret == put.Secret {
		t.Fatalf("rotate = %v", rot)
	}
	crm.set(func(s *eventSink) { s.secret = rot.Secret; s.gone = true })

	// The receiver answers 410: the subscription is disabled and the event
	// dead-lettered; enabled again, the dead letter's replay delivers it.
	offlineEvent := lifecycle(t, "comfortech.device.presence.v1", device, &eventsv1.DevicePresenceChanged{DeviceId: device, Online: false,
		Reason: eventsv1.PresenceReason_PRESENCE_REASON_DISCONNECTED, Time: timestamppb.Now()})
	publish(t, s.brokers, offlineEvent)
	offlineID := offlineEvent.Header(kafka.HeaderID)
	eventually(t, "erp to receive the offline event", func() bool { return len(offline.received(offlineID)) == 1 })
	eventually(t, "crm disabled after its 410", func() bool {
		sub := must(subs.GetSubscription(admin, &notifyv1.GetSubscriptionRequest{SubscriptionName: "crm"})).Subscription
		return sub.Status == notifyv1.SubscriptionStatus_SUBSCRIPTION_STATUS_DISABLED && sub.StatusReason == "endpoint answered 410"
	})
	dead := notifyv1.NewDeadLetterServiceClient(s.conn)
	var dl *notifyv1.DeadLetter
	eventually(t, "crm's dead letter", func() bool {
		l := must(dead.ListDeadLetters(admin, &notifyv1.ListDeadLettersRequest{Topic: "device.lifecycle"})).Items
		if len(l) == 1 {
			dl = l[0]
		}
		return dl != nil
	})
	if dl.Headers["subscription"] != "crm" || dl.NotificationId != offlineID || !strings.Contains(dl.Reason, "410") {
		t.Errorf("dead letter = %v", dl)
	}
	if _, err := dead.ReplayDeadLetter(admin, &notifyv1.ReplayDeadLetterRequest{DeadLetterId: dl.Id}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("replay to a disabled subscription: %v", err)
	}
	got = must(subs.GetSubscription(admin, &notifyv1.GetSubscriptionRequest{SubscriptionName: "crm"})).Subscription
	if r := must(subs.PutSubscription(admin, &notifyv1.PutSubscriptionRequest{Subscription: got})); !r.Changed ||
		r.Subscription.Status != notifyv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE || r.Subscription.StatusReason != "" {
		t.Fatalf("enable again = %v", r)
	}
	must(dead.ReplayDeadLetter(admin, &notifyv1.ReplayDeadLetterRequest{DeadLetterId: dl.Id}))
	eventually(t, "the replayed event delivered to crm", func() bool { return len(crm.received(offlineID)) == 1 })
	if n := len(offline.received(offlineID)); n != 1 {
		t.Errorf("the replay reached erp too: %d deliveries", n)
	}

	must(subs.DeleteSubscription(admin, &notifyv1.DeleteSubscriptionRequest{SubscriptionName: "crm"}))
	if _, err := subs.GetSubscription(admin, &notifyv1.GetSubscriptionRequest{SubscriptionName: "crm"}); status.Code(err) != codes.NotFound {
		t.Errorf("get deleted: %v", err)
	}
	if l := must(subs.ListSubscriptions(admin, &notifyv1.ListSubscriptionsRequest{})).Items; len(l) != 2 || l[0].Name != "deliveries" || l[1].Name != "erp" {
		t.Errorf("list = %v", l)
	}
	// The records of subscription deliveries are not delivered to a
	// subscription of notifications.delivery: each would make another.
	if calls, _ := watcher.total(); calls != 0 {
		t.Errorf("the notifications.delivery subscription was called %d times", calls)
	}
}

// badField is the field a BadRequest detail of err names.
func badField(err error) string {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.FieldViolations) > 0 {
			return br.FieldViolations[0].Field
		}
	}
	return ""
}

// TestPausedSubscription: the events of a pause are not delivered when the
// operator enables the subscription again, whether or not the consumer
// still read their topic meanwhile; those after are.
func TestPausedSubscription(t *testing.T) {
	t.Parallel()
	s := start(t, storetest.SQLiteURL(t), notify.Config{})
	admin := as(s.idp.AdminLogin(t).AccessToken)
	subs := notifyv1.NewSubscriptionServiceClient(s.conn)
	sink, srv := newEventSink(t, "ops-token")
	sub := &notifyv1.Subscription{Name: "ops", Url: srv.URL, EventTypes: []string{"device.lifecycle"}, Enabled: true,
		Auth: &notifyv1.SubscriptionAuth{Method: &notifyv1.SubscriptionAuth_Bearer{Bearer: &notifyv1.BearerAuth{Token: "ops-token"}}}}
	put := must(subs.PutSubscription(admin, &notifyv1.PutSubscriptionRequest{Subscription: sub}))
	sink.set(func(s *eventSink) { s.secret = put.Secret })
	device := uuid.NewString()
	presence := func(online bool) kafka.Message {
		return lifecycle(t, "comfortech.device.presence.v1", device, &eventsv1.DevicePresenceChanged{DeviceId: device, Online: online,
			Reason: eventsv1.PresenceReason_PRESENCE_REASON_CONNECTED, Time: timestamppb.Now()})
	}

	before := presence(true)
	publish(t, s.brokers, before)
	eventually(t, "the event before the pause delivered", func() bool { return len(sink.received(before.Header(kafka.HeaderID))) == 1 })

	sub.Enabled = false
	must(subs.PutSubscription(admin, &notifyv1.PutSubscriptionRequest{Subscription: sub}))
	// Long enough for the consumer to leave the topic, which no active
	// subscription names now: the subscriptions cache (2 s) and the
	// consumer's check (every 2 s).
	time.Sleep(5 * time.Second)
	paused := presence(false)
	publish(t, s.brokers, paused)

	sub.Enabled = true
	must(subs.PutSubscription(admin, &notifyv1.PutSubscriptionRequest{Subscription: sub}))
	after := presence(true)
	publish(t, s.brokers, after)
	eventually(t, "the event after the pause delivered", func() bool { return len(sink.received(after.Header(kafka.HeaderID))) == 1 })
	if got := sink.received(paused.Header(kafka.HeaderID)); len(got) != 0 {
		t.Errorf("the event of the pause was delivered once the subscription was enabled again: %v", got)
	}
}
