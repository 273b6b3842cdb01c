package grpcapi

import (
	"context"
	"errors"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/comfortech/platform/gateways/auth/internal/app"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/logging"
)

// Client-facing messages. They are fixed phrases: the wrapped causes carry
// identity-provider answers that are for logs only.
const (
	msgInvalidCredentials = "invalid phone or password"
	msgInvalidToken       = "invalid or expired refresh token"
	msgDisabled           = "account disabled"
	msgNotReady           = "account is not fully set up: a required action (such as replacing a temporary password) is pending"
	msgNotFound           = "user not found"
	msgRateLimited        = "too many attempts, try again later"
	msgUnavailable        = "identity service temporarily unavailable, try again shortly"
)

// toStatus maps an error of the use cases to a gRPC status error, once for
// the whole API. Errors the client can act on get their own code; only
// what is nobody's mistake but ours is Internal, and it is logged here.
func (s *Services) toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var (
		fe *app.FieldError
		ce *app.ConflictError
		pe *app.PreconditionError
		re *app.RateLimitError
	)
	switch {
	case errors.As(err, &fe):
		st, derr := status.New(codes.InvalidArgument, "invalid request: "+fe.Field+": "+fe.Reason).
			WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
				{Field: fe.Field, Description: fe.Reason},
			}})
		if derr != nil {
			return status.Error(codes.InvalidArgument, "invalid request: "+fe.Field+": "+fe.Reason)
		}
		return st.Err()
	case errors.As(err, &ce):
		return status.Error(codes.AlreadyExists, ce.Error())
	case errors.As(err, &pe):
		return status.Error(codes.FailedPrecondition, pe.Reason)
	case errors.As(err, &re):
		st, derr := status.New(codes.ResourceExhausted, msgRateLimited).
			WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(re.RetryAfter)})
		if derr != nil {
			return status.Error(codes.ResourceExhausted, msgRateLimited)
		}
		return st.Err()
	case errors.Is(err, app.ErrInvalidCredentials):
		return status.Error(codes.Unauthenticated, msgInvalidCredentials)
	case errors.Is(err, app.ErrInvalidToken):
		return status.Error(codes.Unauthenticated, msgInvalidToken)
	case errors.Is(err, app.ErrAccountDisabled):
		return status.Error(codes.PermissionDenied, msgDisabled)
	case errors.Is(err, app.ErrAccountNotReady):
		return status.Error(codes.FailedPrecondition, msgNotReady)
	case errors.Is(err, app.ErrNotFound):
		return status.Error(codes.NotFound, msgNotFound)
	case errors.Is(err, app.ErrAlreadyExists):
		return status.Error(codes.AlreadyExists, "already registered")
	case errors.Is(err, auth.ErrUnauthenticated), errors.Is(err, auth.ErrForbidden):
		return auth.StatusError(err)
	case errors.Is(err, app.ErrUnavailable):
		logging.For(ctx, s.log).Warn("dependency unavailable", zap.Error(err))
		return status.Error(codes.Unavailable, msgUnavailable)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		logging.For(ctx, s.log).Warn("deadline exceeded", zap.Error(err))
		return status.Error(codes.DeadlineExceeded, "request took too long")
	}
	logging.For(ctx, s.log).Error("internal error", zap.Error(err))
	return status.Error(codes.Internal, "internal error")
}
