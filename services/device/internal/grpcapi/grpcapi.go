// Package grpcapi implements the device service's gRPC servers over the
// use cases: DeviceAdminService (provisioning, credentials, operator
// commands and presence), CommandService, PresenceService and
// BrokerAuthService.
package grpcapi

import (
	"context"
	"errors"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/logging"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
	"github.com/comfortech/platform/services/device/internal/app"
)

// Register adds the servers to srv.
func Register(srv grpc.ServiceRegistrar, a *app.App, cmds *app.Commands, presence *app.PresenceHistory, log *zap.Logger) {
	b := base{app: a, log: log}
	devicev1.RegisterDeviceAdminServiceServer(srv, &adminServer{base: b, cmds: cmds, presence: presence})
	devicev1.RegisterCommandServiceServer(srv, &commandServer{base: b, cmds: cmds})
	devicev1.RegisterPresenceServiceServer(srv, &presenceServer{base: b, presence: presence})
	devicev1.RegisterBrokerAuthServiceServer(srv, &brokerServer{base: b})
}

// base is what every server shares.
type base struct {
	app *app.App
	log *zap.Logger
}

// adminServer implements devicev1.DeviceAdminServiceServer.
type adminServer struct {
	devicev1.UnimplementedDeviceAdminServiceServer
	base
	cmds     *app.Commands
	presence *app.PresenceHistory
}

// ProvisionDevice implements devicev1.DeviceAdminServiceServer.
func (s *adminServer) ProvisionDevice(ctx context.Context, req *devicev1.ProvisionDeviceRequest) (*devicev1.ProvisionDeviceResponse, error) {
	p, err := s.app.Provision(ctx, toProvisionRequest(req))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &devicev1.ProvisionDeviceResponse{Device: toProvisioned(p)}, nil
}

// BatchProvisionDevices implements devicev1.DeviceAdminServiceServer.
func (s *adminServer) BatchProvisionDevices(ctx context.Context, req *devicev1.BatchProvisionDevicesRequest) (*devicev1.BatchProvisionDevicesResponse, error) {
	rs := make([]app.ProvisionRequest, len(req.GetRequests()))
	for i, r := range req.GetRequests() {
		rs[i] = toProvisionRequest(r)
	}
	ps, err := s.app.BatchProvision(ctx, rs)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &devicev1.BatchProvisionDevicesResponse{Items: make([]*devicev1.ProvisionedDevice, len(ps))}
	for i, p := range ps {
		resp.Items[i] = toProvisioned(p)
	}
	return resp, nil
}

// RotateDeviceSecret implements devicev1.DeviceAdminServiceServer.
func (s *adminServer) RotateDeviceSecret(ctx context.Context, req *devicev1.RotateDeviceSecretRequest) (*devicev1.RotateDeviceSecretResponse, error) {
	r, err := s.app.RotateSecret(ctx, req.GetDeviceId(), req.GetGracePeriod().AsDuration())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &devicev1.RotateDeviceSecretResponse{DeviceId: req.GetDeviceId(), Secret: r.Secret,
		OldSecretExpireTime: timestamppb.New(r.OldExpiresAt)}, nil
}

// RevokeDeviceSecret implements devicev1.DeviceAdminServiceServer.
func (s *adminServer) RevokeDeviceSecret(ctx context.Context, req *devicev1.RevokeDeviceSecretRequest) (*devicev1.RevokeDeviceSecretResponse, error) {
	if err := s.app.RevokeSecret(ctx, req.GetDeviceId()); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	logging.For(ctx, s.log).Info("device secret revoked", zap.String("device_id", req.GetDeviceId()), zap.String("reason", req.GetReason()))
	return &devicev1.RevokeDeviceSecretResponse{}, nil
}

// DecommissionDevice implements devicev1.DeviceAdminServiceServer.
func (s *adminServer) DecommissionDevice(ctx context.Context, req *devicev1.DecommissionDeviceRequest) (*devicev1.DecommissionDeviceResponse, error) {
	if err := s.app.Decommission(ctx, req.GetDeviceId()); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	logging.For(ctx, s.log).Info("device decommissioned", zap.String("device_id", req.GetDeviceId()), zap.String("reason", req.GetReason()))
	return &devicev1.DecommissionDeviceResponse{}, nil
}

// brokerServer implements devicev1.BrokerAuthServiceServer.
type brokerServer struct {
	devicev1.UnimplementedBrokerAuthServiceServer
	base
}

// AuthenticateDevice implements devicev1.BrokerAuthServiceServer.
func (s *brokerServer) AuthenticateDevice(ctx context.Context, req *devicev1.AuthenticateDeviceRequest) (*devicev1.AuthenticateDeviceResponse, error) {
	v, err := s.app.Authenticate(ctx, req.GetClientId(), req.GetUsername(), req.GetPassword())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &devicev1.AuthenticateDeviceResponse{Allowed: v.Allowed, Reason: v.Reason, CacheTtlSeconds: int32(v.CacheTTL.Seconds())}
	if v.Allowed {
		resp.DeviceId = req.GetClientId()
	} else {
		logging.For(ctx, s.log).Info("device refused", zap.String("client_id", req.GetClientId()),
			zap.String("remote_addr", req.GetRemoteAddr()), zap.String("reason", v.Reason))
	}
	return resp, nil
}

// AuthorizeTopic implements devicev1.BrokerAuthServiceServer.
func (s *brokerServer) AuthorizeTopic(_ context.Context, req *devicev1.AuthorizeTopicRequest) (*devicev1.AuthorizeTopicResponse, error) {
	v := s.app.AuthorizeTopic(req.GetDeviceId(), req.GetTopic(), req.GetAccess() == devicev1.TopicAccess_TOPIC_ACCESS_PUBLISH)
	return &devicev1.AuthorizeTopicResponse{Allowed: v.Allowed, CacheTtlSeconds: int32(v.CacheTTL.Seconds())}, nil
}

func toProvisionRequest(r *devicev1.ProvisionDeviceRequest) app.ProvisionRequest {
	return app.ProvisionRequest{Serial: r.GetSerial(), Model: r.GetModel(), FirmwareVersion: r.GetFirmwareVersion(), ClaimCode: r.GetClaimCode()}
}

func toProvisioned(p app.Provisioned) *devicev1.ProvisionedDevice {
	return &devicev1.ProvisionedDevice{DeviceId: p.DeviceID, Serial: p.Serial, Model: p.Model, Secret: p.Secret,
		ClaimCode: p.ClaimCode, CreateTime: timestamppb.New(p.CreatedAt)}
}

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
	{app.ErrUnavailable, codes.Unavailable, "a dependency is unavailable, try again later"},
}

// toStatus maps a use-case error to a gRPC status error, once for the
// whole API: a caller's mistake gets its own code and a message safe to
// show; what is nobody's mistake but ours becomes Internal, and is logged
// here (its text never reaches the client).
func (b base) toStatus(ctx context.Context, err error) error {
	for _, k := range kinds {
		if !errors.Is(err, k.err) {
			continue
		}
		msg := k.msg
		ae, isAppErr := errors.AsType[*app.Error](err)
		if isAppErr {
			msg = ae.Msg
		} else if k.code == codes.Unavailable {
			logging.For(ctx, b.log).Warn("dependency unavailable", zap.Error(err))
		}
		st := status.New(k.code, msg)
		if isAppErr && ae.Field != "" {
			if d, derr := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
				{Field: ae.Field, Description: msg}}}); derr == nil {
				st = d
			}
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
