package app

import (
	"context"
	"slices"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/comfortech/platform/libs/tracing"
)

// Channel is a way to reach a recipient.
type Channel string

// The channels.
const (
	Push    Channel = "push"
	SMS     Channel = "sms"
	Email   Channel = "email"
	Webhook Channel = "webhook"
)

// Channels lists every channel, in a stable order.
var Channels = []Channel{Push, SMS, Email, Webhook}

// Levels are the notification levels, least severe first.
var Levels = []string{"info", "warning", "error", "critical"}

// LevelCritical overrides quiet hours and falls back from push to SMS.
const LevelCritical = "critical"

// EventType is a kind of notification an application sends.
type EventType struct {
	ID              string    `json:"id" yaml:"id"`
	Title           string    `json:"title" yaml:"title"`
	Description     string    `json:"description,omitempty" yaml:"description,omitempty"`
	Levels          []string  `json:"levels" yaml:"levels"`
	DefaultChannels []Channel `json:"default_channels,omitempty" yaml:"default_channels,omitempty"`
}

// Application is a registered sender of notifications.
type Application struct {
	Name       string      `json:"name" yaml:"name"`
	Title      string      `json:"title" yaml:"title"`
	EventTypes []EventType `json:"event_types" yaml:"event_types"`
	CreateTime time.Time   `json:"-" yaml:"-"`
	UpdateTime time.Time   `json:"-" yaml:"-"`
}

// EventType returns the application's event type id, if registered.
func (a *Application) EventType(id string) (EventType, bool) {
	for _, e := range a.EventTypes {
		if e.ID == id {
			return e, true
		}
	}
	return EventType{}, false
}

// Rule routes matching notifications to channels; empty match fields
// match anything, empty Channels mutes.
type Rule struct {
	Application string    `json:"application,omitempty"`
	EventType   string    `json:"event_type,omitempty"`
	Levels      []string  `json:"levels,omitempty"`
	Channels    []Channel `json:"channels"`
}

// QuietHours is a daily window (HH:MM, may cross midnight) in which only
// critical notifications are delivered.
type QuietHours struct {
	Enabled  bool   `json:"enabled"`
	Start    string `json:"start"`
	End      string `json:"end"`
	Timezone string `json:"timezone,omitempty"`
}

// Preferences is how an account is notified.
type Preferences struct {
	AccountID        string     `json:"-"`
	Rules            []Rule     `json:"rules"`
	QuietHours       QuietHours `json:"quiet_hours"`
	DisabledChannels []Channel  `json:"disabled_channels,omitempty"`
	UpdateTime       time.Time  `json:"-"`
}

// Platform is the kind of app a push token belongs to.
type Platform string

// The platforms.
const (
	Android Platform = "android"
	IOS     Platform = "ios"
	Web     Platform = "web"
)

// PushToken is an app installation that can receive push messages.
type PushToken struct {
	ID         string
	AccountID  string
	Platform   Platform
	Token      string
	AppVersion string
	CreateTime time.Time
	LastSeen   time.Time
}

// WebhookEndpoint is a URL receiving an account's notifications.
type WebhookEndpoint struct {
	ID             string
	AccountID      string
	URL            string
	Description    string
	EventTypes     []string // "application/event_type" or "application/*"
	Enabled        bool
	DisabledReason string
	Signing
	CreateTime time.Time
	UpdateTime time.Time
}

// Wants reports whether the endpoint's filter accepts the event type.
func (e *WebhookEndpoint) Wants(application, eventType string) bool {
	if len(e.EventTypes) == 0 {
		return true
	}
	return slices.Contains(e.EventTypes, application+"/"+eventType) || slices.Contains(e.EventTypes, application+"/*")
}

// Signing holds the Standard Webhooks secrets of a receiver: webhook
// endpoints and event subscriptions.
type Signing struct {
	Secret    string    // whsec_...
	OldSecret string    // previous secret, signing too until OldExpire
	OldExpire time.Time // when OldSecret stops signing
}

// Secrets returns the secrets that sign a delivery at now.
func (g *Signing) Secrets(now time.Time) []string {
	s := []string{g.Secret}
	if g.OldSecret != "" && now.Before(g.OldExpire) {
		s = append(s, g.OldSecret)
	}
	return s
}

// rotate issues a new secret; the current one keeps signing for grace
// (default 24 h).
func (g *Signing) rotate(now time.Time, grace time.Duration) {
	if grace <= 0 {
		grace = 24 * time.Hour
	}
	g.OldSecret, g.OldExpire = g.Secret, now.Add(grace)
	g.Secret = newSecret()
}

// Template renders one event type for one channel and locale.
type Template struct {
	ID          string
	Application string
	EventType   string
	Channel     Channel
	Locale      string
	Subject     string
	Body        string
	HTMLBody    string
	UpdateTime  time.Time
}

// Notification is one outbox message.
type Notification struct {
	ID          string
	Application string
	EventType   string
	Level       string
	Message     string
	Timestamp   time.Time
	AccountID   string
	Payload     map[string]any
}

// Account is what the notify service knows of a recipient account.
type Account struct {
	ID       string
	Phone    string
	Email    string
	Locale   string
	Timezone string
}

// Status is the state of a delivery or the outcome of an attempt.
type Status string

// The statuses.
const (
	StatusPending  Status = "pending"  // delivery waiting for an attempt
	StatusSent     Status = "sent"     // provider accepted
	StatusRetrying Status = "retrying" // attempt failed, another is due
	StatusFailed   Status = "failed"   // dead: no more attempts
	StatusSkipped  Status = "skipped"  // not sent on purpose
)

// Delivery is one message to one recipient on one channel, rendered, with
// its retry state; unique on (NotificationID, Channel, Recipient).
type Delivery struct {
	ID             string
	NotificationID string
	AccountID      string
	Application    string
	EventType      string
	Level          string
	Channel        Channel
	// Recipient is the address: push token, phone, e-mail or endpoint id.
	Recipient string
	// Masked is Recipient as logs and APIs show it.
	Masked   string
	Subject  string
	Body     string
	HTMLBody string
	// Fallback is the phone to text when a critical push fails for good.
	Fallback    string
	Status      Status
	Attempts    int
	NextAttempt time.Time
	// Source is the notification as received (protojson), for replays.
	Source []byte
	// Subscription names the event subscription of an event delivery
	// (Channel Webhook, Body the event), empty for notifications.
	Subscription string
	// Topic is the topic an event delivery's event came from.
	Topic      string
	CreateTime time.Time

	// TraceParent is the W3C traceparent of the span that created the
	// delivery, or revived it: the parent of every attempt's span, so
	// that retries, whichever replica makes them, stay in its trace.
	TraceParent string
}

// traceParent is sc as a W3C traceparent; "" when sc is not valid.
func traceParent(sc trace.SpanContext) string {
	c := propagation.MapCarrier{}
	tracing.Propagator.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c.Get("traceparent")
}

// parentSpan is the span context a W3C traceparent names; not valid for
// "" or a malformed one.
func parentSpan(traceparent string) trace.SpanContext {
	return trace.SpanContextFromContext(tracing.Propagator.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": traceparent}))
}

// Attempt is one entry of the delivery log.
type Attempt struct {
	ID             string
	DeliveryID     string
	NotificationID string
	AccountID      string
	Application    string
	EventType      string
	Level          string
	Channel        Channel
	Recipient      string // masked
	Subscription   string // event subscription; empty for notifications
	Attempt        int
	Status         Status
	ProviderStatus int
	Detail         string
	Latency        time.Duration
	NextAttempt    time.Time
	Time           time.Time
}

// DeadLetter is a record that could not be processed or delivered.
type DeadLetter struct {
	ID             string
	Topic          string
	Key            string
	Value          string
	Headers        map[string]string
	Reason         string
	NotificationID string
	Attempts       int
	ReplayCount    int
	LastReplay     time.Time
	CreateTime     time.Time
}

// SinkMessage is a message the dev sink captured.
type SinkMessage struct {
	ID             string
	Channel        Channel
	Recipient      string
	Subject        string
	Body           string
	HTMLBody       string
	NotificationID string
	Time           time.Time
}
