// Package app holds the notify service's use cases: the catalog,
// preferences and recipients, templates, event subscriptions, and dispatch
// with retries, circuit breakers, fallback, the delivery log and dead
// letters. It depends only on the interfaces in ports.go.
package app

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

// Config wires a Service. Zero durations and counts select the defaults.
type Config struct {
	// Senders deliver each channel; a channel without one is skipped.
	Senders map[Channel]Sender
	// Directory finds an account's phone, e-mail, locale and time zone;
	// nil uses only what the notification's payload carries.
	Directory Directory
	// Events turns a delivery-log entry into the records to emit
	// (notifications.delivery); nil emits nothing.
	Events func(*Attempt) []Event
	// Tracer records a span for every delivery attempt, child of the span
	// that handled the notification or event (first attempts; a retry
	// taken from the store starts a trace of its own); nil records none.
	Tracer trace.Tracer
	// Observe, when set, is told every delivery attempt once its outcome
	// is known (metrics).
	Observe func(*Attempt)
	// Republish puts a dead letter back on its topic (ReplayDeadLetter).
	Republish func(ctx context.Context, d *DeadLetter) error
	// CheckHost refuses webhook hosts the SSRF guard would refuse.
	CheckHost func(host string) error
	// MaxAttempts per delivery before it is dead; default 8.
	MaxAttempts int
	// MinBackoff is the pause after the first failure, doubling with full
	// jitter up to MaxBackoff; defaults 1s and 10m. A provider's
	// Retry-After is honoured when longer.
	MinBackoff, MaxBackoff time.Duration
	// Lease is how long a worker owns a claimed delivery, and how long a
	// new delivery waits for its first attempt by the worker it was handed
	// to before the scheduler takes it (after a crash); default 1m.
	Lease time.Duration
	// Workers is how many deliveries are attempted at once; default 32.
	Workers int
	// PollInterval is how often due deliveries are looked for; default
	// 500ms. New deliveries do not wait for it: HandleBatch hands them to
	// the workers directly.
	PollInterval time.Duration
	// DevSink says push and SMS go to the dev inbox.
	DevSink bool
	// Log receives the service's logs.
	Log *zap.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service is the notify service's use cases.
type Service struct {
	store Store
	cfg   Config
	log   *zap.Logger
	now   func() time.Time
	wake  chan struct{}

	mu       sync.Mutex
	breakers map[string]*gobreaker.CircuitBreaker[Result]
	apps     map[string]cachedApp

	// Lookups the dispatcher makes for every notification, cached
	// briefly; every write through this Service clears them (invalidate).
	prefs     *ttlCache[*Preferences]
	tokens    *ttlCache[[]*PushToken]
	hooks     *ttlCache[[]*WebhookEndpoint] // by account
	hook      *ttlCache[*WebhookEndpoint]   // by id
	templates *ttlCache[*Template]          // nil: none
	accounts  *ttlCache[*Account]           // the Directory's; nil: unknown
	subs      *ttlCache[[]*Subscription]    // the active ones, under ""
	sub       *ttlCache[*Subscription]      // by name; nil: none

	// direct carries deliveries just recorded by HandleBatch to the
	// workers of Run, so first attempts need no trip through ClaimDue.
	direct chan *Delivery
	// rec, while Run runs, groups the workers' RecordAttempt calls into
	// one transaction.
	rec atomic.Pointer[recorder]
}

type cachedApp struct {
	app *Application
	at  time.Time
}

// appCacheTTL bounds how stale the dispatcher's view of the catalog is on
// other replicas; changes made through this replica apply at once.
const appCacheTTL = 5 * time.Second

// New returns a Service over store.
func New(store Store, cfg Config) *Service {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Minute
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("")
	}
	now := func() time.Time { return cfg.Now().UTC() }
	return &Service{
		store: store, cfg: cfg, log: cfg.Log, wake: make(chan struct{}, 1), now: now,
		breakers:  map[string]*gobreaker.CircuitBreaker[Result]{},
		apps:      map[string]cachedApp{},
		prefs:     newTTLCache[*Preferences](lookupTTL, now),
		tokens:    newTTLCache[[]*PushToken](lookupTTL, now),
		hooks:     newTTLCache[[]*WebhookEndpoint](lookupTTL, now),
		hook:      newTTLCache[*WebhookEndpoint](lookupTTL, now),
		templates: newTTLCache[*Template](lookupTTL, now),
		accounts:  newTTLCache[*Account](lookupTTL, now),
		subs:      newTTLCache[[]*Subscription](lookupTTL, now),
		sub:       newTTLCache[*Subscription](lookupTTL, now),
		direct:    make(chan *Delivery, 16*cfg.Workers),
	}
}

// invalidate clears the lookup caches after a write through this Service.
func (s *Service) invalidate() {
	s.prefs.clear()
	s.tokens.clear()
	s.hooks.clear()
	s.hook.clear()
	s.templates.clear()
	s.subs.clear()
	s.sub.clear()
}

// DevSink reports whether the dev sink is on.
func (s *Service) DevSink() bool { return s.cfg.DevSink }

// application returns a registered application, cached briefly.
func (s *Service) application(ctx context.Context, name string) (*Application, error) {
	s.mu.Lock()
	c, ok := s.apps[name]
	s.mu.Unlock()
	if ok && s.now().Sub(c.at) < appCacheTTL {
		return c.app, nil
	}
	a, err := s.store.GetApplication(ctx, name)
	if errors.Is(err, ErrNotFound) {
		a = nil
	} else if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.apps[name] = cachedApp{app: a, at: s.now()}
	s.mu.Unlock()
	return a, nil
}

// forget drops name from the catalog cache.
func (s *Service) forget(name string) {
	s.mu.Lock()
	delete(s.apps, name)
	s.mu.Unlock()
}

// breaker returns the circuit breaker of an endpoint (a webhook URL's host
// or a provider): after 5 consecutive failures it opens for 30 s, then lets
// one attempt through.
func (s *Service) breaker(key string) *gobreaker.CircuitBreaker[Result] {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.breakers[key]
	if !ok {
		b = gobreaker.NewCircuitBreaker[Result](gobreaker.Settings{
			Name:    key,
			Timeout: 30 * time.Second,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.ConsecutiveFailures >= 5
			},
		})
		s.breakers[key] = b
	}
	return b
}

// SetSenders sets the channel senders; call it before Run and Handle (the
// dev sink needs the Service's store, so senders may come after New).
func (s *Service) SetSenders(senders map[Channel]Sender) { s.cfg.Senders = senders }
