package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
)

// Subscription sends the platform's events on some topics to an operator's
// URL, as signed webhooks delivered like notification webhooks.
type Subscription struct {
	// Name is the key, e.g. "crm-device-lifecycle".
	Name string
	URL  string
	// Topics are the topics delivered (the API's event_types).
	Topics []string
	// Filters must all match an event for it to be delivered.
	Filters []Filter
	// Auth authenticates deliveries on top of the signature; nil for none.
	Auth *WebhookAuth
	// Enabled is the operator's switch.
	Enabled bool
	// DisabledReason is set when the service stopped delivering (the
	// receiver answered 410); the operator enabling it again clears it.
	DisabledReason string
	Signing
	CreateTime time.Time
	UpdateTime time.Time
	// ActiveTime is when deliveries last started: zero for the creation,
	// else the operator enabling it again after a pause or after the
	// service disabled it.
	ActiveTime time.Time
}

// Since is when the subscription's events begin: it receives those
// written from its creation on, and not those of a pause or while it was
// disabled.
func (s *Subscription) Since() time.Time {
	if s.ActiveTime.After(s.CreateTime) {
		return s.ActiveTime
	}
	return s.CreateTime
}

// SubscriptionStatus tells whether deliveries are made.
type SubscriptionStatus string

// The statuses of a subscription.
const (
	SubscriptionActive   SubscriptionStatus = "active"
	SubscriptionPaused   SubscriptionStatus = "paused"   // by the operator
	SubscriptionDisabled SubscriptionStatus = "disabled" // by the service
)

// Status is the subscription's delivery state.
func (s *Subscription) Status() SubscriptionStatus {
	switch {
	case !s.Enabled:
		return SubscriptionPaused
	case s.DisabledReason != "":
		return SubscriptionDisabled
	}
	return SubscriptionActive
}

// FilterOp is how a filter compares.
type FilterOp string

// The filter operators.
const (
	FilterExact  FilterOp = "exact"
	FilterPrefix FilterOp = "prefix"
	FilterSuffix FilterOp = "suffix"
)

// Filter matches a CloudEvents attribute (type, source, subject) or a
// field of the event data ("data." + a path of field names).
type Filter struct {
	Attribute string   `json:"attribute"`
	Op        FilterOp `json:"op"`
	Value     string   `json:"value"`
}

// CloudEvent is a platform event as a subscription receives it.
type CloudEvent struct {
	// Topic is where it was published.
	Topic string
	// ID, Type, Source, Subject and Time are the CloudEvents attributes;
	// Subject is the record key (the entity the event is about).
	ID, Type, Source, Subject string
	Time                      time.Time
	// TraceParent is the W3C trace context, if any.
	TraceParent string
	// Data is the event data, JSON.
	Data json.RawMessage

	data map[string]any // Data decoded, for filters
}

// HeaderSubscription is the dead-letter header naming the subscription a
// delivery failed for; replaying the dead letter delivers it again.
const HeaderSubscription = "subscription"

// JSON is the event in CloudEvents structured mode: the body of a
// subscription delivery.
func (e *CloudEvent) JSON() ([]byte, error) {
	var data bytes.Buffer
	if err := json.Compact(&data, e.Data); err != nil {
		return nil, fmt.Errorf("event %s: data: %w", e.ID, err)
	}
	body := struct {
		SpecVersion     string          `json:"specversion"`
		ID              string          `json:"id"`
		Source          string          `json:"source"`
		Type            string          `json:"type"`
		Subject         string          `json:"subject,omitempty"`
		Time            string          `json:"time,omitempty"`
		DataContentType string          `json:"datacontenttype"`
		TraceParent     string          `json:"traceparent,omitempty"`
		Data            json.RawMessage `json:"data"`
	}{SpecVersion: "1.0", ID: e.ID, Source: e.Source, Type: e.Type, Subject: e.Subject, DataContentType: "application/json",
		TraceParent: e.TraceParent, Data: data.Bytes()}
	if !e.Time.IsZero() {
		body.Time = e.Time.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(body)
}

// attribute returns the value a filter compares: a CloudEvents attribute,
// or a data field (strings as they are, numbers and booleans as JSON).
func (e *CloudEvent) attribute(name string) (string, bool) {
	switch name {
	case "type":
		return e.Type, true
	case "source":
		return e.Source, true
	case "subject":
		return e.Subject, e.Subject != ""
	}
	path, ok := strings.CutPrefix(name, "data.")
	if !ok {
		return "", false
	}
	if e.data == nil {
		dec := json.NewDecoder(bytes.NewReader(e.Data))
		dec.UseNumber()
		if err := dec.Decode(&e.data); err != nil || e.data == nil {
			e.data = map[string]any{}
		}
	}
	var v any = e.data
	for _, k := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = obj[k]; !ok {
			return "", false
		}
	}
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return fmt.Sprint(x), true
	}
	return "", false
}

// Matches reports whether f accepts e.
func (f Filter) Matches(e *CloudEvent) bool {
	v, ok := e.attribute(f.Attribute)
	if !ok {
		return false
	}
	switch f.Op {
	case FilterExact:
		return v == f.Value
	case FilterPrefix:
		return strings.HasPrefix(v, f.Value)
	case FilterSuffix:
		return strings.HasSuffix(v, f.Value)
	}
	return false
}

// Wants reports whether the subscription delivers e: it is active, takes
// e's topic, e happened since it was (Since), and every filter matches.
func (s *Subscription) Wants(e *CloudEvent) bool {
	if s.Status() != SubscriptionActive || !slices.Contains(s.Topics, e.Topic) {
		return false
	}
	if !e.Time.IsZero() && e.Time.Before(s.Since()) {
		return false
	}
	for _, f := range s.Filters {
		if !f.Matches(e) {
			return false
		}
	}
	return true
}

// subscriptionRecipient is a subscription delivery's recipient: apart from
// endpoint ids (UUIDs, no colon), so deliveries stay unique per receiver.
func subscriptionRecipient(name string) string { return "subscription:" + name }

// spec is what the operator sets on a subscription; Put compares it to
// tell whether anything changed.
type spec struct {
	URL     string
	Topics  []string
	Filters []Filter
	Auth    *WebhookAuth
	Enabled bool
	Reason  string
}

func specOf(s *Subscription) spec {
	sp := spec{URL: s.URL, Topics: s.Topics, Filters: s.Filters, Auth: s.Auth, Enabled: s.Enabled, Reason: s.DisabledReason}
	if len(sp.Filters) == 0 {
		sp.Filters = nil // stored or not, none is none
	}
	return sp
}

// PutSubscription creates or replaces a subscription by name. Empty
// secrets in its auth keep the stored ones (they are never shown, so an
// operator re-sending what GetSubscription answered changes nothing). It
// reports whether the subscription is new and whether anything changed;
// a new one gets its signing secret. With validateOnly nothing is stored
// and no secret is made.
func (s *Service) PutSubscription(ctx context.Context, sub *Subscription, validateOnly bool) (stored *Subscription, created, changed bool, err error) {
	if err := s.checkURL("subscription.url", sub.URL); err != nil {
		return nil, false, false, err
	}
	sub.Topics = slices.Sorted(slices.Values(sub.Topics))
	if len(sub.Filters) == 0 {
		sub.Filters = nil
	}
	old, err := s.store.GetSubscription(ctx, sub.Name)
	switch {
	case errors.Is(err, ErrNotFound):
		old = nil
	case err != nil:
		return nil, false, false, err
	}
	var oldAuth *WebhookAuth
	if old != nil {
		oldAuth = old.Auth
	}
	if err := s.completeAuth(sub.Auth, oldAuth); err != nil {
		return nil, false, false, err
	}
	now := s.now()
	if old == nil {
		sub.CreateTime, sub.UpdateTime = now, now
		if !validateOnly {
			sub.Secret = newSecret()
		}
		created, changed = true, true
	} else {
		if sub.Enabled {
			sub.DisabledReason = "" // the operator enables it again
		} else {
			sub.DisabledReason = old.DisabledReason
		}
		sub.Signing, sub.CreateTime, sub.UpdateTime, sub.ActiveTime = old.Signing, old.CreateTime, old.UpdateTime, old.ActiveTime
		if !reflect.DeepEqual(specOf(old), specOf(sub)) {
			changed = true
			sub.UpdateTime = now
		}
		if old.Status() != SubscriptionActive && sub.Status() == SubscriptionActive {
			sub.ActiveTime = now // not the events of the pause
		}
	}
	if changed && !validateOnly {
		defer s.invalidate()
		if err := s.store.PutSubscription(ctx, sub); err != nil {
			return nil, false, false, err
		}
	}
	return sub, created, changed, nil
}

// completeAuth checks a subscription's auth, taking each secret left empty
// from old when it authenticates the same identity.
func (s *Service) completeAuth(a, old *WebhookAuth) error {
	if a == nil {
		return nil
	}
	if old == nil {
		old = &WebhookAuth{}
	}
	const f = "subscription.auth."
	switch {
	case a.Basic != nil:
		if a.Basic.Password == "" && old.Basic != nil && old.Basic.Username == a.Basic.Username {
			a.Basic.Password = old.Basic.Password
		}
		if a.Basic.Password == "" {
			return invalid(f+"basic.password", "password is required")
		}
	case a.Bearer != nil:
		if a.Bearer.Token == "" && old.Bearer != nil {
			a.Bearer.Token = old.Bearer.Token
		}
		if a.Bearer.Token == "" {
			return invalid(f+"bearer.token", "token is required")
		}
	case a.OAuth2 != nil:
		o := a.OAuth2
		if err := s.checkURL(f+"oauth2.token_url", o.TokenURL); err != nil {
			return err
		}
		if o.ClientSecret == "" && old.OAuth2 != nil && old.OAuth2.ClientID == o.ClientID && old.OAuth2.TokenURL == o.TokenURL {
			o.ClientSecret = old.OAuth2.ClientSecret
		}
		if o.ClientSecret == "" {
			return invalid(f+"oauth2.client_secret", "client_secret is required")
		}
		if len(o.Scopes) == 0 {
			o.Scopes = nil
		}
	}
	return nil
}

// GetSubscription returns one subscription.
func (s *Service) GetSubscription(ctx context.Context, name string) (*Subscription, error) {
	return s.store.GetSubscription(ctx, name)
}

// ListSubscriptions pages through subscriptions by name.
func (s *Service) ListSubscriptions(ctx context.Context, p Page) ([]*Subscription, string, error) {
	return s.store.ListSubscriptions(ctx, p)
}

// DeleteSubscription removes a subscription; its pending deliveries fail
// (into the dead letters) when next attempted.
func (s *Service) DeleteSubscription(ctx context.Context, name string) error {
	defer s.invalidate()
	return s.store.DeleteSubscription(ctx, name)
}

// RotateSubscriptionSecret issues a new signing secret; the old one keeps
// signing for grace (default 24 h).
func (s *Service) RotateSubscriptionSecret(ctx context.Context, name string, grace time.Duration) (secret string, oldExpire time.Time, err error) {
	sub, err := s.store.GetSubscription(ctx, name)
	if err != nil {
		return "", time.Time{}, err
	}
	sub.rotate(s.now(), grace)
	sub.UpdateTime = s.now()
	defer s.invalidate()
	if err := s.store.PutSubscription(ctx, sub); err != nil {
		return "", time.Time{}, err
	}
	return sub.Secret, sub.OldExpire, nil
}

// SubscribedTopics are the topics some active subscription names, each
// with the earliest Since of them: the events a subscription receives
// are those written since. The subscriptions consumer reads only these,
// and passes over the records of others undecoded.
func (s *Service) SubscribedTopics(ctx context.Context) (map[string]time.Time, error) {
	subs, err := s.activeSubscriptions(ctx)
	if err != nil {
		return nil, err
	}
	topics := map[string]time.Time{}
	for _, sub := range subs {
		for _, topic := range sub.Topics {
			if since, ok := topics[topic]; !ok || sub.Since().Before(since) {
				topics[topic] = sub.Since()
			}
		}
	}
	return topics, nil
}

// HandleEvents records a delivery of each event to each subscription that
// wants it, then hands them to the workers as HandleBatch does. Events
// already recorded for a subscription (a redelivered record) are not
// repeated. When it returns nil the deliveries are durably recorded.
func (s *Service) HandleEvents(ctx context.Context, events []*CloudEvent) error {
	subs, err := s.activeSubscriptions(ctx)
	if err != nil {
		return err
	}
	var ds []*Delivery
	for _, e := range events {
		var body []byte
		for _, sub := range subs {
			if !sub.Wants(e) {
				continue
			}
			if body == nil {
				if body, err = e.JSON(); err != nil {
					return fmt.Errorf("%w: %w", ErrInvalid, err)
				}
			}
			d := s.eventDelivery(sub, e.ID, e.Type, e.Topic, body)
			d.TraceParent = eventTrace(ctx, e)
			ds = append(ds, d)
		}
	}
	return s.enqueue(ctx, ds, nil)
}

// eventDelivery is the delivery of an event (body: its JSON) to sub.
func (s *Service) eventDelivery(sub *Subscription, eventID, eventType, topic string, body []byte) *Delivery {
	return &Delivery{
		ID: uuid.NewString(), NotificationID: eventID, EventType: eventType, Channel: Webhook,
		Recipient: subscriptionRecipient(sub.Name), Masked: MaskURL(sub.URL), Subscription: sub.Name, Topic: topic,
		Body: string(body), Status: StatusPending,
		// Leased ahead, as notifications' deliveries are (see route).
		NextAttempt: s.now().Add(s.cfg.Lease), CreateTime: s.now(),
	}
}

// redeliver delivers a subscription's dead letter again: the delivery is
// revived (or made anew) with the event as it was to be delivered.
func (s *Service) redeliver(ctx context.Context, d *DeadLetter, name string) error {
	sub, err := s.store.GetSubscription(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return &Error{Kind: ErrPrecondition, Msg: fmt.Sprintf("subscription %s no longer exists", name)}
	}
	if err != nil {
		return err
	}
	if st := sub.Status(); st != SubscriptionActive {
		return &Error{Kind: ErrPrecondition, Msg: fmt.Sprintf("subscription %s is %s", name, st)}
	}
	var ev struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal([]byte(d.Value), &ev); err != nil {
		return &Error{Kind: ErrPrecondition, Msg: "this dead letter cannot be replayed: its value is not an event"}
	}
	return s.enqueue(ctx, []*Delivery{s.eventDelivery(sub, d.NotificationID, ev.Type, d.Topic, []byte(d.Value))}, nil)
}

// activeSubscriptions returns the subscriptions deliveries are made to,
// cached briefly.
func (s *Service) activeSubscriptions(ctx context.Context) ([]*Subscription, error) {
	return s.subs.get(ctx, "", func(ctx context.Context) ([]*Subscription, error) {
		var active []*Subscription
		p := Page{Size: 500}
		for {
			subs, next, err := s.store.ListSubscriptions(ctx, p)
			if err != nil {
				return nil, err
			}
			for _, sub := range subs {
				if sub.Status() == SubscriptionActive {
					active = append(active, sub)
				}
			}
			if next == "" {
				return active, nil
			}
			p.Token = next
		}
	})
}

// subscription returns a subscription for an attempt, cached; a deleted
// one is ErrNotFound.
func (s *Service) subscription(ctx context.Context, name string) (*Subscription, error) {
	sub, err := s.sub.get(ctx, name, func(ctx context.Context) (*Subscription, error) {
		sub, err := s.store.GetSubscription(ctx, name)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		return sub, err
	})
	if err == nil && sub == nil {
		return nil, &Error{Kind: ErrNotFound, Msg: "subscription not found"}
	}
	return sub, err
}

// eventTrace is the traceparent of the parent of the spans of e's
// deliveries: the span handling it when that span is in e's trace, else
// (e shares a batch with events of other traces) the span that produced e.
func eventTrace(ctx context.Context, e *CloudEvent) string {
	current := trace.SpanContextFromContext(ctx)
	if produced := parentSpan(e.TraceParent); produced.IsValid() && produced.TraceID() != current.TraceID() {
		return e.TraceParent
	}
	return traceParent(current)
}
