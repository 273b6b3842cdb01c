package grpcapi

import (
	"context"
	"fmt"

	"github.com/comfortech/platform/gateways/auth/internal/app"
	"github.com/comfortech/platform/gateways/auth/internal/clientip"
	"github.com/comfortech/platform/libs/auth"
	authv1 "github.com/comfortech/platform/proto/comfortech/auth/v1"
)

// authServer implements AuthService.
type authServer struct {
	authv1.UnimplementedAuthServiceServer
	s *Services
}

// Register implements AuthService.
func (a *authServer) Register(ctx context.Context, req *authv1.RegisterRequest) (*authv1.RegisterResponse, error) {
	if err := a.s.validate(req); err != nil {
		return nil, err
	}
	t, err := a.s.app.Register(ctx, app.Registration{
		Phone: req.GetPhone(), Password: req.GetPassword(), Name: req.GetName(), Email: req.GetEmail(),
		Locale: req.GetLocale(), Timezone: req.GetTimezone(), ClientIP: clientip.From(ctx),
	})
	if err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.RegisterResponse{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken,
		ExpiresIn: int32(t.ExpiresIn), RefreshExpiresIn: int32(t.RefreshExpiresIn), TokenType: t.TokenType}, nil
}

// Login implements AuthService.
func (a *authServer) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	if err := a.s.validate(req); err != nil {
		return nil, err
	}
	t, err := a.s.app.Login(ctx, req.GetUsername(), req.GetPassword(), clientip.From(ctx))
	if err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.LoginResponse{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken,
		ExpiresIn: int32(t.ExpiresIn), RefreshExpiresIn: int32(t.RefreshExpiresIn), TokenType: t.TokenType}, nil
}

// Refresh implements AuthService.
func (a *authServer) Refresh(ctx context.Context, req *authv1.RefreshRequest) (*authv1.RefreshResponse, error) {
	if err := a.s.validate(req); err != nil {
		return nil, err
	}
	t, err := a.s.app.Refresh(ctx, req.GetRefreshToken())
	if err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.RefreshResponse{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken,
		ExpiresIn: int32(t.ExpiresIn), RefreshExpiresIn: int32(t.RefreshExpiresIn), TokenType: t.TokenType}, nil
}

// Logout implements AuthService.
func (a *authServer) Logout(ctx context.Context, req *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	if err := a.s.validate(req); err != nil {
		return nil, err
	}
	if err := a.s.app.Logout(ctx, req.GetRefreshToken()); err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.LogoutResponse{}, nil
}

// ChangePassword implements AuthService.
func (a *authServer) ChangePassword(ctx context.Context, req *authv1.ChangePasswordRequest) (*authv1.ChangePasswordResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.s.validate(req); err != nil {
		return nil, err
	}
	c := app.Caller{ID: p.Subject, Username: p.Username}
	if err := a.s.app.ChangePassword(ctx, c, req.GetCurrentPassword(), req.GetNewPassword()); err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.ChangePasswordResponse{}, nil
}

// SendOtp implements AuthService.
func (a *authServer) SendOtp(ctx context.Context, req *authv1.SendOtpRequest) (*authv1.SendOtpResponse, error) {
	if err := a.s.validate(req); err != nil {
		return nil, err
	}
	sent, err := a.s.app.SendOTP(ctx, req.GetPhone(), clientip.From(ctx))
	if err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.SendOtpResponse{ExpiresIn: int32(sent.ExpiresIn.Seconds()), ResendAfter: int32(sent.ResendAfter.Seconds())}, nil
}

// VerifyOtp implements AuthService.
func (a *authServer) VerifyOtp(ctx context.Context, req *authv1.VerifyOtpRequest) (*authv1.VerifyOtpResponse, error) {
	if err := a.s.validate(req); err != nil {
		return nil, err
	}
	if err := a.s.app.VerifyOTP(ctx, req.GetPhone(), req.GetCode(), clientip.From(ctx)); err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.VerifyOtpResponse{PhoneVerified: true}, nil
}

// GetMe implements AuthService.
func (a *authServer) GetMe(ctx context.Context, req *authv1.GetMeRequest) (*authv1.GetMeResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	u, err := a.s.app.Me(ctx, p.Subject)
	if err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.GetMeResponse{User: toProtoUser(u)}, nil
}

// DeleteMe implements AuthService.
func (a *authServer) DeleteMe(ctx context.Context, req *authv1.DeleteMeRequest) (*authv1.DeleteMeResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.s.app.DeleteMe(ctx, p.Subject); err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.DeleteMeResponse{}, nil
}

// caller returns the principal the auth middleware verified. Service
// accounts have no user of their own to act on.
func caller(ctx context.Context) (*auth.Principal, error) {
	if err := auth.Authorize(ctx, ""); err != nil {
		return nil, auth.StatusError(err)
	}
	p, _ := auth.PrincipalFrom(ctx)
	if p.IsServiceAccount() {
		return nil, auth.StatusError(fmt.Errorf("%w: a service account has no user account", auth.ErrForbidden))
	}
	return p, nil
}
