package app

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// DirectRequest is a message sent now, without preferences or quiet hours.
type DirectRequest struct {
	ID                  string
	Channel             Channel
	Phone, Email        string
	AccountID           string
	Subject, Body       string
	TemplateApplication string
	TemplateEventType   string
	Payload             map[string]any
	Locale              string
}

// DirectResult is the outcome of a direct send.
type DirectResult struct {
	DeliveryID string
	Sent       bool
	Detail     string
}

// directAttempts bounds the brief retries of a direct send.
const directAttempts = 3

// SendDirect sends a one-time message, retrying briefly, logs every attempt
// and returns the last. Idempotent on ID: a repeated call returns the
// first call's outcome.
func (s *Service) SendDirect(ctx context.Context, r *DirectRequest) (*DirectResult, error) {
	acct := &Account{ID: r.AccountID, Phone: r.Phone, Email: r.Email, Locale: r.Locale}
	if r.AccountID != "" {
		a, err := s.account(ctx, r.AccountID, r.Payload)
		if err != nil {
			return nil, err
		}
		acct = a
		if r.Locale != "" {
			acct.Locale = r.Locale
		}
	}
	var recipient, masked string
	switch r.Channel {
	case SMS:
		recipient, masked = acct.Phone, MaskPhone(acct.Phone)
	case Email:
		recipient, masked = acct.Email, MaskEmail(acct.Email)
	case Push:
		tokens, _, err := s.store.ListPushTokens(ctx, r.AccountID, Page{Size: 1})
		if err != nil {
			return nil, err
		}
		if len(tokens) > 0 {
			recipient, masked = tokens[0].Token, MaskToken(tokens[0].Token)
		}
	default:
		return nil, invalid("channel", "direct sends go by SMS, e-mail or push")
	}
	if recipient == "" {
		return nil, &Error{Kind: ErrPrecondition, Msg: fmt.Sprintf("no %s recipient for this request", r.Channel)}
	}
	content := Rendered{Subject: r.Subject, Body: r.Body}
	if r.TemplateEventType != "" {
		n := &Notification{ID: r.ID, Application: r.TemplateApplication, EventType: r.TemplateEventType,
			Message: r.Body, Payload: r.Payload, AccountID: r.AccountID, Timestamp: s.now()}
		var err error
		if content, err = s.Render(ctx, n, r.Subject, r.Channel, acct.Locale); err != nil {
			return nil, err
		}
		if content.Body == "" {
			return nil, invalid("template_event_type", "no template found and no body given")
		}
	}
	d := &Delivery{
		ID: uuid.NewString(), NotificationID: "direct:" + r.ID, AccountID: r.AccountID, Application: r.TemplateApplication,
		EventType: r.TemplateEventType, Level: "info", Channel: r.Channel, Recipient: recipient, Masked: masked,
		Subject: content.Subject, Body: content.Body, HTMLBody: content.HTML, Status: StatusPending,
		// Leased far ahead: this call attempts it, the scheduler only
		// after a crash.
		NextAttempt: s.now().Add(s.cfg.Lease), CreateTime: s.now(),
	}
	added, err := s.store.AddDeliveries(ctx, []*Delivery{d})
	if err != nil {
		return nil, err
	}
	if len(added) == 0 {
		return s.directOutcome(ctx, d)
	}
	var a *Attempt
	for {
		a = s.attempt(ctx, d, true)
		if a.Status != StatusRetrying || d.Attempts >= directAttempts {
			break
		}
		wait := min(max(s.backoff(d.Attempts)/10, 100*time.Millisecond), 2*time.Second)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	return &DirectResult{DeliveryID: a.ID, Sent: a.Status == StatusSent, Detail: a.Detail}, nil
}

// directOutcome answers a repeated direct send with the first one's latest attempt.
func (s *Service) directOutcome(ctx context.Context, d *Delivery) (*DirectResult, error) {
	atts, _, err := s.store.ListAttempts(ctx, DeliveryFilter{NotificationID: d.NotificationID, Channel: d.Channel}, Page{Size: 1})
	if err != nil {
		return nil, err
	}
	if len(atts) == 0 {
		return &DirectResult{Detail: "in progress"}, nil
	}
	return &DirectResult{DeliveryID: atts[0].ID, Sent: atts[0].Status == StatusSent, Detail: atts[0].Detail}, nil
}

// ListAttempts pages through the delivery log, newest first.
func (s *Service) ListAttempts(ctx context.Context, f DeliveryFilter, p Page) ([]*Attempt, string, error) {
	return s.store.ListAttempts(ctx, f, p)
}

// GetAttempt returns one delivery-log entry.
func (s *Service) GetAttempt(ctx context.Context, id string) (*Attempt, error) {
	return s.store.GetAttempt(ctx, id)
}

// AddDeadLetter records a dead letter (a record from notifications.outbox.dlq).
func (s *Service) AddDeadLetter(ctx context.Context, d *DeadLetter) error {
	return s.store.AddDeadLetter(ctx, d)
}

// ListDeadLetters pages through dead letters, newest first.
func (s *Service) ListDeadLetters(ctx context.Context, f DeadLetterFilter, p Page) ([]*DeadLetter, string, error) {
	return s.store.ListDeadLetters(ctx, f, p)
}

// GetDeadLetter returns one dead letter.
func (s *Service) GetDeadLetter(ctx context.Context, id string) (*DeadLetter, error) {
	return s.store.GetDeadLetter(ctx, id)
}

// ReplayDeadLetter puts a dead letter back on its topic; its id is kept,
// so deliveries already made are not repeated, and failed ones are tried
// again. A subscription's dead letter is delivered to that subscription
// again instead: its topic has other consumers.
func (s *Service) ReplayDeadLetter(ctx context.Context, id string) (*DeadLetter, error) {
	d, err := s.store.GetDeadLetter(ctx, id)
	if err != nil {
		return nil, err
	}
	switch name := d.Headers[HeaderSubscription]; {
	case name != "":
		if err := s.redeliver(ctx, d, name); err != nil {
			return nil, err
		}
	case s.cfg.Republish == nil || d.Value == "":
		return nil, &Error{Kind: ErrPrecondition, Msg: "this dead letter cannot be replayed"}
	default:
		if err := s.cfg.Republish(ctx, d); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
	}
	if err := s.store.MarkReplayed(ctx, id, s.now()); err != nil {
		return nil, err
	}
	return s.store.GetDeadLetter(ctx, id)
}

// DeleteDeadLetter discards a dead letter.
func (s *Service) DeleteDeadLetter(ctx context.Context, id string) error {
	return s.store.DeleteDeadLetter(ctx, id)
}

// errSinkOff answers dev-sink calls when the sink is off.
var errSinkOff = &Error{Kind: ErrPrecondition, Msg: "the dev sink is not enabled (NOTIFY_DEV_SINK)"}

// ListSinkMessages pages through the dev inbox.
func (s *Service) ListSinkMessages(ctx context.Context, ch Channel, recipient string, p Page) ([]*SinkMessage, string, error) {
	if !s.cfg.DevSink {
		return nil, "", errSinkOff
	}
	return s.store.ListSinkMessages(ctx, ch, recipient, p)
}

// ClearSinkMessages empties the dev inbox.
func (s *Service) ClearSinkMessages(ctx context.Context) (int, error) {
	if !s.cfg.DevSink {
		return 0, errSinkOff
	}
	return s.store.ClearSinkMessages(ctx)
}

// SinkStore is where the dev sink keeps what it captures.
func (s *Service) SinkStore() interface {
	AddSinkMessage(ctx context.Context, m *SinkMessage) error
} {
	return s.store
}
