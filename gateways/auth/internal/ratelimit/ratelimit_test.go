package ratelimit_test

import (
	"sync"
	"testing"
	"time"

	"github.com/comfortech/platform/gateways/auth/internal/ratelimit"
)

func TestParseLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want ratelimit.Limit
		ok   bool
	}{
		{"5/1m", ratelimit.Limit{Events: 5, Per: time.Minute}, true},
		{"100/1h30m", ratelimit.Limit{Events: 100, Per: 90 * time.Minute}, true},
		{"off", ratelimit.Limit{}, true},
		{"", ratelimit.Limit{}, true},
		{"5", ratelimit.Limit{}, false},
		{"0/1m", ratelimit.Limit{}, false},
		{"-1/1m", ratelimit.Limit{}, false},
		{"5/0s", ratelimit.Limit{}, false},
		{"5/minute", ratelimit.Limit{}, false},
	} {
		got, err := ratelimit.ParseLimit(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: %+v %v", tc.in, got, err)
		}
		if tc.ok && tc.in != "" {
			if back, _ := ratelimit.ParseLimit(got.String()); back != got {
				t.Errorf("%q: String %q does not parse back", tc.in, got.String())
			}
		}
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l, err := ratelimit.New(ratelimit.Limit{Events: 3, Per: time.Minute}, 0, ratelimit.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("attempt %d refused within the burst", i)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != 20*time.Second {
		t.Fatalf("fourth: ok=%v wait=%v, want refused for 20s", ok, wait)
	}
	// Refused attempts cost nothing: retrying early does not push the wait.
	for range 5 {
		l.Allow("a")
	}
	c.add(10 * time.Second)
	if ok, wait := l.Allow("a"); ok || wait != 10*time.Second {
		t.Fatalf("after 10s: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key shares a's bucket")
	}
	c.add(10 * time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("refilled token refused")
	}
}

func TestLimiterOff(t *testing.T) {
	t.Parallel()
	l, err := ratelimit.New(ratelimit.Limit{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatal("an off limit refused")
		}
	}
}

// TestLimiterBounded checks that the key cache is bounded: an evicted key
// starts over with a full bucket.
func TestLimiterBounded(t *testing.T) {
	t.Parallel()
	l, err := ratelimit.New(ratelimit.Limit{Events: 1, Per: time.Hour}, 2)
	if err != nil {
		t.Fatal(err)
	}
	l.Allow("a")
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("second attempt allowed")
	}
	l.Allow("b")
	l.Allow("c") // evicts a
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("evicted key still limited: the cache is not bounded")
	}
}

func TestLimiterConcurrent(t *testing.T) {
	t.Parallel()
	l, err := ratelimit.New(ratelimit.Limit{Events: 50, Per: time.Hour}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if ok, _ := l.Allow("k"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 50 {
		t.Fatalf("%d allowed, want exactly the burst of 50", allowed)
	}
}
