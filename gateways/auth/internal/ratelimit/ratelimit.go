// Package ratelimit is a keyed token-bucket rate limiter: one bucket per
// key (a phone number, a client IP), kept in a bounded LRU cache.
//
// The buckets are golang.org/x/time/rate limiters, the Go team's token
// bucket, whose reservations tell exactly how long a refused caller must
// wait (the Retry-After the API promises); the LRU is hashicorp's
// golang-lru, which bounds memory when an attacker cycles through keys.
// Both are already dependencies of libs (the JWKS refresh limiter, the
// token cache), so the gateway adds no new module for this. sethvargo's
// go-limiter was the alternative; it reports only a reset time for the
// whole window, and its memory store sweeps on a timer goroutine instead of
// bounding its size.
//
// Limits are per process: N replicas allow N times the configured rate.
package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// DefaultSize is how many keys a Limiter remembers. A key pushed out forgets
// its spent budget, so the size must exceed the number of keys active
// within one refill period.
const DefaultSize = 100_000

// Limit is a token bucket: Events attempts at once, refilled evenly over
// Per. The zero Limit allows everything.
type Limit struct {
	Events int
	Per    time.Duration
}

// ParseLimit reads "5/1m" (5 events per minute, in bursts of up to 5) or
// "off".
func ParseLimit(s string) (Limit, error) {
	if s == "off" || s == "" {
		return Limit{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	events, err := strconv.Atoi(n)
	if !ok || err != nil || events <= 0 {
		return Limit{}, fmt.Errorf("rate limit %q: want <events>/<duration>, e.g. 5/1m, or off", s)
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return Limit{}, fmt.Errorf("rate limit %q: want <events>/<duration>, e.g. 5/1m, or off", s)
	}
	return Limit{Events: events, Per: d}, nil
}

// UnmarshalText implements encoding.TextUnmarshaler, for configuration.
func (l *Limit) UnmarshalText(b []byte) error {
	v, err := ParseLimit(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// String formats the limit as ParseLimit reads it.
func (l Limit) String() string {
	if l.Off() {
		return "off"
	}
	return strconv.Itoa(l.Events) + "/" + l.Per.String()
}

// Off reports whether the limit allows everything.
func (l Limit) Off() bool { return l.Events <= 0 || l.Per <= 0 }

// Limiter holds one bucket per key. It is safe for concurrent use.
type Limiter struct {
	limit   Limit
	every   rate.Limit
	buckets *lru.Cache[string, *rate.Limiter]
	now     func() time.Time
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(l *Limiter) { l.now = now } }

// New returns a Limiter for limit remembering up to size keys (DefaultSize
// when size <= 0).
func New(limit Limit, size int, opts ...Option) (*Limiter, error) {
	if size <= 0 {
		size = DefaultSize
	}
	buckets, err := lru.New[string, *rate.Limiter](size)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	l := &Limiter{limit: limit, buckets: buckets, now: time.Now}
	if !limit.Off() {
		l.every = rate.Every(limit.Per / time.Duration(limit.Events))
	}
	for _, o := range opts {
		o(l)
	}
	if l.now == nil {
		return nil, errors.New("ratelimit: nil clock")
	}
	return l, nil
}

// Allow takes one token from key's bucket. When the bucket is empty it
// takes nothing and returns false with the time until a token is there.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l.limit.Off() {
		return true, 0
	}
	b, ok := l.buckets.Get(key)
	if !ok {
		// PeekOrAdd keeps the bucket a concurrent caller may have added.
		nb := rate.NewLimiter(l.every, l.limit.Events)
		if prev, found, _ := l.buckets.PeekOrAdd(key, nb); found {
			b = prev
		} else {
			b = nb
		}
	}
	now := l.now()
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		// Refused attempts do not spend budget: cancel the reservation, or a
		// client retrying too early would push its own wait further out.
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
