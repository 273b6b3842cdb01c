package grpcapi

import (
	"context"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
)

// deviceServer implements datav1.DeviceServiceServer.
type deviceServer struct {
	datav1.UnimplementedDeviceServiceServer
	base
}

// ListDevices implements datav1.DeviceServiceServer.
func (s *deviceServer) ListDevices(ctx context.Context, req *datav1.ListDevicesRequest) (*datav1.ListDevicesResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	devices, next, err := s.app.ListDevices(ctx, me, app.DeviceFilter{HomeID: req.GetHomeId(), RoomID: req.GetRoomId()},
		pageReq(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &datav1.ListDevicesResponse{NextPageToken: next}
	for _, d := range devices {
		resp.Items = append(resp.Items, toDevice(d))
	}
	return resp, nil
}

// GetDevice implements datav1.DeviceServiceServer.
func (s *deviceServer) GetDevice(ctx context.Context, req *datav1.GetDeviceRequest) (*datav1.GetDeviceResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.app.GetDevice(ctx, me, req.GetDeviceId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.GetDeviceResponse{Device: toDevice(d)}, nil
}

// ClaimDevice implements datav1.DeviceServiceServer.
func (s *deviceServer) ClaimDevice(ctx context.Context, req *datav1.ClaimDeviceRequest) (*datav1.ClaimDeviceResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.app.ClaimDevice(ctx, me, app.Claim{Serial: req.GetSerial(), Code: req.GetClaimCode(), Name: req.GetName(),
		HomeID: req.GetHomeId(), RoomID: req.GetRoomId()})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.ClaimDeviceResponse{Device: toDevice(d)}, nil
}

// UpdateDevice implements datav1.DeviceServiceServer.
func (s *deviceServer) UpdateDevice(ctx context.Context, req *datav1.UpdateDeviceRequest) (*datav1.UpdateDeviceResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.app.UpdateDevice(ctx, me, req.GetDeviceId(), app.DevicePatch{Name: req.Name, HomeID: req.HomeId, RoomID: req.RoomId})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.UpdateDeviceResponse{Device: toDevice(d)}, nil
}

// UnclaimDevice implements datav1.DeviceServiceServer.
func (s *deviceServer) UnclaimDevice(ctx context.Context, req *datav1.UnclaimDeviceRequest) (*datav1.UnclaimDeviceResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.app.UnclaimDevice(ctx, me, req.GetDeviceId()); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.UnclaimDeviceResponse{}, nil
}

// sharingServer implements datav1.SharingServiceServer.
type sharingServer struct {
	datav1.UnimplementedSharingServiceServer
	base
}

// CreateShare implements datav1.SharingServiceServer.
func (s *sharingServer) CreateShare(ctx context.Context, req *datav1.CreateShareRequest) (*datav1.CreateShareResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	sh, err := s.app.CreateShare(ctx, me, req.GetDeviceId(), req.GetPhone())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.CreateShareResponse{Share: toShare(sh)}, nil
}

// ListShares implements datav1.SharingServiceServer.
func (s *sharingServer) ListShares(ctx context.Context, req *datav1.ListSharesRequest) (*datav1.ListSharesResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	shares, next, err := s.app.ListShares(ctx, me, req.GetDeviceId(), pageReq(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &datav1.ListSharesResponse{NextPageToken: next}
	for _, sh := range shares {
		resp.Items = append(resp.Items, toShare(sh))
	}
	return resp, nil
}

// DeleteShare implements datav1.SharingServiceServer.
func (s *sharingServer) DeleteShare(ctx context.Context, req *datav1.DeleteShareRequest) (*datav1.DeleteShareResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.app.DeleteShare(ctx, me, req.GetDeviceId(), req.GetAccountId()); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.DeleteShareResponse{}, nil
}
