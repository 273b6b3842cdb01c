package app

import (
	"errors"
	"fmt"
)

// Sentinel errors of the use cases. Every error a use case returns for a
// caller's mistake wraps exactly one of them (usually inside an *Error that
// carries a client-safe message); grpcapi maps each to one gRPC code.
var (
	// ErrNotFound: the device has no credentials here.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the serial is already provisioned.
	ErrConflict = errors.New("already exists")
	// ErrInvalid: the request breaks a rule; the *Error names the field.
	ErrInvalid = errors.New("invalid argument")
	// ErrUnavailable: a dependency (the data service) cannot be reached;
	// the caller may retry.
	ErrUnavailable = errors.New("unavailable")
)

// Error is a use-case error with a message safe to show to the client.
type Error struct {
	// Kind is the sentinel the error wraps.
	Kind error
	// Msg is the client-facing message.
	Msg string
	// Field names the offending request field (ErrInvalid), if any.
	Field string
}

// Error implements error.
func (e *Error) Error() string { return e.Msg }

// Unwrap makes errors.Is(err, e.Kind) true.
func (e *Error) Unwrap() error { return e.Kind }

// ItemError is a store or registry failure of one item of a batch.
type ItemError struct {
	// Index is the item's position in the batch.
	Index int
	// Err is what went wrong.
	Err error
}

// Error implements error.
func (e *ItemError) Error() string { return fmt.Sprintf("item %d: %v", e.Index, e.Err) }

// Unwrap returns Err.
func (e *ItemError) Unwrap() error { return e.Err }

func notFound(what string) error { return &Error{Kind: ErrNotFound, Msg: what + " not found"} }

func invalid(field, reason string) error {
	return &Error{Kind: ErrInvalid, Field: field, Msg: fmt.Sprintf("%s: %s", field, reason)}
}
