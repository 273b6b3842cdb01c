package device

import (
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/rpc"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
)

// methodRoles says who may call what: app users command and watch their
// own devices, operators provision and manage the fleet, and only the
// platform's service accounts (the broker's auth hook) check device
// credentials.
var methodRoles = map[string]string{
	rpc.ServicePrefix(&devicev1.CommandService_ServiceDesc):     auth.RoleUser,
	rpc.ServicePrefix(&devicev1.PresenceService_ServiceDesc):    auth.RoleUser,
	rpc.ServicePrefix(&devicev1.DeviceAdminService_ServiceDesc): auth.RoleAdmin,
	rpc.ServicePrefix(&devicev1.BrokerAuthService_ServiceDesc):  auth.RoleService,
}
