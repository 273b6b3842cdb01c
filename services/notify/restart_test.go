package notify_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/services/notify"
	"github.com/comfortech/platform/services/notify/internal/store/storetest"
)

// TestSinkDownAcrossRestart: a webhook sink that is down while the
// service restarts receives every notification exactly once when it
// recovers: retry state lives in the database, not in memory.
func TestSinkDownAcrossRestart(t *testing.T) {
	t.Parallel()
	idp := idptest.Start(t)
	brokers := kafkatest.NewCluster(t).ListenAddrs()
	dbURL := storetest.SQLiteURL(t)
	p := &providers{hooks: map[string]int{}, gone: map[string]bool{}, fail: 1 << 30}
	sink := p.webhookSink(t)

	s, stop := launch(t, idp, brokers, dbURL, notify.Config{})
	carol := idp.CreateUser(t, "+79510000003")
	carolCtx := as(idp.Login(t, carol.Username, carol.Password).AccessToken)
	ep := must(notifyv1.NewWebhookEndpointServiceClient(s.conn).CreateWebhookEndpoint(carolCtx, &notifyv1.CreateWebhookEndpointRequest{Url: sink.URL}))
	p.mu.Lock()
	p.secret = ep.Secret
	p.mu.Unlock()
	must(notifyv1.NewPreferenceServiceClient(s.conn).UpdateNotificationPreferences(carolCtx, &notifyv1.UpdateNotificationPreferencesRequest{
		Preferences: &notifyv1.NotificationPreferences{Rules: []*notifyv1.PreferenceRule{{Channels: []notifyv1.Channel{notifyv1.Channel_CHANNEL_WEBHOOK}}}}}))

	const n = 20
	ids := make([]string, n)
	msgs := make([]kafka.Message, n)
	for i := range n {
		ids[i] = uuid.NewString()
		msgs[i] = notification(t, &eventsv1.OutboxNotification{Application: "comfortech", EventType: "alert.raised", Level: "warning",
			Message: fmt.Sprintf("reading %d", i), Timestamp: timestamppb.Now(), AccountId: carol.ID, Id: ids[i]})
	}
	publish(t, brokers, msgs...)
	// The first attempts fail, then the endpoint's circuit opens and the
	// rest wait without calling it.
	admin := as(idp.AdminLogin(t).AccessToken)
	eventually(t, "a failed attempt of every notification", func() bool {
		l, err := notifyv1.NewDeliveryServiceClient(s.conn).ListDeliveries(admin, &notifyv1.ListDeliveriesRequest{
			Status: notifyv1.DeliveryStatus_DELIVERY_STATUS_RETRYING, PageSize: 1000})
		if err != nil {
			return false
		}
		seen := map[string]bool{}
		for _, d := range l.Items {
			seen[d.NotificationId] = true
		}
		return len(seen) == n
	})
	stop()

	p.mu.Lock()
	p.fail = 0 // the sink recovers while the service is down
	p.mu.Unlock()
	launch(t, idp, brokers, dbURL, notify.Config{})
	eventually(t, "every notification delivered", func() bool {
		defer p.lock()()
		return len(p.hooks) == n
	})
	time.Sleep(500 * time.Millisecond) // let any duplicate arrive
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if p.hooks[id] != 1 {
			t.Errorf("notification %s delivered %d times", id, p.hooks[id])
		}
	}
}
