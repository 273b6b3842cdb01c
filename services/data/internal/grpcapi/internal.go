package grpcapi

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
)

// internalServer implements datav1.DataInternalServiceServer for the
// platform's service accounts (the server's method roles require the
// service role).
type internalServer struct {
	datav1.UnimplementedDataInternalServiceServer
	base
	telemetry app.TelemetryAppender
}

// CreateAccount implements datav1.DataInternalServiceServer.
func (s *internalServer) CreateAccount(ctx context.Context, req *datav1.CreateAccountRequest) (*datav1.CreateAccountResponse, error) {
	a, created, err := s.app.CreateAccount(ctx, app.NewAccount{ID: req.GetAccountId(), Phone: req.GetPhone(), Name: req.GetName(),
		Email: req.GetEmail(), Locale: req.GetLocale(), Timezone: req.GetTimezone()})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.CreateAccountResponse{Account: toAccount(a), Created: created}, nil
}

// GetAccount implements datav1.DataInternalServiceServer.
func (s *internalServer) GetAccount(ctx context.Context, req *datav1.GetAccountRequest) (*datav1.GetAccountResponse, error) {
	a, err := s.app.GetAccount(ctx, req.GetAccountId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.GetAccountResponse{Account: toAccount(a)}, nil
}

// RegisterDevice implements datav1.DataInternalServiceServer.
func (s *internalServer) RegisterDevice(ctx context.Context, req *datav1.RegisterDeviceRequest) (*datav1.RegisterDeviceResponse, error) {
	d, err := s.app.RegisterDevice(ctx, app.NewDevice{ID: req.GetDeviceId(), Serial: req.GetSerial(), Model: req.GetModel(),
		FirmwareVersion: req.GetFirmwareVersion(), ClaimCode: req.GetClaimCode()})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.RegisterDeviceResponse{Device: toDevice(app.DeviceView{Device: d})}, nil
}

// UnregisterDevice implements datav1.DataInternalServiceServer.
func (s *internalServer) UnregisterDevice(ctx context.Context, req *datav1.UnregisterDeviceRequest) (*datav1.UnregisterDeviceResponse, error) {
	if err := s.app.UnregisterDevice(ctx, req.GetDeviceId()); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.UnregisterDeviceResponse{}, nil
}

// RecordPresence implements datav1.DataInternalServiceServer.
func (s *internalServer) RecordPresence(ctx context.Context, req *datav1.RecordPresenceRequest) (*datav1.RecordPresenceResponse, error) {
	err := s.app.RecordPresence(ctx, req.GetDeviceId(), req.GetOnline(), req.GetLastSeenTime().AsTime(), req.GetFirmwareVersion())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.RecordPresenceResponse{}, nil
}

// CheckDeviceAccess implements datav1.DataInternalServiceServer.
func (s *internalServer) CheckDeviceAccess(ctx context.Context, req *datav1.CheckDeviceAccessRequest) (*datav1.CheckDeviceAccessResponse, error) {
	role, model, err := s.app.CheckDeviceAccess(ctx, req.GetAccountId(), req.GetDeviceId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.CheckDeviceAccessResponse{Role: toRole(role), Model: model}, nil
}

// ReportDeviceState implements datav1.DataInternalServiceServer.
func (s *internalServer) ReportDeviceState(ctx context.Context, req *datav1.ReportDeviceStateRequest) (*datav1.ReportDeviceStateResponse, error) {
	st, err := s.app.ReportState(ctx, req.GetDeviceId(), req.GetReported().AsMap(), req.GetReportTime().AsTime())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	out, err := s.state(ctx, st)
	if err != nil {
		return nil, err
	}
	return &datav1.ReportDeviceStateResponse{State: out}, nil
}

// GetDesiredState implements datav1.DataInternalServiceServer.
func (s *internalServer) GetDesiredState(ctx context.Context, req *datav1.GetDesiredStateRequest) (*datav1.GetDesiredStateResponse, error) {
	st, err := s.app.DesiredState(ctx, req.GetDeviceId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	out, err := s.state(ctx, st)
	if err != nil {
		return nil, err
	}
	return &datav1.GetDesiredStateResponse{State: out}, nil
}

// AppendTelemetry implements datav1.DataInternalServiceServer by handing
// the batch to the telemetry engine, whose errors are the core's and map
// the same way.
func (s *internalServer) AppendTelemetry(ctx context.Context, req *datav1.AppendTelemetryRequest) (*datav1.AppendTelemetryResponse, error) {
	if s.telemetry == nil {
		return nil, status.Error(codes.Unimplemented, "telemetry is not enabled in this data service")
	}
	resp, err := s.telemetry.AppendTelemetry(ctx, req)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return resp, nil
}
