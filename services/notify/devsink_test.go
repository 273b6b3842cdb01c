package notify_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/services/notify"
	"github.com/comfortech/platform/services/notify/internal/store/storetest"
)

// TestDevSink: in dev mode push and SMS land in the inbox the admin API
// lists (what `make run` uses), and a webhook answering 410 is disabled.
func TestDevSink(t *testing.T) {
	t.Parallel()
	s := start(t, storetest.SQLiteURL(t), notify.Config{DevSink: true})
	admin := as(s.idp.AdminLogin(t).AccessToken)
	bob := s.idp.CreateUser(t, "+79510000002")
	bobCtx := as(s.idp.Login(t, bob.Username, bob.Password).AccessToken)
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer gone.Close()

	must(notifyv1.NewPushTokenServiceClient(s.conn).RegisterPushToken(bobCtx, &notifyv1.RegisterPushTokenRequest{
		Platform: notifyv1.Platform_PLATFORM_IOS, Token: "apns-ish-token-bob-0001"}))
	hooks := notifyv1.NewWebhookEndpointServiceClient(s.conn)
	ep := must(hooks.CreateWebhookEndpoint(bobCtx, &notifyv1.CreateWebhookEndpointRequest{Url: gone.URL}))
	must(notifyv1.NewPreferenceServiceClient(s.conn).UpdateNotificationPreferences(bobCtx, &notifyv1.UpdateNotificationPreferencesRequest{
		Preferences: &notifyv1.NotificationPreferences{Rules: []*notifyv1.PreferenceRule{{
			Channels: []notifyv1.Channel{notifyv1.Channel_CHANNEL_PUSH, notifyv1.Channel_CHANNEL_SMS, notifyv1.Channel_CHANNEL_WEBHOOK}}}}}))
	payload, _ := structpb.NewStruct(map[string]any{"phone": "+79510000002"})
	publish(t, s.brokers, notification(t, &eventsv1.OutboxNotification{Application: "comfortech", EventType: "device.filter_change", Level: "info",
		Message: "Change the filter", Timestamp: timestamppb.Now(), AccountId: bob.ID, Id: uuid.NewString(), Payload: payload}))

	inbox := notifyv1.NewDevSinkServiceClient(s.conn)
	eventually(t, "push and SMS in the dev inbox", func() bool {
		l, err := inbox.ListSinkMessages(admin, &notifyv1.ListSinkMessagesRequest{})
		return err == nil && len(l.Items) == 2 && l.Items[0].Body == "Change the filter"
	})
	eventually(t, "the 410 endpoint to be disabled", func() bool {
		e, err := hooks.GetWebhookEndpoint(bobCtx, &notifyv1.GetWebhookEndpointRequest{EndpointId: ep.Endpoint.Id})
		return err == nil && !e.Endpoint.Enabled && e.Endpoint.DisabledReason != ""
	})
	if r := must(inbox.ClearSinkMessages(admin, &notifyv1.ClearSinkMessagesRequest{})); r.DeletedCount != 2 {
		t.Errorf("cleared %d", r.DeletedCount)
	}
}
