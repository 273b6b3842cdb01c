package process

import "net"

// Listeners are pre-opened listeners handed to a part's Run. A nil one is
// opened from the part's configured address.
type Listeners struct {
	GRPC net.Listener
	HTTP net.Listener
	Ops  net.Listener
}

// Option configures a part's Run.
type Option func(*Listeners)

// WithGRPCListener serves the part's gRPC API on l.
func WithGRPCListener(l net.Listener) Option { return func(ls *Listeners) { ls.GRPC = l } }

// WithHTTPListener serves the part's public HTTP API on l.
func WithHTTPListener(l net.Listener) Option { return func(ls *Listeners) { ls.HTTP = l } }

// WithOpsListener serves the part's ops endpoints on l.
func WithOpsListener(l net.Listener) Option { return func(ls *Listeners) { ls.Ops = l } }

// Apply collects opts.
func Apply(opts []Option) Listeners {
	var ls Listeners
	for _, o := range opts {
		o(&ls)
	}
	return ls
}
