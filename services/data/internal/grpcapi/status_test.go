package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/comfortech/platform/services/data/internal/app"
)

// TestToStatus: every use-case error gets its code and a safe message;
// only unexpected errors are Internal, without their text.
func TestToStatus(t *testing.T) {
	t.Parallel()
	b := base{log: zap.NewNop()}
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"not found", &app.Error{Kind: app.ErrNotFound, Msg: "device not found"}, codes.NotFound, "device not found"},
		{"bare sentinel", fmt.Errorf("home: %w", app.ErrNotFound), codes.NotFound, "not found"},
		{"conflict", &app.Error{Kind: app.ErrConflict, Msg: "device already claimed"}, codes.AlreadyExists, "device already claimed"},
		{"invalid", &app.Error{Kind: app.ErrInvalid, Msg: "room_id: needs home_id", Field: "room_id"}, codes.InvalidArgument, "room_id: needs home_id"},
		{"forbidden", app.ErrForbidden, codes.PermissionDenied, "permission denied"},
		{"version", app.ErrVersionConflict, codes.Aborted, "version conflict: read again and retry"},
		{"precondition", app.ErrPrecondition, codes.FailedPrecondition, "not allowed in the current state"},
		{"deleted", app.ErrDeleted, codes.FailedPrecondition, "account was deleted"},
		{"rate limited", &app.Error{Kind: app.ErrRateLimited, Msg: "slow down", RetryAfter: time.Minute}, codes.ResourceExhausted, "slow down"},
		{"canceled", context.Canceled, codes.Canceled, "request canceled"},
		{"internal", errors.New("pq: password=secret"), codes.Internal, "internal error"},
		{"status passes", status.Error(codes.Unauthenticated, "who"), codes.Unauthenticated, "who"},
	} {
		st, _ := status.FromError(b.toStatus(context.Background(), tc.err))
		if st.Code() != tc.code || st.Message() != tc.msg {
			t.Errorf("%s: %v %q, want %v %q", tc.name, st.Code(), st.Message(), tc.code, tc.msg)
		}
		for _, d := range st.Details() {
			switch d := d.(type) {
			case *errdetails.BadRequest:
				if d.GetFieldViolations()[0].GetField() != "room_id" {
					t.Errorf("%s: field violation %v", tc.name, d)
				}
			case *errdetails.RetryInfo:
				if d.GetRetryDelay().AsDuration() != time.Minute {
					t.Errorf("%s: retry info %v", tc.name, d)
				}
			}
		}
	}
	if b.toStatus(context.Background(), nil) != nil {
		t.Error("nil error became a status")
	}
}

func TestMaskPhone(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"+79516519741": "+7******9741", "+123": "+123", "": ""} {
		if got := maskPhone(in); got != want {
			t.Errorf("maskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}
