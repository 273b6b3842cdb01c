package grpcapi

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/gateways/auth/internal/app"
	"github.com/comfortech/platform/libs/audit"
	"github.com/comfortech/platform/libs/auth"
	authv1 "github.com/comfortech/platform/proto/comfortech/auth/v1"
)

// adminServer implements UserAdminService. Every method requires the admin
// role before it looks at the request, so a user token learns nothing
// about what an admin request would do.
type adminServer struct {
	authv1.UnimplementedUserAdminServiceServer
	s *Services
	// audit records the changes; nil records nothing.
	audit grpc.UnaryServerInterceptor
}

// admin checks the caller's role, then validates req, and returns the
// admin's account id.
func (a *adminServer) admin(ctx context.Context, req proto.Message) (string, error) {
	if err := auth.Authorize(ctx, app.RoleAdmin); err != nil {
		return "", auth.StatusError(err)
	}
	if err := a.s.validate(req); err != nil {
		return "", err
	}
	p, _ := auth.PrincipalFrom(ctx)
	return p.Subject, nil
}

// ListUsers implements UserAdminService.
func (a *adminServer) ListUsers(ctx context.Context, req *authv1.ListUsersRequest) (*authv1.ListUsersResponse, error) {
	if _, err := a.admin(ctx, req); err != nil {
		return nil, err
	}
	page, err := a.s.app.ListUsers(ctx, app.UserFilter{
		Search: req.GetSearch(), Enabled: req.Enabled, PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	out := &authv1.ListUsersResponse{NextPageToken: page.NextPageToken, Items: make([]*authv1.User, len(page.Users))}
	for i, u := range page.Users {
		out.Items[i] = toProtoUser(u)
	}
	return out, nil
}

// GetUser implements UserAdminService.
func (a *adminServer) GetUser(ctx context.Context, req *authv1.GetUserRequest) (*authv1.GetUserResponse, error) {
	if _, err := a.admin(ctx, req); err != nil {
		return nil, err
	}
	u, err := a.s.app.GetUser(ctx, req.GetUserId())
	if err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.GetUserResponse{User: toProtoUser(u)}, nil
}

// DeleteUser implements UserAdminService, recorded in the audit log.
func (a *adminServer) DeleteUser(ctx context.Context, req *authv1.DeleteUserRequest) (*authv1.DeleteUserResponse, error) {
	return audit.Call(ctx, a.audit, authv1.UserAdminService_DeleteUser_FullMethodName, req, a.deleteUser)
}

func (a *adminServer) deleteUser(ctx context.Context, req *authv1.DeleteUserRequest) (*authv1.DeleteUserResponse, error) {
	actor, err := a.admin(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := a.s.app.DeleteUser(ctx, actor, req.GetUserId()); err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.DeleteUserResponse{}, nil
}

// DisableUser implements UserAdminService, recorded in the audit log.
func (a *adminServer) DisableUser(ctx context.Context, req *authv1.DisableUserRequest) (*authv1.DisableUserResponse, error) {
	return audit.Call(ctx, a.audit, authv1.UserAdminService_DisableUser_FullMethodName, req, a.disableUser)
}

func (a *adminServer) disableUser(ctx context.Context, req *authv1.DisableUserRequest) (*authv1.DisableUserResponse, error) {
	actor, err := a.admin(ctx, req)
	if err != nil {
		return nil, err
	}
	u, err := a.s.app.SetUserEnabled(ctx, actor, req.GetUserId(), false, req.GetReason())
	if err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.DisableUserResponse{User: toProtoUser(u)}, nil
}

// EnableUser implements UserAdminService, recorded in the audit log.
func (a *adminServer) EnableUser(ctx context.Context, req *authv1.EnableUserRequest) (*authv1.EnableUserResponse, error) {
	return audit.Call(ctx, a.audit, authv1.UserAdminService_EnableUser_FullMethodName, req, a.enableUser)
}

func (a *adminServer) enableUser(ctx context.Context, req *authv1.EnableUserRequest) (*authv1.EnableUserResponse, error) {
	actor, err := a.admin(ctx, req)
	if err != nil {
		return nil, err
	}
	u, err := a.s.app.SetUserEnabled(ctx, actor, req.GetUserId(), true, "")
	if err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.EnableUserResponse{User: toProtoUser(u)}, nil
}

// ResetPassword implements UserAdminService, recorded in the audit log.
func (a *adminServer) ResetPassword(ctx context.Context, req *authv1.ResetPasswordRequest) (*authv1.ResetPasswordResponse, error) {
	return audit.Call(ctx, a.audit, authv1.UserAdminService_ResetPassword_FullMethodName, req, a.resetPassword)
}

func (a *adminServer) resetPassword(ctx context.Context, req *authv1.ResetPasswordRequest) (*authv1.ResetPasswordResponse, error) {
	actor, err := a.admin(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := a.s.app.ResetPassword(ctx, actor, req.GetUserId(), req.GetNewPassword(), req.GetTemporary()); err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.ResetPasswordResponse{}, nil
}

// GrantRole implements UserAdminService, recorded in the audit log.
func (a *adminServer) GrantRole(ctx context.Context, req *authv1.GrantRoleRequest) (*authv1.GrantRoleResponse, error) {
	return audit.Call(ctx, a.audit, authv1.UserAdminService_GrantRole_FullMethodName, req, a.grantRole)
}

func (a *adminServer) grantRole(ctx context.Context, req *authv1.GrantRoleRequest) (*authv1.GrantRoleResponse, error) {
	actor, err := a.admin(ctx, req)
	if err != nil {
		return nil, err
	}
	u, err := a.s.app.ChangeRole(ctx, actor, req.GetUserId(), req.GetRole(), true)
	if err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.GrantRoleResponse{User: toProtoUser(u)}, nil
}

// RevokeRole implements UserAdminService, recorded in the audit log.
func (a *adminServer) RevokeRole(ctx context.Context, req *authv1.RevokeRoleRequest) (*authv1.RevokeRoleResponse, error) {
	return audit.Call(ctx, a.audit, authv1.UserAdminService_RevokeRole_FullMethodName, req, a.revokeRole)
}

func (a *adminServer) revokeRole(ctx context.Context, req *authv1.RevokeRoleRequest) (*authv1.RevokeRoleResponse, error) {
	actor, err := a.admin(ctx, req)
	if err != nil {
		return nil, err
	}
	u, err := a.s.app.ChangeRole(ctx, actor, req.GetUserId(), req.GetRole(), false)
	if err != nil {
		return nil, a.s.toStatus(ctx, err)
	}
	return &authv1.RevokeRoleResponse{User: toProtoUser(u)}, nil
}

// toProtoUser converts a user for the API.
func toProtoUser(u app.User) *authv1.User {
	out := &authv1.User{
		Id: u.ID, Username: u.Username, Name: u.Name(), Email: u.Email,
		PhoneVerified: u.PhoneVerified, Enabled: u.Enabled, Roles: u.Roles,
	}
	if !u.CreatedAt.IsZero() {
		out.CreateTime = timestamppb.New(u.CreatedAt)
	}
	return out
}
