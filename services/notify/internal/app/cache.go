package app

import (
	"context"
	"sync"
	"time"
)

// lookupTTL bounds how stale the dispatcher's view of preferences, push
// tokens, webhook endpoints, templates and event subscriptions is on other
// replicas (changes made through this replica apply at once: they clear
// the caches), and of the directory's accounts (phone, e-mail, locale,
// time zone).
const lookupTTL = 2 * time.Second

// ttlCache memoizes lookups for a short time. Clear drops everything and
// keeps a load that began before it from storing its (maybe stale) value.
type ttlCache[V any] struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	gen     uint64
	entries map[string]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v  V
	at time.Time
}

func newTTLCache[V any](ttl time.Duration, now func() time.Time) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, now: now, entries: map[string]cacheEntry[V]{}}
}

// get returns key's value, calling load when it is missing or expired.
// Errors are not cached.
func (c *ttlCache[V]) get(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	c.mu.Lock()
	e, ok := c.entries[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < c.ttl {
		return e.v, nil
	}
	at := c.now()
	v, err := load(ctx)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(c.entries) > 100_000 { // bound memory with many accounts
			clear(c.entries)
		}
		c.entries[key] = cacheEntry[V]{v: v, at: at}
	}
	c.mu.Unlock()
	return v, nil
}

// clear forgets every entry.
func (c *ttlCache[V]) clear() {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}
