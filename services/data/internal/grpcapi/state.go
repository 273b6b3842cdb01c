package grpcapi

import (
	"context"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
)

// stateServer implements datav1.DeviceStateServiceServer.
type stateServer struct {
	datav1.UnimplementedDeviceStateServiceServer
	base
}

// GetDeviceState implements datav1.DeviceStateServiceServer.
func (s *stateServer) GetDeviceState(ctx context.Context, req *datav1.GetDeviceStateRequest) (*datav1.GetDeviceStateResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.app.GetState(ctx, me, req.GetDeviceId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	out, err := s.state(ctx, st)
	if err != nil {
		return nil, err
	}
	return &datav1.GetDeviceStateResponse{State: out}, nil
}

// UpdateDesiredState implements datav1.DeviceStateServiceServer.
func (s *stateServer) UpdateDesiredState(ctx context.Context, req *datav1.UpdateDesiredStateRequest) (*datav1.UpdateDesiredStateResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.app.UpdateDesired(ctx, me, req.GetDeviceId(), req.GetDesired().AsMap(), req.ExpectedVersion)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	out, err := s.state(ctx, st)
	if err != nil {
		return nil, err
	}
	return &datav1.UpdateDesiredStateResponse{State: out}, nil
}

// state converts a state, mapping a conversion failure (a stored document
// no Struct can hold: a bug, not the caller's mistake) to Internal.
func (b base) state(ctx context.Context, st app.DeviceState) (*datav1.DeviceState, error) {
	out, err := toState(st)
	if err != nil {
		return nil, b.toStatus(ctx, err)
	}
	return out, nil
}
