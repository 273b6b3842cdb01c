// Package grpcapi serves the data service's use cases over gRPC: the app
// services of the main gateway (accounts, homes, devices, sharing, device
// state), the admin gateway's FleetService, AccountAdminService and
// DeviceModelService, and the internal DataInternalService. Calls arrive authenticated and role-checked (the
// server's auth interceptor) and validated (protovalidate); this package
// takes the caller's account from the principal, converts messages, and
// maps errors to status codes in one place (toStatus).
package grpcapi

import (
	"context"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/comfortech/platform/libs/auth"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
)

// Register registers every service this package implements on s.
// telemetry stores DataInternalService.AppendTelemetry and gives
// FleetService.GetFleetDevice its telemetry part; nil answers those two
// methods Unimplemented. log may be nil.
func Register(s grpc.ServiceRegistrar, a *app.App, telemetry Telemetry, log *zap.Logger) {
	if log == nil {
		log = zap.NewNop()
	}
	b := base{app: a, log: log.Named("grpcapi")}
	datav1.RegisterAccountServiceServer(s, &accountServer{base: b})
	datav1.RegisterHomeServiceServer(s, &homeServer{base: b})
	datav1.RegisterDeviceServiceServer(s, &deviceServer{base: b})
	datav1.RegisterSharingServiceServer(s, &sharingServer{base: b})
	datav1.RegisterDeviceStateServiceServer(s, &stateServer{base: b})
	datav1.RegisterDeviceModelServiceServer(s, &modelServer{base: b})
	datav1.RegisterFleetServiceServer(s, &fleetServer{base: b, telemetry: telemetry})
	datav1.RegisterAccountAdminServiceServer(s, &accountAdminServer{base: b})
	datav1.RegisterDataInternalServiceServer(s, &internalServer{base: b, telemetry: telemetry})
}

// base is what every server shares.
type base struct {
	app *app.App
	log *zap.Logger
}

// caller returns the account id of the authenticated caller.
func caller(ctx context.Context) (string, error) {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok || p.Subject == "" {
		return "", status.Error(codes.Unauthenticated, "unauthenticated")
	}
	return p.Subject, nil
}
