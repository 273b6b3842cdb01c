package app

import (
	"errors"
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// Limit is a token bucket: Attempts at once, refilled evenly over Per.
type Limit struct {
	Attempts int
	Per      time.Duration
}

// DefaultClaimLimit is the claim limit when none is configured: 10 claim attempts per account, refilled over
// 10 minutes: plenty for a family unboxing devices, hopeless for guessing
// claim codes (a code has at least 6 characters of [A-Za-z0-9-]).
func DefaultClaimLimit() Limit { return Limit{Attempts: 10, Per: 10 * time.Minute} }

// defaultLimiterSize is how many accounts the claim limiter remembers. An
// account pushed out forgets its spent budget, so it must exceed the
// accounts claiming within one refill period.
const defaultLimiterSize = 100_000

// limiter keeps one golang.org/x/time/rate bucket per key in a bounded
// LRU (hashicorp/golang-lru), so an attacker cycling through accounts
// cannot grow memory. Limits are per process: N replicas allow N times as
// many attempts, which is fine for this purpose.
type limiter struct {
	limit   Limit
	every   rate.Limit
	buckets *lru.Cache[string, *rate.Limiter]
	now     func() time.Time
}

func newLimiter(l Limit, size int, now func() time.Time) (*limiter, error) {
	if l.Attempts <= 0 || l.Per <= 0 {
		return nil, errors.New("app: claim limit needs positive attempts and period")
	}
	if size <= 0 {
		size = defaultLimiterSize
	}
	buckets, err := lru.New[string, *rate.Limiter](size)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return &limiter{limit: l, every: rate.Every(l.Per / time.Duration(l.Attempts)), buckets: buckets, now: now}, nil
}

// allow takes one token from key's bucket; when it is empty it takes
// nothing and says how long until a token is back.
func (l *limiter) allow(key string) (bool, time.Duration) {
	b, ok := l.buckets.Get(key)
	if !ok {
		nb := rate.NewLimiter(l.every, l.limit.Attempts)
		// PeekOrAdd keeps the bucket a concurrent caller may have added.
		if prev, found, _ := l.buckets.PeekOrAdd(key, nb); found {
			b = prev
		} else {
			b = nb
		}
	}
	now := l.now()
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
