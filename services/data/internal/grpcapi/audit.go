package grpcapi

import (
	"context"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/libs/audit"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
	"github.com/comfortech/platform/services/data/internal/auditlog"
)

// RegisterAudit registers AuditService (admins only, by the server's
// method roles) over the audit log on s. log may be nil.
func RegisterAudit(s grpc.ServiceRegistrar, l *auditlog.Log, log *zap.Logger) {
	if log == nil {
		log = zap.NewNop()
	}
	datav1.RegisterAuditServiceServer(s, &auditServer{base: base{log: log.Named("grpcapi")}, audit: l})
}

// auditServer implements datav1.AuditServiceServer.
type auditServer struct {
	datav1.UnimplementedAuditServiceServer
	base
	audit *auditlog.Log
}

// ListAuditEvents implements datav1.AuditServiceServer.
func (s *auditServer) ListAuditEvents(ctx context.Context, req *datav1.ListAuditEventsRequest) (*datav1.ListAuditEventsResponse, error) {
	f := auditlog.Filter{ActorID: req.GetActorId(), Action: req.GetAction(), ResourceType: req.GetResourceType(), ResourceID: req.GetResourceId()}
	if req.GetStartTime() != nil {
		f.Start = req.GetStartTime().AsTime()
	}
	if req.GetEndTime() != nil {
		f.End = req.GetEndTime().AsTime()
	}
	events, next, err := s.audit.List(ctx, f, pageReq(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &datav1.ListAuditEventsResponse{Items: events, NextPageToken: next}, nil
}

// AuditMethods lists the operator actions of the data service the audit
// log records, with the resource before each change.
func AuditMethods(a *app.App, log *zap.Logger) audit.Methods {
	models := &modelServer{base: base{app: a, log: log}}
	model := func(ctx context.Context, id string) (proto.Message, error) {
		r, err := models.GetDeviceModel(ctx, &datav1.GetDeviceModelRequest{ModelId: id})
		return r.GetModel(), err
	}
	b := base{app: a, log: log}
	account := func(ctx context.Context, id string) (proto.Message, error) {
		acc, err := a.GetAccount(ctx, id)
		if err != nil {
			return nil, b.toStatus(ctx, err)
		}
		return toAccount(acc), nil
	}
	return audit.Methods{
		datav1.DeviceModelService_PutDeviceModel_FullMethodName: {
			Action: "device_model.put", ResourceType: "device_model", ID: "model.id", After: "model", Before: model},
		datav1.DeviceModelService_DeleteDeviceModel_FullMethodName: {
			Action: "device_model.delete", ResourceType: "device_model", ID: "model_id", Before: model},
		datav1.AccountAdminService_SuspendAccount_FullMethodName: {
			Action: "account.suspend", ResourceType: "account", ID: "account_id", After: "account", Reason: "reason", Before: account},
		datav1.AccountAdminService_ReinstateAccount_FullMethodName: {
			Action: "account.reinstate", ResourceType: "account", ID: "account_id", After: "account", Reason: "reason", Before: account},
	}
}
