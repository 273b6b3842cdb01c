// Package grpcapi implements the generated AuthService and UserAdminService
// servers over the use cases of package app. The gateway serves them
// in-process through grpc-gateway (RegisterAuthServiceHandlerServer), so no
// gRPC interceptor runs: each method validates its request with
// protovalidate itself, checks roles where needed, and maps errors once in
// toStatus.
package grpcapi

import (
	"errors"
	"fmt"

	"buf.build/go/protovalidate"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/gateways/auth/internal/app"
	"github.com/comfortech/platform/libs/audit"
	authv1 "github.com/comfortech/platform/proto/comfortech/auth/v1"
)

// Services holds both generated servers' implementations.
type Services struct {
	app       *app.Service
	validator protovalidate.Validator
	log       *zap.Logger
}

// New returns the servers over svc.
func New(svc *app.Service, log *zap.Logger) (*Services, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("grpcapi: protovalidate: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Services{app: svc, validator: v, log: log}, nil
}

// Auth returns the AuthService server.
func (s *Services) Auth() authv1.AuthServiceServer { return &authServer{s: s} }

// UserAdmin returns the UserAdminService server; rec, when not nil,
// records every change in the audit log.
func (s *Services) UserAdmin(rec *audit.Recorder) authv1.UserAdminServiceServer {
	a := &adminServer{s: s}
	if rec != nil {
		a.audit = rec.Interceptor(a.auditMethods())
	}
	return a
}

// validate checks req against its protovalidate rules. A violation is
// InvalidArgument with buf.validate.Violations details, exactly as the
// protovalidate gRPC interceptor would answer, so that the web envelope
// names the fields.
func (s *Services) validate(req proto.Message) error {
	err := s.validator.Validate(req)
	if err == nil {
		return nil
	}
	var verr *protovalidate.ValidationError
	if errors.As(err, &verr) {
		st, derr := status.New(codes.InvalidArgument, err.Error()).WithDetails(verr.ToProto())
		if derr == nil {
			return st.Err()
		}
	}
	// A rule that fails to compile or evaluate is our bug, not the caller's.
	s.log.Error("request validation failed", zap.Error(err))
	return status.Error(codes.Internal, "internal error")
}
