package grpcapi

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
)

// Telemetry is what the servers need of the telemetry engine;
// *telemetry.Service has it.
type Telemetry interface {
	app.TelemetryAppender
	// FleetTelemetry sets the latest telemetry, alert rules and recent
	// alerts of fd's device.
	FleetTelemetry(ctx context.Context, fd *datav1.FleetDevice) error
}

// fleetServer implements datav1.FleetServiceServer for operators (the
// server's method roles require the admin role).
type fleetServer struct {
	datav1.UnimplementedFleetServiceServer
	base
	telemetry Telemetry
}

// ListFleetDevices implements datav1.FleetServiceServer.
func (s *fleetServer) ListFleetDevices(ctx context.Context, req *datav1.ListFleetDevicesRequest) (*datav1.ListFleetDevicesResponse, error) {
	p, err := s.app.ListFleetDevices(ctx, fromFleetRequest(req), pageReq(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &datav1.ListFleetDevicesResponse{Items: make([]*datav1.Device, 0, len(p.Devices)), NextPageToken: p.Next, TotalSize: p.Total}
	for _, d := range p.Devices {
		resp.Items = append(resp.Items, toDevice(app.DeviceView{Device: d}))
	}
	return resp, nil
}

// fromFleetRequest converts the request's filters; an unset timestamp is
// the zero time (no bound).
func fromFleetRequest(req *datav1.ListFleetDevicesRequest) app.FleetFilter {
	t := func(ts *timestamppb.Timestamp) time.Time {
		if ts == nil {
			return time.Time{}
		}
		return ts.AsTime()
	}
	return app.FleetFilter{Model: req.GetModel(), FirmwareVersion: req.GetFirmwareVersion(), Online: req.Online,
		Claimed: req.Claimed, OwnerID: req.GetOwnerAccountId(), HomeID: req.GetHomeId(),
		LastSeenAfter: t(req.GetLastSeenAfter()), LastSeenBefore: t(req.GetLastSeenBefore()), SerialPrefix: req.GetSerialPrefix()}
}

// GetFleetDevice implements datav1.FleetServiceServer: the registry's
// picture from the core, the telemetry's from the telemetry engine.
func (s *fleetServer) GetFleetDevice(ctx context.Context, req *datav1.GetFleetDeviceRequest) (*datav1.GetFleetDeviceResponse, error) {
	if s.telemetry == nil {
		return nil, status.Error(codes.Unimplemented, "telemetry is not enabled in this data service")
	}
	fd, err := s.app.GetFleetDevice(ctx, req.GetDeviceId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	out := &datav1.FleetDevice{Device: toDevice(app.DeviceView{Device: fd.Device})}
	if fd.Owner != nil {
		out.Owner = toAccount(*fd.Owner)
	}
	for _, m := range fd.Members {
		out.Members = append(out.Members, toShare(m))
	}
	if fd.Home != nil {
		out.Home = toHome(*fd.Home)
	}
	if out.State, err = s.state(ctx, fd.State); err != nil {
		return nil, err
	}
	if err := s.telemetry.FleetTelemetry(ctx, out); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.GetFleetDeviceResponse{Device: out}, nil
}

// accountAdminServer implements datav1.AccountAdminServiceServer for
// operators (the server's method roles require the admin role).
type accountAdminServer struct {
	datav1.UnimplementedAccountAdminServiceServer
	base
}

// ListAccounts implements datav1.AccountAdminServiceServer.
func (s *accountAdminServer) ListAccounts(ctx context.Context, req *datav1.ListAccountsRequest) (*datav1.ListAccountsResponse, error) {
	f := app.AccountFilter{Phone: req.GetPhone(), Query: req.GetQuery()}
	switch req.GetStatus() {
	case datav1.AccountStatus_ACCOUNT_STATUS_ACTIVE:
		f.Suspended = new(false)
	case datav1.AccountStatus_ACCOUNT_STATUS_SUSPENDED:
		f.Suspended = new(true)
	}
	accounts, next, err := s.app.ListAccounts(ctx, f, pageReq(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &datav1.ListAccountsResponse{Items: make([]*datav1.Account, 0, len(accounts)), NextPageToken: next}
	for _, a := range accounts {
		resp.Items = append(resp.Items, toAccount(a))
	}
	return resp, nil
}

// GetAccountOverview implements datav1.AccountAdminServiceServer.
func (s *accountAdminServer) GetAccountOverview(ctx context.Context, req *datav1.GetAccountOverviewRequest) (*datav1.GetAccountOverviewResponse, error) {
	o, err := s.app.GetAccountOverview(ctx, req.GetAccountId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &datav1.GetAccountOverviewResponse{Account: toAccount(o.Account),
		Homes: make([]*datav1.Home, 0, len(o.Homes)), Devices: make([]*datav1.Device, 0, len(o.Devices))}
	for _, h := range o.Homes {
		resp.Homes = append(resp.Homes, toHome(h))
	}
	for _, d := range o.Devices {
		resp.Devices = append(resp.Devices, toDevice(d))
	}
	return resp, nil
}

// SuspendAccount implements datav1.AccountAdminServiceServer.
func (s *accountAdminServer) SuspendAccount(ctx context.Context, req *datav1.SuspendAccountRequest) (*datav1.SuspendAccountResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.app.SuspendAccount(ctx, me, req.GetAccountId(), req.GetReason())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.SuspendAccountResponse{Account: toAccount(a)}, nil
}

// ReinstateAccount implements datav1.AccountAdminServiceServer.
func (s *accountAdminServer) ReinstateAccount(ctx context.Context, req *datav1.ReinstateAccountRequest) (*datav1.ReinstateAccountResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.app.ReinstateAccount(ctx, me, req.GetAccountId(), req.GetReason())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.ReinstateAccountResponse{Account: toAccount(a)}, nil
}
