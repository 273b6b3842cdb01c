// Package accountsync keeps the data service's accounts in step with the
// account.events topic: AccountRegistered (from the auth gateway) creates
// the account when the gateway could not call CreateAccount itself, and
// AccountDeleted removes everything of the account. Both are idempotent,
// as at-least-once delivery requires.
package accountsync

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/data/internal/app"
)

// Group is the consumer group of the data service.
const Group = "data-service"

// Accounts is what the handler needs of the use cases; *app.App has it.
type Accounts interface {
	CreateAccount(ctx context.Context, n app.NewAccount) (app.Account, bool, error)
	DeleteAccount(ctx context.Context, id string) error
}

// NewRunner returns the consumer of account.events in group Group. log and
// metrics may be nil.
func NewRunner(cfg kafka.Config, a Accounts, log *zap.Logger, metrics *kafka.Metrics) (*kafka.Runner, error) {
	return kafka.NewRunner(cfg, kafka.RunnerConfig{Group: Group, Topics: []string{app.TopicAccountEvents}},
		Handler(a, log), log, metrics)
}

// Handler handles one account.events message. Events of other types pass;
// a malformed event or one that can never apply (a phone registered to
// another account) is Permanent and goes to the dead-letter topic; other
// failures (the database) are retried by the runner.
func Handler(a Accounts, log *zap.Logger) kafka.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("accountsync")
	return func(ctx context.Context, m *kafka.Message) error {
		switch m.Header(kafka.HeaderType) {
		case app.TypeAccountRegistered:
			var ev eventsv1.AccountRegistered
			if _, err := kafka.DecodeEvent(m, &ev); err != nil {
				return kafka.Permanent(err)
			}
			_, created, err := a.CreateAccount(ctx, app.NewAccount{ID: ev.GetAccountId(), Phone: ev.GetPhone(),
				Name: ev.GetName(), Email: ev.GetEmail(), Locale: ev.GetLocale(), Timezone: ev.GetTimezone()})
			switch {
			case errors.Is(err, app.ErrDeleted):
				// Registered, then deleted before this event arrived.
				log.Info("ignoring registration of a deleted account", zap.String("account_id", ev.GetAccountId()))
				return nil
			case errors.Is(err, app.ErrInvalid), errors.Is(err, app.ErrConflict):
				return kafka.Permanent(err)
			case err != nil:
				return err
			}
			if created {
				log.Info("account created from its registration event", zap.String("account_id", ev.GetAccountId()))
			}
			return nil
		case app.TypeAccountDeleted:
			if m.Header(kafka.HeaderSource) == app.Source {
				return nil // our own DeleteMe: already done
			}
			var ev eventsv1.AccountDeleted
			if _, err := kafka.DecodeEvent(m, &ev); err != nil {
				return kafka.Permanent(err)
			}
			return a.DeleteAccount(ctx, ev.GetAccountId())
		}
		return nil
	}
}
