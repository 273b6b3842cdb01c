package comfortctl

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/comfortech/platform/services/notify/inject"
)

func (a *app) notifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Test notifications",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(a.notifySendCommand())
	return cmd
}

func (a *app) notifySendCommand() *cobra.Command {
	var (
		brokers string
		r       inject.Request
	)
	cmd := &cobra.Command{
		Use:   "send --account ID",
		Short: "Publish test notifications to Kafka's notifications.outbox, as the platform's producers do",
		Long: `Publish test notifications to the notifications.outbox topic (what
services/notify/cmd/notify-inject does, with the same package): CloudEvents
the notify service dispatches to the account by its preferences. It talks to
Kafka directly (--brokers), not through a gateway, and needs no login.

  comfortctl notify send --account 3f6c... --event-type device.fault --level critical --count 5`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if brokers == "" {
				brokers = a.getenv("COMFORTCTL_KAFKA_BROKERS")
			}
			if brokers == "" {
				brokers = defaultBrokers
			}
			r.Source = "/cli/comfortctl"
			n, err := inject.Publish(cmd.Context(), strings.Split(brokers, ","), "comfortctl", r)
			if errors.Is(err, inject.ErrInvalid) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			return a.print(map[string]any{"published": n, "topic": inject.Topic, "account_id": r.AccountID}, func(w io.Writer) {
				fmt.Fprintf(w, "Published %d notification(s) to %s for account %s.\n", n, inject.Topic, r.AccountID)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&brokers, "brokers", "", "Kafka bootstrap brokers, comma-separated (env COMFORTCTL_KAFKA_BROKERS; default "+defaultBrokers+")")
	f.StringVar(&r.AccountID, "account", "", "recipient account id (UUID)")
	f.StringVar(&r.Application, "application", inject.DefaultApplication, "registered application name")
	f.StringVar(&r.EventType, "event-type", inject.DefaultEventType, "event type id")
	f.StringVar(&r.Level, "level", inject.DefaultLevel, "info, warning, error or critical")
	f.StringVar(&r.Message, "message", inject.DefaultMessage, "message text (numbered when --count > 1)")
	f.StringVar(&r.Payload, "payload", "{}", "template data, a JSON object")
	f.IntVar(&r.Count, "count", 1, "how many notifications to send")
	_ = cmd.MarkFlagRequired("account")
	return cmd
}
