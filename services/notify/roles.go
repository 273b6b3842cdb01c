package notify

import (
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/rpc"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
)

// methodRoles says who may call what: app users manage their own
// preferences, push tokens and webhooks; operators the catalog, templates,
// delivery log, dead letters, dev inbox and event subscriptions; only the
// platform's service accounts send direct messages (one-time codes).
var methodRoles = map[string]string{
	rpc.ServicePrefix(&notifyv1.PreferenceService_ServiceDesc):      auth.RoleUser,
	rpc.ServicePrefix(&notifyv1.PushTokenService_ServiceDesc):       auth.RoleUser,
	rpc.ServicePrefix(&notifyv1.WebhookEndpointService_ServiceDesc): auth.RoleUser,
	rpc.ServicePrefix(&notifyv1.CatalogService_ServiceDesc):         auth.RoleAdmin,
	rpc.ServicePrefix(&notifyv1.TemplateService_ServiceDesc):        auth.RoleAdmin,
	rpc.ServicePrefix(&notifyv1.DeliveryService_ServiceDesc):        auth.RoleAdmin,
	rpc.ServicePrefix(&notifyv1.DeadLetterService_ServiceDesc):      auth.RoleAdmin,
	rpc.ServicePrefix(&notifyv1.DevSinkService_ServiceDesc):         auth.RoleAdmin,
	rpc.ServicePrefix(&notifyv1.SubscriptionService_ServiceDesc):    auth.RoleAdmin,
	rpc.ServicePrefix(&notifyv1.DirectService_ServiceDesc):          auth.RoleService,
}
