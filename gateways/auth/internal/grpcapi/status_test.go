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

	"github.com/comfortech/platform/gateways/auth/internal/app"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/web"
)

func TestToStatus(t *testing.T) {
	t.Parallel()
	s := &Services{log: zap.NewNop()}
	secret := "keycloak said: 401 Unauthorized: invalid_grant: Invalid user credentials"
	for _, tc := range []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{fmt.Errorf("login: %w: %s", app.ErrInvalidCredentials, secret), codes.Unauthenticated, msgInvalidCredentials},
		{fmt.Errorf("refresh: %w: x", app.ErrInvalidToken), codes.Unauthenticated, msgInvalidToken},
		{fmt.Errorf("login: %w: x", app.ErrAccountDisabled), codes.PermissionDenied, msgDisabled},
		{app.ErrAccountNotReady, codes.FailedPrecondition, msgNotReady},
		{fmt.Errorf("get: %w", app.ErrNotFound), codes.NotFound, msgNotFound},
		{fmt.Errorf("register: %w", &app.ConflictError{Field: "phone"}), codes.AlreadyExists, "phone already registered"},
		{&app.PreconditionError{Reason: "no"}, codes.FailedPrecondition, "no"},
		{&app.FieldError{Field: "code", Reason: "is wrong"}, codes.InvalidArgument, "invalid request: code: is wrong"},
		{&app.RateLimitError{RetryAfter: 1500 * time.Millisecond}, codes.ResourceExhausted, msgRateLimited},
		{fmt.Errorf("x: %w: %s", app.ErrUnavailable, secret), codes.Unavailable, msgUnavailable},
		{fmt.Errorf("%w: no principal", auth.ErrUnauthenticated), codes.Unauthenticated, ""},
		{fmt.Errorf("%w: role", auth.ErrForbidden), codes.PermissionDenied, "permission denied"},
		{context.Canceled, codes.Canceled, ""},
		{errors.New(secret), codes.Internal, "internal error"},
	} {
		st := status.Convert(s.toStatus(t.Context(), tc.err))
		if st.Code() != tc.code || (tc.msg != "" && st.Message() != tc.msg) {
			t.Errorf("%v: %v %q, want %v %q", tc.err, st.Code(), st.Message(), tc.code, tc.msg)
		}
		if st.Message() == secret {
			t.Errorf("%v: the cause reached the client", tc.err)
		}
	}

	st := status.Convert(s.toStatus(t.Context(), &app.RateLimitError{RetryAfter: 1500 * time.Millisecond}))
	var ri *errdetails.RetryInfo
	for _, d := range st.Details() {
		ri, _ = d.(*errdetails.RetryInfo)
	}
	if ri == nil || ri.GetRetryDelay().AsDuration() != 1500*time.Millisecond {
		t.Fatalf("RetryInfo: %v", st.Details())
	}
	body := web.Body(status.Convert(s.toStatus(t.Context(), &app.FieldError{Field: "code", Reason: "is wrong"})))
	if len(body.Details) != 1 || body.Details[0].Field != "code" {
		t.Fatalf("envelope details %+v", body)
	}
}
