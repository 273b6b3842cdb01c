package accountevents_test

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/gateways/auth/internal/accountevents"
	"github.com/comfortech/platform/gateways/auth/internal/app"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

func TestPublisher(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.NewCluster(t)
	brokers := cluster.ListenAddrs()
	prod, err := kafka.NewProducer(kafkatest.Config(brokers), zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Close() })
	p := accountevents.New(prod, 10*time.Second)

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const id = "5f0c8d3e-0000-4000-8000-000000000001"
	if err := p.Registered(t.Context(), app.RegisteredAccount{AccountID: id, Phone: "+79516519741", Name: "Ivan",
		Locale: "en", Timezone: "UTC", Time: at}); err != nil {
		t.Fatal(err)
	}
	if err := p.Deleted(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	msgs := kafkatest.ReadTopic(t, brokers, accountevents.Topic, 2, 10*time.Second)
	var reg eventsv1.AccountRegistered
	ev, err := kafka.DecodeEvent(&msgs[0], &reg)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != accountevents.TypeRegistered || ev.Source != accountevents.Source || ev.Key != id ||
		reg.GetAccountId() != id || reg.GetPhone() != "+79516519741" || !reg.GetTime().AsTime().Equal(at) {
		t.Fatalf("registered event: %+v %v", ev, &reg)
	}
	var del eventsv1.AccountDeleted
	ev, err = kafka.DecodeEvent(&msgs[1], &del)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != accountevents.TypeDeleted || ev.Key != id || del.GetAccountId() != id {
		t.Fatalf("deleted event: %+v %v", ev, &del)
	}
}

func TestPublisherUnavailable(t *testing.T) {
	t.Parallel()
	cfg := kafkatest.Config([]string{kafkatest.Addr(kafkatest.FreePort(t))})
	cfg.MetadataRetries = 1
	prod, err := kafka.NewProducer(cfg, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Close() })
	err = accountevents.New(prod, 2*time.Second).Deleted(t.Context(), "x")
	if !errors.Is(err, app.ErrUnavailable) {
		t.Fatalf("publish without brokers: %v", err)
	}
}
