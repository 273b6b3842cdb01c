package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Handle routes one outbox notification: it looks up the event type,
// the account's preferences and recipients, renders the messages and
// records one delivery per (channel, recipient), which the workers of Run
// then send. Deliveries already recorded for n.ID are not repeated. An
// error wrapping ErrInvalid means n can never be handled (unknown
// application or event type); other errors are worth retrying.
func (s *Service) Handle(ctx context.Context, n *Notification, source []byte) error {
	return s.HandleBatch(ctx, []Incoming{{Notification: n, Source: source}})
}

// route is what Handle decides for n, without writing anything: the
// deliveries to make and the skips to log.
func (s *Service) route(ctx context.Context, n *Notification, source []byte) (ds []*Delivery, skips []AttemptRecord, err error) {
	a, err := s.application(ctx, n.Application)
	if err != nil {
		return nil, nil, err
	}
	if a == nil {
		return nil, nil, fmt.Errorf("application %q is not registered: %w", n.Application, ErrInvalid)
	}
	et, ok := a.EventType(n.EventType)
	if !ok {
		return nil, nil, fmt.Errorf("event type %q is not registered by %q: %w", n.EventType, n.Application, ErrInvalid)
	}
	if !slices.Contains(et.Levels, n.Level) {
		return nil, nil, fmt.Errorf("level %q is not registered for %s/%s: %w", n.Level, n.Application, n.EventType, ErrInvalid)
	}
	prefs, err := s.preferences(ctx, n.AccountID)
	if err != nil {
		return nil, nil, err
	}
	acct, err := s.account(ctx, n.AccountID, n.Payload)
	if err != nil {
		return nil, nil, err
	}
	loc := time.UTC
	if acct.Timezone != "" {
		if l, err := time.LoadLocation(acct.Timezone); err == nil {
			loc = l
		}
	}
	chans, quiet := Route(prefs, et, n.Application, n.Level, s.now(), loc)
	if quiet {
		return nil, []AttemptRecord{s.skip(n, "", "quiet hours")}, nil
	}
	critical := n.Level == LevelCritical
	add := func(ch Channel, recipient, masked string, r Rendered, fallback string) {
		ds = append(ds, &Delivery{
			ID: uuid.NewString(), NotificationID: n.ID, AccountID: n.AccountID, Application: n.Application,
			EventType: n.EventType, Level: n.Level, Channel: ch, Recipient: recipient, Masked: masked,
			Subject: r.Subject, Body: r.Body, HTMLBody: r.HTML, Fallback: fallback, Status: StatusPending,
			// Leased ahead: HandleBatch hands it to a worker at once; the
			// scheduler takes it only if this replica stops first.
			NextAttempt: s.now().Add(s.cfg.Lease), Source: source, CreateTime: s.now(),
		})
	}
	for _, ch := range chans {
		if s.cfg.Senders[ch] == nil {
			continue
		}
		r, err := s.Render(ctx, n, et.Title, ch, acct.Locale)
		if err != nil {
			return nil, nil, err
		}
		switch ch {
		case Push:
			tokens, err := s.pushTokens(ctx, n.AccountID)
			if err != nil {
				return nil, nil, err
			}
			fallback := ""
			if critical && acct.Phone != "" && !slices.Contains(prefs.DisabledChannels, SMS) {
				fallback = acct.Phone
			}
			if len(tokens) == 0 {
				if fallback != "" && s.cfg.Senders[SMS] != nil {
					sr, err := s.Render(ctx, n, et.Title, SMS, acct.Locale)
					if err != nil {
						return nil, nil, err
					}
					add(SMS, fallback, MaskPhone(fallback), sr, "")
					continue
				}
				skips = append(skips, s.skip(n, ch, "no push token"))
			}
			for _, t := range tokens {
				add(Push, t.Token, MaskToken(t.Token), r, fallback)
			}
		case SMS:
			if acct.Phone == "" {
				skips = append(skips, s.skip(n, ch, "no phone"))
				continue
			}
			add(SMS, acct.Phone, MaskPhone(acct.Phone), r, "")
		case Email:
			if acct.Email == "" {
				skips = append(skips, s.skip(n, ch, "no e-mail address"))
				continue
			}
			add(Email, acct.Email, MaskEmail(acct.Email), r, "")
		case Webhook:
			eps, err := s.webhooks(ctx, n.AccountID)
			if err != nil {
				return nil, nil, err
			}
			for _, e := range eps {
				if !e.Enabled || !e.Wants(n.Application, n.EventType) {
					continue
				}
				body, err := webhookBody(n, r.Body)
				if err != nil {
					return nil, nil, err
				}
				add(Webhook, e.ID, MaskURL(e.URL), Rendered{Subject: r.Subject, Body: string(body)}, "")
			}
		}
	}
	return ds, skips, nil
}

// webhookBody is the JSON a webhook receives.
func webhookBody(n *Notification, text string) ([]byte, error) {
	return json.Marshal(map[string]any{
		"type": n.Application + "." + n.EventType, "timestamp": n.Timestamp.UTC().Format(time.RFC3339Nano),
		"data": map[string]any{
			"id": n.ID, "application": n.Application, "event_type": n.EventType, "level": n.Level,
			"message": text, "account_id": n.AccountID, "payload": n.Payload,
		},
	})
}

// account returns the recipient's contact details: the directory's,
// overridden by phone, email, locale and timezone in the payload.
func (s *Service) account(ctx context.Context, id string, payload map[string]any) (*Account, error) {
	acct := &Account{ID: id}
	if s.cfg.Directory != nil {
		a, err := s.accounts.get(ctx, id, func(ctx context.Context) (*Account, error) {
			a, err := s.cfg.Directory.Account(ctx, id)
			if errors.Is(err, ErrNotFound) {
				return nil, nil
			}
			return a, err
		})
		if err != nil {
			return nil, fmt.Errorf("account %s: %w", id, err)
		}
		if a != nil {
			c := *a // the payload's overrides must not reach the cache
			acct = &c
		}
	}
	for k, dst := range map[string]*string{"phone": &acct.Phone, "email": &acct.Email, "locale": &acct.Locale, "timezone": &acct.Timezone} {
		if v, ok := payload[k].(string); ok && v != "" {
			*dst = v
		}
	}
	return acct, nil
}

// skip is the log entry of a notification not sent on purpose.
func (s *Service) skip(n *Notification, ch Channel, why string) AttemptRecord {
	a := &Attempt{
		ID: uuid.NewString(), NotificationID: n.ID, AccountID: n.AccountID, Application: n.Application,
		EventType: n.EventType, Level: n.Level, Channel: ch, Attempt: 1,
		Status: StatusSkipped, Detail: why, Time: s.now(),
	}
	return AttemptRecord{Attempt: a, Events: s.events(a)}
}

func (s *Service) events(a *Attempt) []Event {
	if s.cfg.Events == nil {
		return nil
	}
	return s.cfg.Events(a)
}

// Wake makes the scheduler look for due deliveries now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run is the scheduler: it claims due deliveries (new ones and retries,
// also those a crashed replica left) and attempts them with Workers
// workers, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	work := make(chan *Delivery)
	done := make(chan struct{})
	for range s.cfg.Workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				var d *Delivery
				select {
				case d = <-s.direct:
				case w, ok := <-work:
					if !ok {
						return
					}
					d = w
				}
				s.attempt(context.WithoutCancel(ctx), d, false)
			}
		}()
	}
	rec := newRecorder(s.store, s.log)
	s.rec.Store(rec)
	rec.start()
	defer func() {
		close(work)
		for range s.cfg.Workers {
			<-done
		}
		// Workers are done: what HandleBatch queued since is left to the
		// scheduler of the next start (their lease ends).
		s.rec.Store(nil)
		rec.stop()
		var left []*Delivery
		for {
			select {
			case d := <-s.direct:
				left = append(left, d)
				continue
			default:
			}
			break
		}
		if len(left) > 0 {
			s.release(left)
		}
	}()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		ds, err := s.store.ClaimDue(ctx, s.now(), s.cfg.Lease, 4*s.cfg.Workers)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("claiming due deliveries failed", zap.Error(err))
		}
		for i, d := range ds {
			select {
			case work <- d:
			case <-ctx.Done():
				s.release(ds[i:])
				return nil
			}
		}
		if len(ds) == 4*s.cfg.Workers {
			continue // more are due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// release hands back claims no worker took, so a restart need not wait
// for their lease to end.
func (s *Service) release(ds []*Delivery) {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.Release(ctx, ids); err != nil {
		s.log.Warn("releasing claimed deliveries failed; they are retaken when their lease ends", zap.Error(err))
	}
}

// attempt sends d once and records the outcome: at once when wait is set,
// else in the recorder's next transaction, the worker moving on meanwhile.
// If recording fails, the lease ends and d is attempted again: at least
// once.
func (s *Service) attempt(ctx context.Context, d *Delivery, wait bool) *Attempt {
	if parent := parentSpan(d.TraceParent); parent.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, parent)
	}
	ctx, span := s.cfg.Tracer.Start(ctx, "deliver "+string(d.Channel), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("comfort.notification.id", d.NotificationID),
			attribute.String("comfort.delivery.id", d.ID), attribute.Int("comfort.delivery.attempt", d.Attempts+1)))
	defer span.End()
	if d.Subscription != "" {
		span.SetAttributes(attribute.String("comfort.subscription", d.Subscription))
	}
	m := &Message{ID: d.NotificationID, Channel: d.Channel, Recipient: d.Recipient, Subject: d.Subject,
		Body: d.Body, HTMLBody: d.HTMLBody, NotificationID: d.NotificationID}
	key := string(d.Channel)
	var rcv *receiver
	var res Result
	if d.Channel == Webhook {
		if rcv, res = s.receiver(ctx, d); rcv != nil {
			m.Recipient, m.JSON, m.Body, m.Secrets, m.Auth = rcv.url, []byte(d.Body), "", rcv.secrets, rcv.auth
			if u, err := url.Parse(rcv.url); err == nil {
				key = "webhook:" + u.Host
			}
		}
	}
	start := time.Now()
	if res.Err == nil {
		if sender := s.cfg.Senders[d.Channel]; sender == nil {
			res = Result{Err: errors.New("channel not configured"), Detail: "channel not configured", Permanent: true}
		} else {
			var err error
			res, err = s.breaker(key).Execute(func() (Result, error) {
				r := sender.Send(ctx, m)
				if r.Err != nil && !r.Permanent && !r.Gone {
					return r, r.Err
				}
				return r, nil
			})
			if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
				res = Result{Err: err, Detail: "circuit open for " + key}
			}
		}
	}
	latency := time.Since(start)
	d.Attempts++
	a := &Attempt{
		ID: uuid.NewString(), DeliveryID: d.ID, NotificationID: d.NotificationID, AccountID: d.AccountID,
		Application: d.Application, EventType: d.EventType, Level: d.Level, Channel: d.Channel,
		Recipient: d.Masked, Subscription: d.Subscription, Attempt: d.Attempts, ProviderStatus: res.Status, Detail: shorten(res.Detail),
		Latency: latency, Time: s.now(),
	}
	var dead *DeadLetter
	switch {
	case res.Err == nil:
		d.Status, a.Status = StatusSent, StatusSent
	case res.Permanent || res.Gone || d.Attempts >= s.cfg.MaxAttempts:
		d.Status, a.Status = StatusFailed, StatusFailed
		if a.Detail == "" {
			a.Detail = shorten(res.Err.Error())
		}
		dead = s.deadLetter(d, a.Detail)
	default:
		d.Status, a.Status = StatusPending, StatusRetrying
		if a.Detail == "" {
			a.Detail = shorten(res.Err.Error())
		}
		d.NextAttempt = s.now().Add(max(s.backoff(d.Attempts), res.RetryAfter))
		a.NextAttempt = d.NextAttempt
	}
	span.SetAttributes(attribute.String("comfort.delivery.status", string(a.Status)))
	if res.Err != nil {
		span.RecordError(res.Err)
		span.SetStatus(codes.Error, a.Detail)
	}
	if s.cfg.Observe != nil {
		s.cfg.Observe(a)
	}
	// What follows an attempt must follow its durable record.
	then := func() {
		if res.Gone {
			s.gone(ctx, d, rcv, res)
		}
		if dead != nil {
			if err := s.store.AddDeadLetter(ctx, dead); err != nil {
				s.log.Error("recording a dead letter failed", zap.String("delivery_id", d.ID), zap.Error(err))
			}
		}
		if d.Status == StatusFailed && d.Channel == Push && d.Fallback != "" {
			s.fallback(ctx, d)
		}
	}
	if res.Err == nil {
		then = nil // nothing follows a success
	}
	state := *d // the record keeps this attempt's state even if d moves on
	s.record(ctx, AttemptRecord{Delivery: &state, Attempt: a, Events: s.events(a)}, wait, then)
	return a
}

// TopicOutbox is the topic notifications come from; dead deliveries of
// notifications are dead letters of it.
const TopicOutbox = "notifications.outbox"

// deadLetter is the dead letter of a delivery that failed for good, with
// what a replay needs: a notification's deliveries keep the outbox record
// (replayed on its topic), an event delivery the event and its
// subscription (replayed to that subscription only). Nil when there is
// nothing to replay (direct sends).
func (s *Service) deadLetter(d *Delivery, detail string) *DeadLetter {
	reason := fmt.Sprintf("%s delivery to %s failed after %d attempts: %s", d.Channel, d.Masked, d.Attempts, detail)
	dl := &DeadLetter{ID: uuid.NewString(), NotificationID: d.NotificationID, Attempts: d.Attempts, CreateTime: s.now()}
	switch {
	case d.Subscription != "":
		dl.Topic, dl.Key, dl.Value = d.Topic, d.Subscription, d.Body
		dl.Headers = map[string]string{HeaderSubscription: d.Subscription}
		dl.Reason = "subscription " + d.Subscription + ": " + reason
	case len(d.Source) > 0:
		dl.Topic, dl.Key, dl.Value, dl.Reason = TopicOutbox, d.AccountID, string(d.Source), reason
	default:
		return nil
	}
	return dl
}

// receiver is where a webhook delivery goes, as it stands now: an
// account's endpoint or an event subscription.
type receiver struct {
	url     string
	secrets []string
	auth    *WebhookAuth
	// disable stops deliveries to it, saying why.
	disable func(ctx context.Context, reason string) error
}

// receiver returns d's receiver, or, when the delivery cannot be made, nil
// and the result to record.
func (s *Service) receiver(ctx context.Context, d *Delivery) (*receiver, Result) {
	if d.Subscription != "" {
		sub, err := s.subscription(ctx, d.Subscription)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil, Result{Err: errors.New("subscription deleted"), Detail: "subscription deleted", Permanent: true}
		case err != nil:
			return nil, Result{Err: err, Detail: "store: " + err.Error()}
		case sub.Status() != SubscriptionActive:
			why := "subscription " + string(sub.Status())
			if sub.Status() == SubscriptionDisabled {
				why += ": " + sub.DisabledReason
			}
			return nil, Result{Err: errors.New(why), Detail: why, Permanent: true}
		}
		return &receiver{url: sub.URL, secrets: sub.Secrets(s.now()), auth: sub.Auth,
			disable: func(ctx context.Context, reason string) error {
				return s.store.DisableSubscription(ctx, sub.Name, reason, s.now())
			}}, Result{}
	}
	ep, err := s.webhook(ctx, d.Recipient)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, Result{Err: errors.New("endpoint deleted"), Detail: "endpoint deleted", Permanent: true}
	case err != nil:
		return nil, Result{Err: err, Detail: "store: " + err.Error()}
	case !ep.Enabled:
		return nil, Result{Err: errors.New("endpoint disabled"), Detail: "endpoint disabled: " + ep.DisabledReason, Permanent: true}
	}
	return &receiver{url: ep.URL, secrets: ep.Secrets(s.now()),
		disable: func(ctx context.Context, reason string) error {
			e := *ep // ep may be shared through the cache
			e.Enabled, e.DisabledReason, e.UpdateTime = false, reason, s.now()
			return s.store.UpdateWebhook(ctx, &e)
		}}, Result{}
}

// gone removes a stale push token or disables a webhook receiver that
// answered 410.
func (s *Service) gone(ctx context.Context, d *Delivery, rcv *receiver, res Result) {
	defer s.invalidate()
	var err error
	switch {
	case d.Channel == Push:
		err = s.store.DeletePushTokenValue(ctx, d.Recipient)
	case d.Channel == Webhook && rcv != nil:
		err = rcv.disable(ctx, fmt.Sprintf("endpoint answered %d", res.Status))
	}
	if err != nil {
		s.log.Error("removing a gone recipient failed", zap.String("delivery_id", d.ID), zap.Error(err))
	}
}

// fallback texts a critical notification whose push failed for good.
func (s *Service) fallback(ctx context.Context, d *Delivery) {
	sms := *d
	sms.ID, sms.Channel, sms.Recipient, sms.Masked, sms.Fallback = uuid.NewString(), SMS, d.Fallback, MaskPhone(d.Fallback), ""
	sms.Status, sms.Attempts, sms.NextAttempt, sms.HTMLBody = StatusPending, 0, s.now(), ""
	if _, err := s.store.AddDeliveries(ctx, []*Delivery{&sms}); err != nil {
		s.log.Error("SMS fallback failed", zap.String("delivery_id", d.ID), zap.Error(err))
		return
	}
	s.Wake()
}

// backoff is the pause after the n-th failed attempt: exponential with
// full jitter, capped.
func (s *Service) backoff(n int) time.Duration {
	d := s.cfg.MinBackoff << min(n-1, 30)
	if d <= 0 || d > s.cfg.MaxBackoff {
		d = s.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func shorten(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 500 {
		return s[:500]
	}
	return s
}

// MaskPhone keeps a phone number's last 4 digits.
func MaskPhone(p string) string {
	if len(p) <= 4 {
		return "****"
	}
	return strings.Repeat("*", len(p)-4) + p[len(p)-4:]
}

// MaskEmail keeps an address's first letter and domain.
func MaskEmail(e string) string {
	at := strings.LastIndexByte(e, '@')
	if at < 1 {
		return "***"
	}
	return e[:1] + "***" + e[at:]
}

// MaskToken keeps a push token's last 8 characters.
func MaskToken(t string) string {
	if len(t) <= 8 {
		return t
	}
	return "…" + t[len(t)-8:]
}

// MaskURL keeps a URL's host.
func MaskURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return "?"
}
