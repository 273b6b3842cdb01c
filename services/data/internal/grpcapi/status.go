package grpcapi

import (
	"context"
	"errors"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/services/data/internal/app"
)

// kinds maps each sentinel error to its code and the message used when
// the error carries none of its own.
var kinds = []struct {
	err  error
	code codes.Code
	msg  string
}{
	{app.ErrNotFound, codes.NotFound, "not found"},
	{app.ErrConflict, codes.AlreadyExists, "already exists"},
	{app.ErrInvalid, codes.InvalidArgument, "invalid argument"},
	{app.ErrForbidden, codes.PermissionDenied, "permission denied"},
	{app.ErrVersionConflict, codes.Aborted, "version conflict: read again and retry"},
	{app.ErrPrecondition, codes.FailedPrecondition, "not allowed in the current state"},
	{app.ErrDeleted, codes.FailedPrecondition, "account was deleted"},
	{app.ErrRateLimited, codes.ResourceExhausted, "too many requests, try again later"},
}

// toStatus maps a use-case error to a gRPC status error, once for the
// whole API: a caller's mistake gets its own code and a message safe to
// show; only what is nobody's mistake but ours becomes Internal, and is
// logged here (its text never reaches the client).
func (b base) toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status (caller, conversions)
	}
	for _, k := range kinds {
		if !errors.Is(err, k.err) {
			continue
		}
		msg := k.msg
		ae, isAppErr := errors.AsType[*app.Error](err)
		if isAppErr {
			msg = ae.Msg
		}
		st := status.New(k.code, msg)
		switch {
		case isAppErr && ae.Field != "":
			st = withDetails(st, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
				{Field: ae.Field, Description: msg}}})
		case isAppErr && ae.RetryAfter > 0:
			st = withDetails(st, &errdetails.RetryInfo{RetryDelay: durationpb.New(ae.RetryAfter)})
		}
		return st.Err()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		logging.For(ctx, b.log).Warn("deadline exceeded", zap.Error(err))
		return status.Error(codes.DeadlineExceeded, "request took too long")
	}
	logging.For(ctx, b.log).Error("internal error", zap.Error(err))
	return status.Error(codes.Internal, "internal error")
}

// withDetails adds details to st, or returns st unchanged if they cannot
// be encoded (they always can: these are registered messages).
func withDetails(st *status.Status, d protoadapt.MessageV1) *status.Status {
	if withD, err := st.WithDetails(d); err == nil {
		return withD
	}
	return st
}
