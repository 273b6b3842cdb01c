// Package mqttlink is the device service's own MQTT connection to the
// broker: one paho client per replica, logged in with the service account,
// with a persistent session (so QoS 1 messages the broker accepted while
// the service was away are delivered when it comes back), automatic
// reconnection with resubscription, and shared subscriptions so that
// replicas split the devices' traffic.
package mqttlink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/comfortech/platform/services/device/internal/mqttconn"
)

// Kind says which device topic a message came from.
type Kind int

// The device topics the service subscribes to (ARCHITECTURE §6).
const (
	// KindTelemetry is devices/{id}/telemetry.
	KindTelemetry Kind = iota + 1
	// KindReported is devices/{id}/state/reported.
	KindReported
	// KindStatus is devices/{id}/status.
	KindStatus
	// KindEvent is devices/{id}/events.
	KindEvent
	// KindCommandResult is devices/{id}/commands/{command_id}/result.
	KindCommandResult
)

// String returns the topic suffix of k, for logs and metric labels.
func (k Kind) String() string {
	switch k {
	case KindTelemetry:
		return "telemetry"
	case KindReported:
		return "state/reported"
	case KindStatus:
		return "status"
	case KindEvent:
		return "events"
	case KindCommandResult:
		return "commands/result"
	}
	return "unknown"
}

// filters are the topic filters subscribed to, each behind $share/{group}/.
var filters = []string{
	"devices/+/telemetry", "devices/+/state/reported", "devices/+/status",
	"devices/+/events", "devices/+/commands/+/result",
}

// Message is one message a device published.
type Message struct {
	// Kind is the topic it came on.
	Kind Kind
	// DeviceID is the device id taken from the topic; the broker's ACL
	// guarantees a device publishes only under its own id.
	DeviceID string
	// CommandID is the command id of a KindCommandResult.
	CommandID string
	// Topic is the full topic.
	Topic string
	// Payload is the message body.
	Payload []byte
	// Received is when the service received it.
	Received time.Time
	// Ack acknowledges the message to the broker (PUBACK for QoS 1); a
	// second call does nothing.
	Ack func()
}

// Handler handles one message. It runs on the client's delivery goroutine,
// one message at a time in the order they came, so a handler may block,
// for a bounded time (well below the keepalive), to push back on the
// broker. It owns the message's acknowledgement: the broker counts the
// message delivered only once Ack is called, maybe later on another
// goroutine; a message never acknowledged is delivered again when the
// session resumes (see Link.Redeliver).
type Handler func(Message)

// Config configures a Link.
type Config struct {
	// URL is the broker, e.g. tcp://127.0.0.1:11883.
	URL string
	// Username and Password are the service account's credentials.
	Username, Password string
	// ClientID must be fixed per replica (and differ between replicas): the
	// persistent session is keyed by it.
	ClientID string
	// Group is the shared-subscription group; default "device".
	Group string
	// Handler receives the devices' messages. Required.
	Handler Handler
	// Log receives connection changes and dropped messages.
	Log *zap.Logger
}

// Link is a connected (or reconnecting) MQTT client.
type Link struct {
	cfg       Config
	client    paho.Client
	connected atomic.Bool
	closed    atomic.Bool
	// redelivering is set while Redeliver's reconnection runs.
	redelivering atomic.Bool
	// Unparsable counts messages on unexpected topics, ignored.
	unparsable atomic.Int64
}

// Dial starts the client. It returns once the first connection is made
// or ctx ends; afterwards the client reconnects by itself and subscribes
// again on every connection.
func Dial(ctx context.Context, cfg Config) (*Link, error) {
	switch {
	case cfg.URL == "":
		return nil, errors.New("mqttlink: no broker URL")
	case cfg.ClientID == "":
		return nil, errors.New("mqttlink: no client id")
	case cfg.Handler == nil:
		return nil, errors.New("mqttlink: no handler")
	}
	if cfg.Group == "" {
		cfg.Group = "device"
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if err := mqttconn.CheckURL(cfg.URL); err != nil {
		return nil, fmt.Errorf("mqttlink: %w", err)
	}
	l := &Link{cfg: cfg}
	o := paho.NewClientOptions().AddBroker(cfg.URL).SetClientID(cfg.ClientID).
		SetCustomOpenConnectionFn(mqttconn.Opener(64 << 10)).
		SetUsername(cfg.Username).SetPassword(cfg.Password).
		SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(500 * time.Millisecond).SetMaxReconnectInterval(5 * time.Second).
		SetConnectTimeout(5 * time.Second).SetKeepAlive(30 * time.Second).
		SetWriteTimeout(10 * time.Second).
		// In order: a blocking handler is how the service pushes back,
		// and one device's messages keep their order.
		SetOrderMatters(true).
		// The handler acknowledges once the message is safe (in Kafka).
		SetAutoAckDisabled(true).
		SetDefaultPublishHandler(l.onMessage).
		SetOnConnectHandler(l.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			l.connected.Store(false)
			cfg.Log.Warn("mqtt connection lost; reconnecting", zap.Error(err))
		})
	l.client = paho.NewClient(o)
	tok := l.client.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			l.client.Disconnect(0)
			return nil, fmt.Errorf("mqttlink: connect: %w", err)
		}
	case <-ctx.Done():
		l.client.Disconnect(0)
		return nil, fmt.Errorf("mqttlink: connect: %w", ctx.Err())
	}
	return l, nil
}

// onConnect subscribes (again) on every connection: a broker that lost
// the session (restarted without persistence) would otherwise send
// nothing.
func (l *Link) onConnect(c paho.Client) {
	subs := make(map[string]byte, len(filters))
	for _, f := range filters {
		subs["$share/"+l.cfg.Group+"/"+f] = 1
	}
	// Not waited for here: this runs on paho's connection goroutine.
	go func() {
		tok := c.SubscribeMultiple(subs, nil)
		err := tok.Error()
		if !tok.WaitTimeout(10 * time.Second) {
			err = errors.New("no SUBACK within 10s")
		}
		if st, ok := tok.(*paho.SubscribeToken); ok && err == nil {
			for f, granted := range st.Result() {
				if granted > 1 { // 0x80: refused
					err = fmt.Errorf("subscription to %s refused", f)
				}
			}
		}
		if err != nil {
			l.cfg.Log.Error("mqtt subscribe failed; reconnecting", zap.Error(err))
			// Force a reconnect, which subscribes again.
			c.Disconnect(100)
			go l.reconnect()
			return
		}
		l.connected.Store(true)
		l.cfg.Log.Info("mqtt link connected and subscribed", zap.String("client_id", l.cfg.ClientID))
	}()
}

// reconnect connects again after a forced disconnect, until it succeeds
// or the link is closed.
func (l *Link) reconnect() {
	for !l.closed.Load() {
		tok := l.client.Connect()
		if tok.Wait() && tok.Error() == nil {
			return
		}
		time.Sleep(time.Second)
	}
}

// onMessage parses the topic and hands the message over.
func (l *Link) onMessage(_ paho.Client, m paho.Message) {
	msg, ok := Parse(m.Topic())
	if !ok {
		l.unparsable.Add(1)
		l.cfg.Log.Warn("mqtt message on an unexpected topic ignored", zap.String("topic", m.Topic()))
		m.Ack()
		return
	}
	msg.Payload = m.Payload()
	msg.Received = time.Now()
	msg.Ack = m.Ack
	l.cfg.Handler(msg)
}

// Redeliver drops the connection and connects again after pause, so the
// broker delivers again, from the persistent session, the messages the
// handler left unacknowledged. Calls while one is under way do nothing. It
// returns at once: the handler may call it.
func (l *Link) Redeliver(pause time.Duration) {
	if l.closed.Load() || !l.redelivering.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer l.redelivering.Store(false)
		l.connected.Store(false)
		// The quiesce lets acknowledgements already given reach the broker.
		l.client.Disconnect(250)
		l.cfg.Log.Warn("mqtt link reconnecting for the broker to deliver unacknowledged messages again", zap.Duration("in", pause))
		time.Sleep(pause)
		l.reconnect()
	}()
}

// Parse reads a device topic: the kind, the device id (a UUID) and, for a
// command result, the command id. ok is false for any other topic.
func Parse(topic string) (m Message, ok bool) {
	parts := strings.Split(topic, "/")
	if len(parts) < 3 || parts[0] != "devices" || uuid.Validate(parts[1]) != nil {
		return Message{}, false
	}
	m = Message{DeviceID: parts[1], Topic: topic}
	switch rest := parts[2:]; {
	case len(rest) == 1 && rest[0] == "telemetry":
		m.Kind = KindTelemetry
	case len(rest) == 1 && rest[0] == "status":
		m.Kind = KindStatus
	case len(rest) == 1 && rest[0] == "events":
		m.Kind = KindEvent
	case len(rest) == 2 && rest[0] == "state" && rest[1] == "reported":
		m.Kind = KindReported
	case len(rest) == 3 && rest[0] == "commands" && rest[2] == "result" && uuid.Validate(rest[1]) == nil:
		m.Kind, m.CommandID = KindCommandResult, rest[1]
	default:
		return Message{}, false
	}
	return m, true
}

// Publish sends payload on topic and waits, within ctx, until the broker
// accepted it (QoS 1 and 2).
func (l *Link) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	tok := l.client.Publish(topic, qos, retained, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqttlink: publish %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqttlink: publish %s: %w", topic, ctx.Err())
	}
}

// Check reports whether the link is connected and subscribed: the
// readiness check.
func (l *Link) Check(context.Context) error {
	if !l.connected.Load() || !l.client.IsConnectionOpen() {
		return errors.New("mqtt link not connected")
	}
	return nil
}

// Close disconnects, letting in-flight work finish for up to 250 ms. The
// session stays on the broker, which keeps queueing QoS 1 messages.
func (l *Link) Close() {
	l.closed.Store(true)
	l.connected.Store(false)
	l.client.Disconnect(250)
}
