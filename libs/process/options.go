package process

import (
	"net"

	"go.opentelemetry.io/otel/trace"
)

// Listeners are what a part's Run may be handed instead of building it
// from its configuration: pre-opened listeners (a nil one is opened from
// the part's configured address) and a tracer provider.
type Listeners struct {
	GRPC net.Listener
	HTTP net.Listener
	Ops  net.Listener
	// TracerProvider, when set, replaces the provider the part would build
	// from its tracing configuration; its owner shuts it down.
	TracerProvider trace.TracerProvider
}

// Option configures a part's Run.
type Option func(*Listeners)

// WithGRPCListener serves the part's gRPC API on l.
func WithGRPCListener(l net.Listener) Option { return func(ls *Listeners) { ls.GRPC = l } }

// WithHTTPListener serves the part's public HTTP API on l.
func WithHTTPListener(l net.Listener) Option { return func(ls *Listeners) { ls.HTTP = l } }

// WithOpsListener serves the part's ops endpoints on l.
func WithOpsListener(l net.Listener) Option { return func(ls *Listeners) { ls.Ops = l } }

// WithTracerProvider makes the part record its spans with tp (tests, or
// a process that runs several parts with one exporter).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(ls *Listeners) { ls.TracerProvider = tp }
}

// Apply collects opts.
func Apply(opts []Option) Listeners {
	var ls Listeners
	for _, o := range opts {
		o(&ls)
	}
	return ls
}
