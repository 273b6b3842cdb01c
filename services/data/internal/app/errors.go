package app

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of the use cases. Every error a use case returns for a
// caller's mistake wraps exactly one of them (usually inside an *Error that
// carries a client-safe message); grpcapi maps each to one gRPC code.
var (
	// ErrNotFound: the entity does not exist or the caller cannot reach it.
	// The two are deliberately one error so that nobody learns that another
	// account's home or device exists.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the entity already exists (a claimed device, a share, a
	// room name, a phone registered to another account).
	ErrConflict = errors.New("already exists")
	// ErrInvalid: the request breaks a rule; the *Error names the field.
	ErrInvalid = errors.New("invalid argument")
	// ErrForbidden: the caller reaches the entity but may not do this to it
	// (a member attempting an owner-only operation).
	ErrForbidden = errors.New("permission denied")
	// ErrVersionConflict: an optimistic-concurrency check failed; the
	// client should re-read and retry.
	ErrVersionConflict = errors.New("version conflict")
	// ErrPrecondition: the request is valid but not allowed in the current
	// state (deleting a home that still has devices).
	ErrPrecondition = errors.New("failed precondition")
	// ErrRateLimited: too many attempts; the *Error says when to retry.
	ErrRateLimited = errors.New("rate limited")
	// ErrDeleted: the account was deleted and cannot come back under the
	// same id.
	ErrDeleted = errors.New("account deleted")
)

// Error is a use-case error with a message safe to show to the client.
type Error struct {
	// Kind is the sentinel the error wraps.
	Kind error
	// Msg is the client-facing message.
	Msg string
	// Field names the offending request field (ErrInvalid), if any.
	Field string
	// RetryAfter tells a rate-limited client when to try again.
	RetryAfter time.Duration
}

// Error implements error.
func (e *Error) Error() string { return e.Msg }

// Unwrap makes errors.Is(err, e.Kind) true.
func (e *Error) Unwrap() error { return e.Kind }

// notFound reports that what (e.g. "device") does not exist for the caller.
func notFound(what string) error { return &Error{Kind: ErrNotFound, Msg: what + " not found"} }

// conflict reports that msg describes an existing entity.
func conflict(msg string) error { return &Error{Kind: ErrConflict, Msg: msg} }

// invalid reports a broken rule on a request field.
func invalid(field, reason string) error { return Invalid(field, reason) }

// Invalid reports that the request field breaks a rule, for use cases
// outside this package (the audit log).
func Invalid(field, reason string) error {
	return &Error{Kind: ErrInvalid, Field: field, Msg: fmt.Sprintf("%s: %s", field, reason)}
}

// forbidden reports an operation the caller's role does not allow.
func forbidden(msg string) error { return &Error{Kind: ErrForbidden, Msg: msg} }

// precondition reports a valid request that the current state refuses.
func precondition(msg string) error { return &Error{Kind: ErrPrecondition, Msg: msg} }

// isNotFound reports whether err wraps ErrNotFound.
func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
