package app

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of the use cases. Adapters wrap them with %w and
// grpcapi maps each to one gRPC code; their texts never reach a client.
var (
	// ErrInvalid means the request breaks a rule; it is always wrapped in a
	// *FieldError that names the field.
	ErrInvalid = errors.New("invalid request")
	// ErrInvalidCredentials means a wrong password or an unknown username;
	// the two are deliberately one error so that logins cannot enumerate
	// users.
	ErrInvalidCredentials = errors.New("invalid username or password")
	// ErrInvalidToken means a refresh token that is malformed, expired, or
	// whose session has ended.
	ErrInvalidToken = errors.New("invalid or expired refresh token")
	// ErrAccountDisabled means the user exists and is disabled.
	ErrAccountDisabled = errors.New("account disabled")
	// ErrAccountNotReady means the identity provider holds required actions
	// for the user (for example a temporary password to replace), which a
	// direct login cannot complete.
	ErrAccountNotReady = errors.New("account is not fully set up")
	// ErrAlreadyExists means the phone (or e-mail) is already registered.
	ErrAlreadyExists = errors.New("already exists")
	// ErrNotFound means the user does not exist.
	ErrNotFound = errors.New("not found")
	// ErrPrecondition means the request is valid but not allowed in the
	// current state, such as an admin disabling their own account.
	ErrPrecondition = errors.New("failed precondition")
	// ErrRateLimited means too many attempts; it is always wrapped in a
	// *RateLimitError that says when to retry.
	ErrRateLimited = errors.New("too many requests")
	// ErrUnavailable means a dependency (identity provider, Kafka) cannot be
	// reached; the client may retry.
	ErrUnavailable = errors.New("temporarily unavailable")
)

// FieldError names the request field that broke a rule.
type FieldError struct {
	// Field is the proto field name, e.g. "password".
	Field string
	// Reason is safe to show to the client.
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// invalid returns a *FieldError.
func invalid(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// ConflictError names what is already registered: "phone" or "email".
type ConflictError struct {
	Field string
}

// Error implements error.
func (e *ConflictError) Error() string { return e.Field + " already registered" }

// Unwrap makes errors.Is(err, ErrAlreadyExists) true.
func (e *ConflictError) Unwrap() error { return ErrAlreadyExists }

// PreconditionError says why a valid request is not allowed now.
type PreconditionError struct {
	// Reason is safe to show to the client.
	Reason string
}

// Error implements error.
func (e *PreconditionError) Error() string { return e.Reason }

// Unwrap makes errors.Is(err, ErrPrecondition) true.
func (e *PreconditionError) Unwrap() error { return ErrPrecondition }

// RateLimitError says how long a rate-limited client should wait.
type RateLimitError struct {
	// RetryAfter is how long until the next attempt is allowed.
	RetryAfter time.Duration
}

// Error implements error.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("too many requests, retry in %s", e.RetryAfter.Round(time.Second))
}

// Unwrap makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }
