package grpcapi

import (
	"context"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
)

// homeServer implements datav1.HomeServiceServer.
type homeServer struct {
	datav1.UnimplementedHomeServiceServer
	base
}

// CreateHome implements datav1.HomeServiceServer.
func (s *homeServer) CreateHome(ctx context.Context, req *datav1.CreateHomeRequest) (*datav1.CreateHomeResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	h, err := s.app.CreateHome(ctx, me, req.GetName(), req.GetTimezone())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.CreateHomeResponse{Home: toHome(h)}, nil
}

// ListHomes implements datav1.HomeServiceServer.
func (s *homeServer) ListHomes(ctx context.Context, req *datav1.ListHomesRequest) (*datav1.ListHomesResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	homes, next, err := s.app.ListHomes(ctx, me, pageReq(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &datav1.ListHomesResponse{NextPageToken: next}
	for _, h := range homes {
		resp.Items = append(resp.Items, toHome(h))
	}
	return resp, nil
}

// GetHome implements datav1.HomeServiceServer.
func (s *homeServer) GetHome(ctx context.Context, req *datav1.GetHomeRequest) (*datav1.GetHomeResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	h, err := s.app.GetHome(ctx, me, req.GetHomeId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.GetHomeResponse{Home: toHome(h)}, nil
}

// UpdateHome implements datav1.HomeServiceServer.
func (s *homeServer) UpdateHome(ctx context.Context, req *datav1.UpdateHomeRequest) (*datav1.UpdateHomeResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	h, err := s.app.UpdateHome(ctx, me, req.GetHomeId(), app.HomePatch{Name: req.Name, Timezone: req.Timezone})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.UpdateHomeResponse{Home: toHome(h)}, nil
}

// DeleteHome implements datav1.HomeServiceServer.
func (s *homeServer) DeleteHome(ctx context.Context, req *datav1.DeleteHomeRequest) (*datav1.DeleteHomeResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.app.DeleteHome(ctx, me, req.GetHomeId(), req.GetMoveDevicesToHomeId()); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.DeleteHomeResponse{}, nil
}

// CreateRoom implements datav1.HomeServiceServer.
func (s *homeServer) CreateRoom(ctx context.Context, req *datav1.CreateRoomRequest) (*datav1.CreateRoomResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.app.CreateRoom(ctx, me, req.GetHomeId(), req.GetName())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.CreateRoomResponse{Room: toRoom(r)}, nil
}

// ListRooms implements datav1.HomeServiceServer.
func (s *homeServer) ListRooms(ctx context.Context, req *datav1.ListRoomsRequest) (*datav1.ListRoomsResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	rooms, next, err := s.app.ListRooms(ctx, me, req.GetHomeId(), pageReq(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &datav1.ListRoomsResponse{NextPageToken: next}
	for _, r := range rooms {
		resp.Items = append(resp.Items, toRoom(r))
	}
	return resp, nil
}

// UpdateRoom implements datav1.HomeServiceServer.
func (s *homeServer) UpdateRoom(ctx context.Context, req *datav1.UpdateRoomRequest) (*datav1.UpdateRoomResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.app.UpdateRoom(ctx, me, req.GetHomeId(), req.GetRoomId(), req.Name)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.UpdateRoomResponse{Room: toRoom(r)}, nil
}

// DeleteRoom implements datav1.HomeServiceServer.
func (s *homeServer) DeleteRoom(ctx context.Context, req *datav1.DeleteRoomRequest) (*datav1.DeleteRoomResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.app.DeleteRoom(ctx, me, req.GetHomeId(), req.GetRoomId()); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.DeleteRoomResponse{}, nil
}
