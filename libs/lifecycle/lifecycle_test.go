package lifecycle_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/lifecycle"
)

// server waits for ctx, then takes drain to finish.
func server(drain time.Duration, drained *atomic.Int32) lifecycle.Actor {
	return func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(drain)
		drained.Add(1)
		return nil
	}
}

func TestShutdownDrainsEveryActor(t *testing.T) {
	t.Parallel()
	var drained atomic.Int32
	var stopping atomic.Bool
	g := lifecycle.New(zap.NewNop())
	g.Add("a", server(50*time.Millisecond, &drained))
	g.Add("b", server(10*time.Millisecond, &drained))
	g.OnStop(func() { stopping.Store(true) })

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if drained.Load() != 2 || !stopping.Load() {
		t.Fatalf("drained %d, stop hook %v", drained.Load(), stopping.Load())
	}
}

func TestFirstFailureStopsAll(t *testing.T) {
	t.Parallel()
	var drained atomic.Int32
	boom := errors.New("bind: address in use")
	g := lifecycle.New(zap.NewNop())
	g.Add("ok", server(0, &drained))
	g.Add("broken", func(context.Context) error { return boom })

	err := g.Run(t.Context())
	if !errors.Is(err, boom) || drained.Load() != 1 {
		t.Fatalf("Run = %v, drained %d", err, drained.Load())
	}
}

func TestEarlyCleanReturnIsAnError(t *testing.T) {
	t.Parallel()
	g := lifecycle.New(zap.NewNop())
	g.Add("quitter", func(context.Context) error { return nil })
	if err := g.Run(t.Context()); err == nil {
		t.Fatal("an actor that stops on its own must fail the group")
	}
}
