package grpcapi

import (
	"context"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
)

// accountServer implements datav1.AccountServiceServer.
type accountServer struct {
	datav1.UnimplementedAccountServiceServer
	base
}

// GetMe implements datav1.AccountServiceServer.
func (s *accountServer) GetMe(ctx context.Context, _ *datav1.GetMeRequest) (*datav1.GetMeResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.app.GetAccount(ctx, me)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.GetMeResponse{Account: toAccount(a)}, nil
}

// UpdateMe implements datav1.AccountServiceServer.
func (s *accountServer) UpdateMe(ctx context.Context, req *datav1.UpdateMeRequest) (*datav1.UpdateMeResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.app.UpdateAccount(ctx, me, app.AccountPatch{Name: req.Name, Email: req.Email, Locale: req.Locale, Timezone: req.Timezone})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.UpdateMeResponse{Account: toAccount(a)}, nil
}

// DeleteMe implements datav1.AccountServiceServer.
func (s *accountServer) DeleteMe(ctx context.Context, _ *datav1.DeleteMeRequest) (*datav1.DeleteMeResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.app.DeleteAccount(ctx, me); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.DeleteMeResponse{}, nil
}
