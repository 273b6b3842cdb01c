// Package otpstore keeps one-time-code records in memory.
//
// Memory is enough for one replica: a code lives minutes, and a restart
// only makes users ask for a new one. Several replicas need a shared store
// (or sticky routing by phone) behind the same app.CodeStore interface.
package otpstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/comfortech/platform/gateways/auth/internal/app"
)

// ErrFull is returned when the store holds MaxEntries live records.
var ErrFull = errors.New("otpstore: full")

// DefaultMaxEntries bounds the records of a Memory store.
const DefaultMaxEntries = 100_000

// Memory is an in-memory app.CodeStore. Expired records are swept when the
// store grows, so no goroutine is needed.
type Memory struct {
	max int
	now func() time.Time

	mu        sync.Mutex
	recs      map[string]*app.OTPRecord
	nextSweep int
}

var _ app.CodeStore = (*Memory)(nil)

// New returns a store of at most maxEntries records (DefaultMaxEntries when
// <= 0); now is the clock (nil: time.Now).
func New(maxEntries int, now func() time.Time) *Memory {
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{max: maxEntries, now: now, recs: make(map[string]*app.OTPRecord), nextSweep: 1024}
}

// Update implements app.CodeStore. fn gets a copy of the record, so a
// record changes only through what fn returns.
func (m *Memory) Update(_ context.Context, phone string, fn func(rec *app.OTPRecord) *app.OTPRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var cur *app.OTPRecord
	if r, ok := m.recs[phone]; ok {
		c := *r
		cur = &c
	}
	next := fn(cur)
	if next == nil {
		delete(m.recs, phone)
		return nil
	}
	if _, exists := m.recs[phone]; !exists {
		if len(m.recs) >= m.nextSweep {
			m.sweep()
		}
		if len(m.recs) >= m.max {
			return ErrFull
		}
	}
	m.recs[phone] = next
	return nil
}

// Len returns the number of records held, expired ones included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs)
}

// sweep drops expired records and sets the size of the next sweep to twice
// what is left, so sweeping costs O(1) per insertion over time.
func (m *Memory) sweep() {
	now := m.now()
	for k, r := range m.recs {
		if !now.Before(r.ExpiresAt) {
			delete(m.recs, k)
		}
	}
	m.nextSweep = max(2*len(m.recs), 1024)
}
