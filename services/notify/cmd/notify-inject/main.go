// Command notify-inject publishes test notifications to notifications.outbox
// (the original `rake notifications:send`), as CloudEvents like the
// platform's producers send them (see package inject; `comfortctl notify
// send` does the same).
//
//	notify-inject -brokers 127.0.0.1:19092 -account <uuid> -event-type alert.raised -level critical -count 10
//
// Every flag also reads an environment variable: KAFKA_BROKERS,
// NOTIFY_APPLICATION, NOTIFY_EVENT_TYPE, NOTIFY_LEVEL, NOTIFY_ACCOUNT,
// NOTIFY_COUNT, NOTIFY_MESSAGE, NOTIFY_PAYLOAD.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/comfortech/platform/services/notify/inject"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	count, _ := strconv.Atoi(env("NOTIFY_COUNT", "1"))
	brokers := flag.String("brokers", env("KAFKA_BROKERS", "127.0.0.1:19092"), "Kafka bootstrap brokers, comma-separated")
	var r inject.Request
	flag.StringVar(&r.Application, "application", env("NOTIFY_APPLICATION", inject.DefaultApplication), "registered application name")
	flag.StringVar(&r.EventType, "event-type", env("NOTIFY_EVENT_TYPE", inject.DefaultEventType), "event type id")
	flag.StringVar(&r.Level, "level", env("NOTIFY_LEVEL", inject.DefaultLevel), "info, warning, error or critical")
	flag.StringVar(&r.AccountID, "account", env("NOTIFY_ACCOUNT", ""), "recipient account id (UUID), required")
	flag.StringVar(&r.Message, "message", env("NOTIFY_MESSAGE", inject.DefaultMessage), "message text")
	flag.StringVar(&r.Payload, "payload", env("NOTIFY_PAYLOAD", "{}"), "template data, a JSON object")
	flag.IntVar(&r.Count, "count", count, "how many notifications to send")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	n, err := inject.Publish(ctx, strings.Split(*brokers, ","), "notify-inject", r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "notify-inject:", err)
		os.Exit(1)
	}
	fmt.Printf("published %d notification(s) to %s\n", n, inject.Topic)
}
