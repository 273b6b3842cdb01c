package app

import (
	"context"
	"testing"
	"time"
)

func TestTTLCache(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	c := newTTLCache[int](time.Second, func() time.Time { return now })
	ctx := context.Background()
	loads := 0
	load := func(context.Context) (int, error) { loads++; return loads, nil }

	if v, _ := c.get(ctx, "k", load); v != 1 {
		t.Fatalf("first get = %d, want 1", v)
	}
	if v, _ := c.get(ctx, "k", load); v != 1 {
		t.Fatalf("cached get = %d, want 1", v)
	}
	now = now.Add(time.Second)
	if v, _ := c.get(ctx, "k", load); v != 2 {
		t.Fatalf("get after TTL = %d, want 2 (reloaded)", v)
	}
	c.clear()
	if v, _ := c.get(ctx, "k", load); v != 3 {
		t.Fatalf("get after clear = %d, want 3 (reloaded)", v)
	}
	// A load that began before clear does not store its result.
	v, _ := c.get(ctx, "racy", func(context.Context) (int, error) { c.clear(); return 100, nil })
	if v != 100 {
		t.Fatalf("racy get = %d, want 100", v)
	}
	if v, _ := c.get(ctx, "racy", load); v != 4 {
		t.Fatalf("get after racy load = %d, want 4 (the stale value was not kept)", v)
	}
}
