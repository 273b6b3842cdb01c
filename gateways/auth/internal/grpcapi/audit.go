package grpcapi

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/gateways/auth/internal/app"
	"github.com/comfortech/platform/libs/audit"
	authv1 "github.com/comfortech/platform/proto/comfortech/auth/v1"
)

// auditMethods lists the user-administration changes the audit log
// records, with the user as they were before.
func (a *adminServer) auditMethods() audit.Methods {
	before := func(ctx context.Context, id string) (proto.Message, error) {
		u, err := a.s.app.GetUser(ctx, id)
		if errors.Is(err, app.ErrNotFound) {
			return nil, audit.ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		return toProtoUser(u), nil
	}
	user := func(action string) audit.Method {
		return audit.Method{Action: action, ResourceType: "user", ID: "user_id", Before: before}
	}
	changed := func(action string) audit.Method {
		m := user(action)
		m.After = "user"
		return m
	}
	disable := changed("user.disable")
	disable.Reason = "reason"
	return audit.Methods{
		authv1.UserAdminService_DeleteUser_FullMethodName:    user("user.delete"),
		authv1.UserAdminService_DisableUser_FullMethodName:   disable,
		authv1.UserAdminService_EnableUser_FullMethodName:    changed("user.enable"),
		authv1.UserAdminService_ResetPassword_FullMethodName: user("user.reset_password"),
		authv1.UserAdminService_GrantRole_FullMethodName:     changed("user.grant_role"),
		authv1.UserAdminService_RevokeRole_FullMethodName:    changed("user.revoke_role"),
	}
}
