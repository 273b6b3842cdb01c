package accountevents

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// Group is the auth gateway's consumer group on account.events.
const Group = "auth-gateway"

// CloudEvents types of the data service's events the gateway applies.
const (
	TypeSuspended  = "comfortech.account.suspended.v1"
	TypeReinstated = "comfortech.account.reinstated.v1"
)

// Suspensions is what the consumer needs of the use cases; *app.Service
// has it.
type Suspensions interface {
	// SetSuspended disables (true) or enables the account's user.
	SetSuspended(ctx context.Context, accountID string, suspended bool) error
}

// maxAttempts bounds the retries of one event before it is dead-lettered:
// with the runner's backoff capped at 5 s, about an hour, so an identity
// provider that is down for a while delays a suspension rather than
// losing it.
const maxAttempts = 720

// NewRunner returns the consumer of account.events in group Group: it
// applies AccountSuspended and AccountReinstated to the identity
// provider's users, in order per account (the events are keyed by
// account). Dead letters go through dlq; log and metrics may be nil.
func NewRunner(cfg kafka.Config, s Suspensions, dlq kafka.Publisher, log *zap.Logger, metrics *kafka.Metrics) (*kafka.Runner, error) {
	return kafka.NewRunner(cfg, kafka.RunnerConfig{Group: Group, Topics: []string{Topic}, MaxAttempts: maxAttempts,
		MaxBackoff: 5 * time.Second, DeadLetter: dlq}, Handler(s), log, metrics)
}

// Handler handles one account.events message: suspensions and
// reinstatements are applied, other events pass. A malformed event is
// Permanent (dead-lettered at once); a failure to reach the identity
// provider is retried.
func Handler(s Suspensions) kafka.Handler {
	return func(ctx context.Context, m *kafka.Message) error {
		var (
			ev interface {
				GetAccountId() string
			}
			suspended bool
		)
		switch m.Header(kafka.HeaderType) {
		case TypeSuspended:
			e := &eventsv1.AccountSuspended{}
			if _, err := kafka.DecodeEvent(m, e); err != nil {
				return kafka.Permanent(err)
			}
			ev, suspended = e, true
		case TypeReinstated:
			e := &eventsv1.AccountReinstated{}
			if _, err := kafka.DecodeEvent(m, e); err != nil {
				return kafka.Permanent(err)
			}
			ev = e
		default:
			return nil
		}
		if ev.GetAccountId() == "" {
			return kafka.Permanent(errors.New("event without an account id"))
		}
		return s.SetSuspended(ctx, ev.GetAccountId(), suspended)
	}
}
