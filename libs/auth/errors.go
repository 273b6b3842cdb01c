package auth

import (
	"context"
	"errors"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// ErrUnauthenticated or ErrForbidden, so callers branch with errors.Is.
var (
	// ErrUnauthenticated means the request carries no token, or a token that
	// failed verification.
	ErrUnauthenticated = errors.New("auth: unauthenticated")
	// ErrForbidden means the caller is authenticated but lacks a required role.
	ErrForbidden = errors.New("auth: permission denied")
	// ErrKeysNotLoaded means the realm's signing keys have not been fetched yet
	// (the identity provider was unreachable at start-up). It is always wrapped
	// together with ErrUnauthenticated.
	ErrKeysNotLoaded = errors.New("auth: signing keys not loaded yet")
)

// errMissingToken marks a request that carries no bearer token at all; it is
// distinguished from an invalid token only to give the client a clearer message.
var errMissingToken = errors.New("missing bearer token")

// StatusError converts an error from this package into a gRPC status error:
// ErrForbidden becomes codes.PermissionDenied and everything else
// codes.Unauthenticated (an auth failure never fails open). Errors that already
// carry a gRPC status are returned unchanged, and nil stays nil.
//
// The status message is one of a few fixed, client-safe phrases. The returned
// error still unwraps to err, so errors.Is(…, ErrUnauthenticated) keeps working
// and a logger can record the precise cause.
func StatusError(err error) error {
	if err == nil {
		return nil
	}
	var se *statusError
	if errors.As(err, &se) {
		return err
	}
	if !errors.Is(err, ErrUnauthenticated) && !errors.Is(err, ErrForbidden) {
		if _, ok := status.FromError(err); ok {
			return err
		}
	}
	return &statusError{st: status.New(statusCode(err), publicMessage(err)), cause: err}
}

func statusCode(err error) codes.Code {
	if errors.Is(err, ErrForbidden) {
		return codes.PermissionDenied
	}
	return codes.Unauthenticated
}

// publicMessage picks the client-facing text. It deliberately never formats err
// itself: causes may mention key ids or claim values that a client should not
// be able to probe.
func publicMessage(err error) string {
	switch {
	case errors.Is(err, ErrForbidden):
		return "permission denied"
	case errors.Is(err, errMissingToken):
		return "missing bearer token"
	case errors.Is(err, ErrKeysNotLoaded):
		return "identity provider keys not available yet, retry shortly"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "access token expired"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "token verification did not complete"
	default:
		return "invalid access token"
	}
}

// statusError is a gRPC status that also unwraps to the error it was made
// from. Error() deliberately reports only the status, never the cause.
type statusError struct {
	st    *status.Status
	cause error
}

// Error implements error with the same text as status.Error would.
func (e *statusError) Error() string { return e.st.Err().Error() }

// GRPCStatus lets status.FromError, status.Code and grpc-go see the status.
func (e *statusError) GRPCStatus() *status.Status { return e.st }

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *statusError) Unwrap() error { return e.cause }
