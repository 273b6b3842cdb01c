package data

import (
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/rpc"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
)

// methodRoles says who may call what. App users reach their own
// resources (ownership is checked per call); the admin gateway's services
// need an administrator; internal RPCs only the platform's service
// accounts.
var methodRoles = map[string]string{
	rpc.ServicePrefix(&datav1.AccountService_ServiceDesc):      auth.RoleUser,
	rpc.ServicePrefix(&datav1.HomeService_ServiceDesc):         auth.RoleUser,
	rpc.ServicePrefix(&datav1.DeviceService_ServiceDesc):       auth.RoleUser,
	rpc.ServicePrefix(&datav1.SharingService_ServiceDesc):      auth.RoleUser,
	rpc.ServicePrefix(&datav1.DeviceStateService_ServiceDesc):  auth.RoleUser,
	rpc.ServicePrefix(&datav1.TelemetryService_ServiceDesc):    auth.RoleUser,
	rpc.ServicePrefix(&datav1.AlertRuleService_ServiceDesc):    auth.RoleUser,
	rpc.ServicePrefix(&datav1.FleetService_ServiceDesc):        auth.RoleAdmin,
	rpc.ServicePrefix(&datav1.AccountAdminService_ServiceDesc): auth.RoleAdmin,
	rpc.ServicePrefix(&datav1.AuditService_ServiceDesc):        auth.RoleAdmin,
	rpc.ServicePrefix(&datav1.DeviceModelService_ServiceDesc):  auth.RoleAdmin,
	rpc.ServicePrefix(&datav1.DataInternalService_ServiceDesc): auth.RoleService,
}
