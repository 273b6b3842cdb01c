package grpcapi

import (
	"context"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
)

// modelServer implements datav1.DeviceModelServiceServer (admins only,
// by the server's method roles).
type modelServer struct {
	datav1.UnimplementedDeviceModelServiceServer
	base
}

// ListDeviceModels implements datav1.DeviceModelServiceServer.
func (s *modelServer) ListDeviceModels(ctx context.Context, req *datav1.ListDeviceModelsRequest) (*datav1.ListDeviceModelsResponse, error) {
	models, next, err := s.app.ListModels(ctx, pageReq(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &datav1.ListDeviceModelsResponse{NextPageToken: next}
	for _, m := range models {
		resp.Items = append(resp.Items, toModel(m))
	}
	return resp, nil
}

// GetDeviceModel implements datav1.DeviceModelServiceServer.
func (s *modelServer) GetDeviceModel(ctx context.Context, req *datav1.GetDeviceModelRequest) (*datav1.GetDeviceModelResponse, error) {
	m, err := s.app.GetModel(ctx, req.GetModelId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.GetDeviceModelResponse{Model: toModel(m)}, nil
}

// PutDeviceModel implements datav1.DeviceModelServiceServer.
func (s *modelServer) PutDeviceModel(ctx context.Context, req *datav1.PutDeviceModelRequest) (*datav1.PutDeviceModelResponse, error) {
	m, created, changed, err := s.app.PutModel(ctx, fromModel(req.GetModel()), req.GetValidateOnly())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.PutDeviceModelResponse{Model: toModel(m), Created: created, Changed: changed}, nil
}

// DeleteDeviceModel implements datav1.DeviceModelServiceServer.
func (s *modelServer) DeleteDeviceModel(ctx context.Context, req *datav1.DeleteDeviceModelRequest) (*datav1.DeleteDeviceModelResponse, error) {
	if err := s.app.DeleteModel(ctx, req.GetModelId()); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.DeleteDeviceModelResponse{}, nil
}
