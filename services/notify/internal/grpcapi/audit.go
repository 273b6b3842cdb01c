package grpcapi

import (
	"context"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/libs/audit"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/services/notify/internal/app"
)

// AuditMethods lists the operator actions the audit log records: changes
// to the catalog, the templates and the event subscriptions, dead-letter
// replays and deletions, and clearing the dev inbox, each with the
// resource before when it can be read by id. Subscriptions are recorded
// as GetSubscription shows them, without secrets.
func AuditMethods(svc *app.Service, log *zap.Logger) audit.Methods {
	a := &API{svc: svc, log: log}
	application := func(ctx context.Context, name string) (proto.Message, error) {
		r, err := a.GetApplication(ctx, &notifyv1.GetApplicationRequest{ApplicationName: name})
		return r.GetApplication(), err
	}
	subscription := func(ctx context.Context, name string) (proto.Message, error) {
		r, err := a.GetSubscription(ctx, &notifyv1.GetSubscriptionRequest{SubscriptionName: name})
		return r.GetSubscription(), err
	}
	deadLetter := func(ctx context.Context, id string) (proto.Message, error) {
		r, err := a.GetDeadLetter(ctx, &notifyv1.GetDeadLetterRequest{DeadLetterId: id})
		return r.GetDeadLetter(), err
	}
	return audit.Methods{
		notifyv1.CatalogService_PutApplication_FullMethodName: {
			Action: "notification_application.put", ResourceType: "notification_application", ID: "application.name", After: "application", Before: application},
		notifyv1.CatalogService_DeleteApplication_FullMethodName: {
			Action: "notification_application.delete", ResourceType: "notification_application", ID: "application_name", Before: application},
		notifyv1.TemplateService_PutTemplate_FullMethodName: {
			Action: "notification_template.put", ResourceType: "notification_template", ID: "response.template.id"},
		notifyv1.TemplateService_DeleteTemplate_FullMethodName: {
			Action: "notification_template.delete", ResourceType: "notification_template", ID: "template_id"},
		notifyv1.DeadLetterService_ReplayDeadLetter_FullMethodName: {
			Action: "dead_letter.replay", ResourceType: "dead_letter", ID: "dead_letter_id", After: "dead_letter", Before: deadLetter},
		notifyv1.DeadLetterService_DeleteDeadLetter_FullMethodName: {
			Action: "dead_letter.delete", ResourceType: "dead_letter", ID: "dead_letter_id", Before: deadLetter},
		notifyv1.DevSinkService_ClearSinkMessages_FullMethodName: {
			Action: "dev_sink.clear", ResourceType: "dev_sink"},
		notifyv1.SubscriptionService_PutSubscription_FullMethodName: {
			Action: "subscription.put", ResourceType: "subscription", ID: "subscription.name", After: "subscription", Before: subscription},
		notifyv1.SubscriptionService_DeleteSubscription_FullMethodName: {
			Action: "subscription.delete", ResourceType: "subscription", ID: "subscription_name", Before: subscription},
		notifyv1.SubscriptionService_RotateSubscriptionSecret_FullMethodName: {
			Action: "subscription.rotate_secret", ResourceType: "subscription", ID: "subscription_name", Before: subscription},
	}
}
