// Package grpcapi implements the notify service's gRPC API
// (comfortech.notify.v1) over internal/app; toStatus is the one mapping
// from use-case errors to status codes.
package grpcapi

import (
	"context"
	"errors"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/logging"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/services/notify/internal/app"
)

// API implements the notify services.
type API struct {
	notifyv1.UnimplementedCatalogServiceServer
	notifyv1.UnimplementedPreferenceServiceServer
	notifyv1.UnimplementedPushTokenServiceServer
	notifyv1.UnimplementedWebhookEndpointServiceServer
	notifyv1.UnimplementedTemplateServiceServer
	notifyv1.UnimplementedDeliveryServiceServer
	notifyv1.UnimplementedDeadLetterServiceServer
	notifyv1.UnimplementedDevSinkServiceServer
	notifyv1.UnimplementedDirectServiceServer
	notifyv1.UnimplementedSubscriptionServiceServer

	svc *app.Service
	log *zap.Logger
}

// Register serves the API on srv.
func Register(srv *grpc.Server, svc *app.Service, log *zap.Logger) {
	a := &API{svc: svc, log: log}
	notifyv1.RegisterCatalogServiceServer(srv, a)
	notifyv1.RegisterPreferenceServiceServer(srv, a)
	notifyv1.RegisterPushTokenServiceServer(srv, a)
	notifyv1.RegisterWebhookEndpointServiceServer(srv, a)
	notifyv1.RegisterTemplateServiceServer(srv, a)
	notifyv1.RegisterDeliveryServiceServer(srv, a)
	notifyv1.RegisterDeadLetterServiceServer(srv, a)
	notifyv1.RegisterDevSinkServiceServer(srv, a)
	notifyv1.RegisterDirectServiceServer(srv, a)
	notifyv1.RegisterSubscriptionServiceServer(srv, a)
}

var kinds = []struct {
	err  error
	code codes.Code
}{
	{app.ErrNotFound, codes.NotFound},
	{app.ErrInvalid, codes.InvalidArgument},
	{app.ErrConflict, codes.AlreadyExists},
	{app.ErrPrecondition, codes.FailedPrecondition},
}

// toStatus maps a use-case error to a status: a caller's mistake keeps a
// message safe to show; anything else is logged and answered Internal.
func (a *API) toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, k := range kinds {
		if !errors.Is(err, k.err) {
			continue
		}
		msg := k.err.Error()
		if ae, ok := errors.AsType[*app.Error](err); ok {
			msg = ae.Msg
			if ae.Field != "" {
				st := status.New(k.code, msg)
				if d, derr := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: ae.Field, Description: msg}}}); derr == nil {
					return d.Err()
				}
			}
		}
		return status.Error(k.code, msg)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "request took too long")
	}
	logging.For(ctx, a.log).Error("internal error", zap.Error(err))
	return status.Error(codes.Internal, "internal error")
}

// caller is the account id of the caller.
func caller(ctx context.Context) (string, error) {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok || p.Subject == "" {
		return "", status.Error(codes.Unauthenticated, "no caller")
	}
	return p.Subject, nil
}

var channelToProto = map[app.Channel]notifyv1.Channel{
	app.Push: notifyv1.Channel_CHANNEL_PUSH, app.SMS: notifyv1.Channel_CHANNEL_SMS,
	app.Email: notifyv1.Channel_CHANNEL_EMAIL, app.Webhook: notifyv1.Channel_CHANNEL_WEBHOOK,
}

func toChannel(c notifyv1.Channel) app.Channel {
	for k, v := range channelToProto {
		if v == c {
			return k
		}
	}
	return ""
}

func toChannels(cs []notifyv1.Channel) []app.Channel {
	out := make([]app.Channel, 0, len(cs))
	for _, c := range cs {
		out = append(out, toChannel(c))
	}
	return out
}

func fromChannels(cs []app.Channel) []notifyv1.Channel {
	out := make([]notifyv1.Channel, 0, len(cs))
	for _, c := range cs {
		out = append(out, channelToProto[c])
	}
	return out
}

func page(size int32, token string) app.Page { return app.Page{Size: int(size), Token: token} }
