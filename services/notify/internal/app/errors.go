package app

import "errors"

// Sentinel errors; the gRPC layer maps them to status codes with errors.Is.
var (
	// ErrNotFound: the thing asked for does not exist (or is not the caller's).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request cannot be carried out as given.
	ErrInvalid = errors.New("invalid argument")
	// ErrConflict: the thing already exists.
	ErrConflict = errors.New("already exists")
	// ErrPrecondition: not allowed in the current state (e.g. the dev sink is off).
	ErrPrecondition = errors.New("failed precondition")
)

// Error is a sentinel error with a message safe to show the caller and,
// for ErrInvalid, the request field at fault.
type Error struct {
	// Kind is one of the sentinel errors.
	Kind error
	// Field names the offending request field, if any.
	Field string
	// Msg is shown to the caller.
	Msg string
}

// Error implements error.
func (e *Error) Error() string { return e.Msg }

// Unwrap lets errors.Is see Kind.
func (e *Error) Unwrap() error { return e.Kind }

// invalid returns an ErrInvalid naming field.
func invalid(field, msg string) error { return &Error{Kind: ErrInvalid, Field: field, Msg: msg} }
