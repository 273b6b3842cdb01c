package grpcapi

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/auth"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
	"github.com/comfortech/platform/services/device/internal/app"
)

// commandServer implements devicev1.CommandServiceServer for the owners
// and members of devices.
type commandServer struct {
	devicev1.UnimplementedCommandServiceServer
	base
	cmds *app.Commands
}

// caller returns the authenticated account; operator says whether it acts
// as an operator (DeviceAdminService).
func caller(ctx context.Context, operator bool) (app.Caller, error) {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok || p.Subject == "" {
		return app.Caller{}, status.Error(codes.Unauthenticated, "unauthenticated")
	}
	return app.Caller{AccountID: p.Subject, Operator: operator}, nil
}

// SendCommand implements devicev1.CommandServiceServer.
func (s *commandServer) SendCommand(ctx context.Context, req *devicev1.SendCommandRequest) (*devicev1.SendCommandResponse, error) {
	who, err := caller(ctx, false)
	if err != nil {
		return nil, err
	}
	c, err := s.cmds.Send(ctx, who, toSendCommand(req.GetDeviceId(), req.GetName(), req.GetParams(), req.GetTtl(),
		req.GetWaitTimeout(), req.GetWaitForResult()))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &devicev1.SendCommandResponse{Command: toCommand(c)}, nil
}

// GetCommand implements devicev1.CommandServiceServer.
func (s *commandServer) GetCommand(ctx context.Context, req *devicev1.GetCommandRequest) (*devicev1.GetCommandResponse, error) {
	who, err := caller(ctx, false)
	if err != nil {
		return nil, err
	}
	c, err := s.cmds.Get(ctx, who, req.GetDeviceId(), req.GetCommandId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &devicev1.GetCommandResponse{Command: toCommand(c)}, nil
}

// ListCommands implements devicev1.CommandServiceServer.
func (s *commandServer) ListCommands(ctx context.Context, req *devicev1.ListCommandsRequest) (*devicev1.ListCommandsResponse, error) {
	who, err := caller(ctx, false)
	if err != nil {
		return nil, err
	}
	cs, next, err := s.cmds.List(ctx, who, req.GetDeviceId(), fromStatusEnum(req.GetStatus()), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &devicev1.ListCommandsResponse{Items: toCommands(cs), NextPageToken: next}, nil
}

// SendOperatorCommand implements devicev1.DeviceAdminServiceServer.
func (s *adminServer) SendOperatorCommand(ctx context.Context, req *devicev1.SendOperatorCommandRequest) (*devicev1.SendOperatorCommandResponse, error) {
	who, err := caller(ctx, true)
	if err != nil {
		return nil, err
	}
	c, err := s.cmds.Send(ctx, who, toSendCommand(req.GetDeviceId(), req.GetName(), req.GetParams(), req.GetTtl(),
		req.GetWaitTimeout(), req.GetWaitForResult()))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &devicev1.SendOperatorCommandResponse{Command: toCommand(c)}, nil
}

// ListDeviceCommands implements devicev1.DeviceAdminServiceServer.
func (s *adminServer) ListDeviceCommands(ctx context.Context, req *devicev1.ListDeviceCommandsRequest) (*devicev1.ListDeviceCommandsResponse, error) {
	who, err := caller(ctx, true)
	if err != nil {
		return nil, err
	}
	cs, next, err := s.cmds.List(ctx, who, req.GetDeviceId(), fromStatusEnum(req.GetStatus()), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &devicev1.ListDeviceCommandsResponse{Items: toCommands(cs), NextPageToken: next}, nil
}

// toSendCommand converts either send request (unset durations are 0,
// which selects the defaults).
func toSendCommand(deviceID, name string, params *structpb.Struct, ttl, waitTimeout *durationpb.Duration, wait bool) app.SendCommandRequest {
	return app.SendCommandRequest{DeviceID: deviceID, Name: name, Params: params.AsMap(), TTL: ttl.AsDuration(),
		Wait: wait, WaitTimeout: waitTimeout.AsDuration()}
}

var statusToProto = map[app.CommandStatus]devicev1.CommandStatus{
	app.CommandQueued:    devicev1.CommandStatus_COMMAND_STATUS_QUEUED,
	app.CommandSent:      devicev1.CommandStatus_COMMAND_STATUS_SENT,
	app.CommandSucceeded: devicev1.CommandStatus_COMMAND_STATUS_SUCCEEDED,
	app.CommandFailed:    devicev1.CommandStatus_COMMAND_STATUS_FAILED,
	app.CommandExpired:   devicev1.CommandStatus_COMMAND_STATUS_EXPIRED,
}

// fromStatusEnum is the filter of a list request; unspecified is "".
func fromStatusEnum(s devicev1.CommandStatus) app.CommandStatus {
	for k, v := range statusToProto {
		if v == s {
			return k
		}
	}
	return ""
}

func toCommand(c app.Command) *devicev1.Command {
	out := &devicev1.Command{Id: c.ID, DeviceId: c.DeviceID, Name: c.Name, Status: statusToProto[c.Status],
		Error: c.Error, RequestedBy: c.RequestedBy, CreateTime: timestamppb.New(c.CreatedAt), ExpireTime: timestamppb.New(c.ExpiresAt)}
	// Params and results came from JSON, so they always convert.
	out.Params, _ = structpb.NewStruct(c.Params)
	if c.Result != nil {
		out.Result, _ = structpb.NewStruct(c.Result)
	}
	if !c.SentAt.IsZero() {
		out.SentTime = timestamppb.New(c.SentAt)
	}
	if !c.CompletedAt.IsZero() {
		out.CompleteTime = timestamppb.New(c.CompletedAt)
	}
	return out
}

func toCommands(cs []app.Command) []*devicev1.Command {
	out := make([]*devicev1.Command, len(cs))
	for i, c := range cs {
		out[i] = toCommand(c)
	}
	return out
}
