// Command notify-inject publishes test notifications to notifications.outbox
// (the original `rake notifications:send`), as CloudEvents like the
// platform's producers send them.
//
//	notify-inject -brokers 127.0.0.1:19092 -account <uuid> -event-type alert.raised -level critical -count 10
//
// Every flag also reads an environment variable: KAFKA_BROKERS,
// NOTIFY_APPLICATION, NOTIFY_EVENT_TYPE, NOTIFY_LEVEL, NOTIFY_ACCOUNT,
// NOTIFY_COUNT, NOTIFY_MESSAGE, NOTIFY_PAYLOAD.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
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
	application := flag.String("application", env("NOTIFY_APPLICATION", "comfortech"), "registered application name")
	eventType := flag.String("event-type", env("NOTIFY_EVENT_TYPE", "alert.raised"), "event type id")
	level := flag.String("level", env("NOTIFY_LEVEL", "info"), "info, warning, error or critical")
	account := flag.String("account", env("NOTIFY_ACCOUNT", ""), "recipient account id (UUID), required")
	message := flag.String("message", env("NOTIFY_MESSAGE", "Test notification"), "message text")
	payload := flag.String("payload", env("NOTIFY_PAYLOAD", "{}"), "template data, a JSON object")
	flag.IntVar(&count, "count", count, "how many notifications to send")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, strings.Split(*brokers, ","), *application, *eventType, *level, *account, *message, *payload, count); err != nil {
		fmt.Fprintln(os.Stderr, "notify-inject:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, brokers []string, application, eventType, level, account, message, payload string, count int) error {
	if _, err := uuid.Parse(account); err != nil {
		return fmt.Errorf("-account (NOTIFY_ACCOUNT) must be an account UUID: %w", err)
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(payload), &data); err != nil {
		return fmt.Errorf("-payload (NOTIFY_PAYLOAD): %w", err)
	}
	pl, err := structpb.NewStruct(data)
	if err != nil {
		return fmt.Errorf("-payload: %w", err)
	}
	p, err := kafka.NewProducer(kafka.Config{Brokers: brokers, ClientID: "notify-inject", DialTimeout: 5 * time.Second}, nil, nil)
	if err != nil {
		return err
	}
	defer func() { _ = p.Close() }()
	msgs := make([]kafka.Message, 0, count)
	for i := range count {
		n := &eventsv1.OutboxNotification{Application: application, EventType: eventType, Level: level, Message: message,
			Timestamp: timestamppb.Now(), AccountId: account, Id: "inject-" + uuid.NewString(), Payload: pl}
		if count > 1 {
			n.Message = fmt.Sprintf("%s #%d", message, i+1)
		}
		m, err := kafka.EncodeEvent(ctx, "notifications.outbox", kafka.Event{Source: "/services/notify/cmd/notify-inject",
			Type: "comfortech.notification.requested.v1", Key: account, Data: n})
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if err := p.PublishBatch(ctx, msgs); err != nil {
		return err
	}
	fmt.Printf("published %d notification(s) to notifications.outbox\n", count)
	return nil
}
