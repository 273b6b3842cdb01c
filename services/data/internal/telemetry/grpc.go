package telemetry

import (
	"context"
	"errors"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/logging"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
)

// telemetryServer serves datav1.TelemetryService.
type telemetryServer struct {
	datav1.UnimplementedTelemetryServiceServer
	s *Service
}

// QueryTelemetry implements datav1.TelemetryServiceServer.
func (g *telemetryServer) QueryTelemetry(ctx context.Context, req *datav1.QueryTelemetryRequest) (*datav1.QueryTelemetryResponse, error) {
	resp, err := g.s.queryTelemetry(ctx, req)
	return resp, g.s.toStatus(ctx, err)
}

// AggregateTelemetry implements datav1.TelemetryServiceServer.
func (g *telemetryServer) AggregateTelemetry(ctx context.Context, req *datav1.AggregateTelemetryRequest) (*datav1.AggregateTelemetryResponse, error) {
	resp, err := g.s.aggregateTelemetry(ctx, req)
	return resp, g.s.toStatus(ctx, err)
}

// GetLatestTelemetry implements datav1.TelemetryServiceServer.
func (g *telemetryServer) GetLatestTelemetry(ctx context.Context, req *datav1.GetLatestTelemetryRequest) (*datav1.GetLatestTelemetryResponse, error) {
	resp, err := g.s.latestTelemetry(ctx, req)
	return resp, g.s.toStatus(ctx, err)
}

// alertServer serves datav1.AlertRuleService.
type alertServer struct {
	datav1.UnimplementedAlertRuleServiceServer
	s *Service
}

// CreateAlertRule implements datav1.AlertRuleServiceServer.
func (g *alertServer) CreateAlertRule(ctx context.Context, req *datav1.CreateAlertRuleRequest) (*datav1.CreateAlertRuleResponse, error) {
	resp, err := g.s.createRule(ctx, req)
	return resp, g.s.toStatus(ctx, err)
}

// ListAlertRules implements datav1.AlertRuleServiceServer.
func (g *alertServer) ListAlertRules(ctx context.Context, req *datav1.ListAlertRulesRequest) (*datav1.ListAlertRulesResponse, error) {
	resp, err := g.s.listRules(ctx, req)
	return resp, g.s.toStatus(ctx, err)
}

// GetAlertRule implements datav1.AlertRuleServiceServer.
func (g *alertServer) GetAlertRule(ctx context.Context, req *datav1.GetAlertRuleRequest) (*datav1.GetAlertRuleResponse, error) {
	resp, err := g.s.getRule(ctx, req)
	return resp, g.s.toStatus(ctx, err)
}

// UpdateAlertRule implements datav1.AlertRuleServiceServer.
func (g *alertServer) UpdateAlertRule(ctx context.Context, req *datav1.UpdateAlertRuleRequest) (*datav1.UpdateAlertRuleResponse, error) {
	resp, err := g.s.updateRule(ctx, req)
	return resp, g.s.toStatus(ctx, err)
}

// DeleteAlertRule implements datav1.AlertRuleServiceServer.
func (g *alertServer) DeleteAlertRule(ctx context.Context, req *datav1.DeleteAlertRuleRequest) (*datav1.DeleteAlertRuleResponse, error) {
	resp, err := g.s.deleteRule(ctx, req)
	return resp, g.s.toStatus(ctx, err)
}

// ListAlerts implements datav1.AlertRuleServiceServer.
func (g *alertServer) ListAlerts(ctx context.Context, req *datav1.ListAlertsRequest) (*datav1.ListAlertsResponse, error) {
	resp, err := g.s.listAlerts(ctx, req)
	return resp, g.s.toStatus(ctx, err)
}

// AppendTelemetryStatus is AppendTelemetry with its error converted to a
// gRPC status, for a DataInternalService that delegates straight to it.
func (s *Service) AppendTelemetryStatus(ctx context.Context, req *datav1.AppendTelemetryRequest) (*datav1.AppendTelemetryResponse, error) {
	resp, err := s.AppendTelemetry(ctx, req)
	return resp, s.toStatus(ctx, err)
}

// toStatus maps a use-case error to a gRPC status. A caller's mistake gets
// its own code and the error's client-safe message (with the offending
// field as a BadRequest detail); anything else is logged and answered
// Internal without details.
func (s *Service) toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var ae *app.Error
	msg := ""
	if errors.As(err, &ae) {
		msg = ae.Msg
	}
	var code codes.Code
	switch {
	case errors.Is(err, app.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, app.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, app.ErrForbidden):
		code = codes.PermissionDenied
	case errors.Is(err, app.ErrConflict):
		code = codes.AlreadyExists
	case errors.Is(err, app.ErrPrecondition):
		code = codes.FailedPrecondition
	case errors.Is(err, auth.ErrUnauthenticated):
		return auth.StatusError(err)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	default:
		logging.For(ctx, s.log).Error("telemetry call failed", zap.Error(err))
		return status.Error(codes.Internal, "internal error")
	}
	if msg == "" {
		msg = code.String()
	}
	st := status.New(code, msg)
	if ae != nil && ae.Field != "" {
		if d, derr := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: ae.Field, Description: msg}}}); derr == nil {
			st = d
		}
	}
	return st.Err()
}
