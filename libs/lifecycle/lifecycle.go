// Package lifecycle runs the servers and workers of one process together:
// the first one to stop, with an error or because the process was asked to
// shut down, stops all the others, and Run returns once every one of them
// has drained.
package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/oklog/run"
	"go.uber.org/zap"
)

// Actor is a server or worker: it runs until ctx ends, then drains and
// returns. Returning before ctx ends, with or without an error, stops the
// whole group.
type Actor func(ctx context.Context) error

// Group is a set of named actors.
type Group struct {
	log     *zap.Logger
	names   []string
	actors  []Actor
	onStops []func()
}

// New returns an empty group that logs with log.
func New(log *zap.Logger) *Group { return &Group{log: log} }

// Add adds an actor under a name used in logs and errors.
func (g *Group) Add(name string, a Actor) {
	g.names = append(g.names, name)
	g.actors = append(g.actors, a)
}

// OnStop registers f to run once, as soon as the group starts to stop and
// before the actors are interrupted: readiness flips to draining there.
func (g *Group) OnStop(f func()) { g.onStops = append(g.onStops, f) }

// Run starts every actor and blocks until all have returned. It stops them
// all when ctx ends or when any of them returns, and returns the first error.
// An actor stopped by ctx ending is not an error.
func (g *Group) Run(ctx context.Context) error {
	var rg run.Group
	quit := make(chan struct{})
	// The first member waits for the shutdown signal; being first, its
	// interrupt runs first, so the OnStop hooks see the group stopping
	// before any actor is cancelled.
	rg.Add(func() error {
		select {
		case <-ctx.Done():
			g.log.Info("shutting down")
		case <-quit:
		}
		return nil
	}, func(error) {
		close(quit)
		for _, f := range g.onStops {
			f()
		}
	})
	for i, a := range g.actors {
		name := g.names[i]
		actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		rg.Add(func() error {
			err := a(actx)
			if actx.Err() == nil {
				// The actor stopped on its own: that ends the process.
				if err == nil {
					err = errors.New("stopped unexpectedly")
				}
				return fmt.Errorf("%s: %w", name, err)
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		}, func(error) { cancel() })
	}
	return rg.Run()
}
