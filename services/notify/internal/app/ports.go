package app

import (
	"context"
	"time"
)

// Page selects a page of a list: at most Size items after the key Token.
type Page struct {
	Size  int
	Token string
}

// DeliveryFilter selects delivery-log entries; zero fields match anything.
type DeliveryFilter struct {
	AccountID, NotificationID, Application, EventType string
	// Subscription selects an event subscription's deliveries.
	Subscription string
	Channel      Channel
	Status       Status
	Start, End   time.Time
}

// DeadLetterFilter selects dead letters; zero fields match anything.
type DeadLetterFilter struct {
	Topic      string
	Replayed   *bool
	Start, End time.Time
}

// Store keeps the service's state. Lists return the next page token
// ("" on the last page).
type Store interface {
	PutApplication(ctx context.Context, a *Application) error
	GetApplication(ctx context.Context, name string) (*Application, error)
	ListApplications(ctx context.Context, p Page) ([]*Application, string, error)
	DeleteApplication(ctx context.Context, name string) error

	GetPreferences(ctx context.Context, accountID string) (*Preferences, error)
	PutPreferences(ctx context.Context, p *Preferences) error

	PutPushToken(ctx context.Context, t *PushToken) error
	ListPushTokens(ctx context.Context, accountID string, p Page) ([]*PushToken, string, error)
	DeletePushToken(ctx context.Context, accountID, id string) error
	DeletePushTokenValue(ctx context.Context, token string) error

	CreateWebhook(ctx context.Context, e *WebhookEndpoint) error
	GetWebhook(ctx context.Context, id string) (*WebhookEndpoint, error)
	ListWebhooks(ctx context.Context, accountID string, p Page) ([]*WebhookEndpoint, string, error)
	UpdateWebhook(ctx context.Context, e *WebhookEndpoint) error
	DeleteWebhook(ctx context.Context, accountID, id string) error

	PutTemplate(ctx context.Context, t *Template) (created bool, err error)
	FindTemplate(ctx context.Context, application, eventType string, ch Channel, locale string) (*Template, error)
	ListTemplates(ctx context.Context, f Template, p Page) ([]*Template, string, error)
	DeleteTemplate(ctx context.Context, id string) error

	// AddDeliveries inserts the deliveries that are new on (NotificationID,
	// Channel, Recipient), revives failed ones (a replay) and returns the
	// ones inserted or revived: the rest are duplicates.
	AddDeliveries(ctx context.Context, ds []*Delivery) ([]*Delivery, error)
	GetDelivery(ctx context.Context, notificationID string, ch Channel, recipient string) (*Delivery, error)
	// ClaimDue returns up to n pending deliveries due at now, leasing them
	// until now+lease so no other worker takes them meanwhile.
	ClaimDue(ctx context.Context, now time.Time, lease time.Duration, n int) ([]*Delivery, error)
	// Release makes claimed deliveries due at once again (on shutdown).
	Release(ctx context.Context, ids []string) error
	// RecordAttempt stores d's new state, appends a to the log and, in the
	// same transaction, enqueues events for the outbox relay.
	RecordAttempt(ctx context.Context, d *Delivery, a *Attempt, events ...Event) error
	// RecordAttempts records several attempts as RecordAttempt does, in
	// one transaction.
	RecordAttempts(ctx context.Context, recs []AttemptRecord) error
	ListAttempts(ctx context.Context, f DeliveryFilter, p Page) ([]*Attempt, string, error)
	GetAttempt(ctx context.Context, id string) (*Attempt, error)

	AddDeadLetter(ctx context.Context, d *DeadLetter) error
	GetDeadLetter(ctx context.Context, id string) (*DeadLetter, error)
	ListDeadLetters(ctx context.Context, f DeadLetterFilter, p Page) ([]*DeadLetter, string, error)
	MarkReplayed(ctx context.Context, id string, at time.Time) error
	DeleteDeadLetter(ctx context.Context, id string) error

	AddSinkMessage(ctx context.Context, m *SinkMessage) error
	ListSinkMessages(ctx context.Context, ch Channel, recipient string, p Page) ([]*SinkMessage, string, error)
	ClearSinkMessages(ctx context.Context) (int, error)

	// PutSubscription creates or replaces a subscription by name.
	PutSubscription(ctx context.Context, s *Subscription) error
	GetSubscription(ctx context.Context, name string) (*Subscription, error)
	// ListSubscriptions pages through subscriptions by name.
	ListSubscriptions(ctx context.Context, p Page) ([]*Subscription, string, error)
	DeleteSubscription(ctx context.Context, name string) error
	// DisableSubscription records that the service stopped delivering to
	// a subscription, and why, leaving the operator's settings alone.
	DisableSubscription(ctx context.Context, name, reason string, at time.Time) error
}

// AttemptRecord is one delivery attempt to record: the delivery's new
// state (nil for a skip, which has no delivery), its log entry and the
// events to emit.
type AttemptRecord struct {
	Delivery *Delivery
	Attempt  *Attempt
	Events   []Event
}

// Event is a Kafka record to write through the transactional outbox.
type Event struct {
	Topic   string
	Key     string
	Value   []byte
	Headers map[string]string
}

// Message is what a channel provider sends.
type Message struct {
	// ID identifies the message at the provider (webhook-id): the
	// notification id, stable across retries.
	ID        string
	Channel   Channel
	Recipient string
	Subject   string
	Body      string
	HTMLBody  string
	// JSON is the webhook body.
	JSON []byte
	// Secrets sign webhooks (Standard Webhooks, every one a signature).
	Secrets []string
	// Auth authenticates a webhook to its receiver on top of the
	// signature; nil for none.
	Auth *WebhookAuth
	// NotificationID is recorded by the dev sink.
	NotificationID string
}

// Result is a provider's answer.
type Result struct {
	// Status is the provider's HTTP status or SMTP code, 0 if none.
	Status int
	// Detail is the provider's answer or the error, shortened.
	Detail string
	// Err is set when the message was not accepted.
	Err error
	// Permanent says retrying cannot help (a 4xx other than 408/429).
	Permanent bool
	// Gone says the recipient no longer exists: FCM UNREGISTERED or a
	// webhook's 410; the token is removed or the endpoint disabled.
	Gone bool
	// RetryAfter is the provider's Retry-After, if any.
	RetryAfter time.Duration
}

// Sender delivers messages on one channel.
type Sender interface {
	Send(ctx context.Context, m *Message) Result
}

// Directory looks up accounts (the data service).
type Directory interface {
	// Account returns the account, or ErrNotFound.
	Account(ctx context.Context, id string) (*Account, error)
}
