// Package accountevents is the auth gateway's side of the account.events
// topic. It publishes the gateway's account events (AccountRegistered,
// AccountDeleted) as CloudEvents, keyed by account id (ARCHITECTURE §5),
// and consumes the data service's AccountSuspended and AccountReinstated,
// which disable and enable the account's identity-provider user.
//
// The gateway has no database, so there is no transactional outbox here:
// each event is published synchronously and the use case compensates when
// the publish fails (see app.Service.Register).
package accountevents

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/gateways/auth/internal/app"
	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// Topic, source and CloudEvents types, as the events contract names them.
const (
	Topic          = "account.events"
	Source         = "/gateways/auth"
	TypeRegistered = "comfortech.account.registered.v1"
	TypeDeleted    = "comfortech.account.deleted.v1"
)

// Producer is what Publisher needs of kafka.Producer.
type Producer interface {
	Publish(ctx context.Context, m kafka.Message) error
}

// Publisher implements app.AccountEvents over a Kafka producer.
type Publisher struct {
	p       Producer
	timeout time.Duration
	now     func() time.Time
}

var _ app.AccountEvents = (*Publisher)(nil)

// New returns a Publisher that waits at most timeout for the brokers'
// acknowledgement of each event (no bound when timeout <= 0).
func New(p Producer, timeout time.Duration) *Publisher {
	return &Publisher{p: p, timeout: timeout, now: time.Now}
}

// Registered implements app.AccountEvents.
func (p *Publisher) Registered(ctx context.Context, a app.RegisteredAccount) error {
	return p.publish(ctx, TypeRegistered, a.AccountID, &eventsv1.AccountRegistered{
		AccountId: a.AccountID, Phone: a.Phone, Name: a.Name, Email: a.Email,
		Locale: a.Locale, Timezone: a.Timezone, Time: timestamppb.New(a.Time),
	})
}

// Deleted implements app.AccountEvents.
func (p *Publisher) Deleted(ctx context.Context, accountID string) error {
	return p.publish(ctx, TypeDeleted, accountID, &eventsv1.AccountDeleted{
		AccountId: accountID, Time: timestamppb.New(p.now()),
	})
}

func (p *Publisher) publish(ctx context.Context, typ, key string, data proto.Message) error {
	m, err := kafka.EncodeEvent(ctx, Topic, kafka.Event{Source: Source, Type: typ, Key: key, Data: data})
	if err != nil {
		return fmt.Errorf("encode %s: %w", typ, err)
	}
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	if err := p.p.Publish(ctx, m); err != nil {
		return fmt.Errorf("%w: publish %s: %w", app.ErrUnavailable, typ, err)
	}
	return nil
}
