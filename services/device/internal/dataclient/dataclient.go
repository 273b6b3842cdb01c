// Package dataclient is app.Registry over the data service's internal
// API (comfortech.data.v1.DataInternalService), called with the device
// service's own service-account token.
package dataclient

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/device/internal/app"
)

// Registry is app.Registry over a connection to the data service.
type Registry struct {
	c datav1.DataInternalServiceClient
}

var _ app.Registry = (*Registry)(nil)

// New returns a Registry on conn, which must carry the service's
// credentials (rpc.WithPerRPCCredentials).
func New(conn grpc.ClientConnInterface) *Registry {
	return &Registry{c: datav1.NewDataInternalServiceClient(conn)}
}

// RegisterDevice implements app.Registry.
func (r *Registry) RegisterDevice(ctx context.Context, d app.NewDevice) error {
	_, err := r.c.RegisterDevice(ctx, &datav1.RegisterDeviceRequest{DeviceId: d.ID, Serial: d.Serial, Model: d.Model,
		FirmwareVersion: d.FirmwareVersion, ClaimCode: d.ClaimCode})
	return fromStatus("register device", err)
}

// UnregisterDevice implements app.Registry.
func (r *Registry) UnregisterDevice(ctx context.Context, deviceID string) error {
	_, err := r.c.UnregisterDevice(ctx, &datav1.UnregisterDeviceRequest{DeviceId: deviceID})
	if status.Code(err) == codes.NotFound {
		return nil // already gone: a retried decommission
	}
	return fromStatus("unregister device", err)
}

// fromStatus maps the data service's answers to the app's sentinels.
func fromStatus(what string, err error) error {
	if err == nil {
		return nil
	}
	var kind error
	switch status.Code(err) {
	case codes.AlreadyExists:
		kind = app.ErrConflict
	case codes.InvalidArgument, codes.FailedPrecondition:
		kind = app.ErrInvalid
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		kind = app.ErrUnavailable
	default:
		return fmt.Errorf("dataclient: %s: %w", what, err)
	}
	return fmt.Errorf("dataclient: %s: %w: %w", what, kind, err)
}

// Reports is the data service's API for what devices report, presence
// and state (DataInternalService), as the MQTT side of the service uses it. Its
// methods return the service's gRPC errors unchanged, so callers can tell
// a refusal from an outage with status.Code.
type Reports struct {
	c datav1.DataInternalServiceClient
}

// NewReports returns a Reports on conn, which must carry the service's
// credentials.
func NewReports(conn grpc.ClientConnInterface) *Reports {
	return &Reports{c: datav1.NewDataInternalServiceClient(conn)}
}

// ReportDeviceState merges a device's reported state into the data
// service's document.
func (t *Reports) ReportDeviceState(ctx context.Context, deviceID string, reported *structpb.Struct, at time.Time) error {
	_, err := t.c.ReportDeviceState(ctx, &datav1.ReportDeviceStateRequest{DeviceId: deviceID, Reported: reported,
		ReportTime: timestamppb.New(at)})
	return err
}

// RecordPresence stores a device's connection state and last-seen time.
func (t *Reports) RecordPresence(ctx context.Context, deviceID string, online bool, lastSeen time.Time) error {
	_, err := t.c.RecordPresence(ctx, &datav1.RecordPresenceRequest{DeviceId: deviceID, Online: online,
		LastSeenTime: timestamppb.New(lastSeen)})
	return err
}

// Access is app.Access over the data service's CheckDeviceAccess.
type Access struct {
	c datav1.DataInternalServiceClient
}

var _ app.Access = (*Access)(nil)

// NewAccess returns an Access on conn, which must carry the service's
// credentials.
func NewAccess(conn grpc.ClientConnInterface) *Access {
	return &Access{c: datav1.NewDataInternalServiceClient(conn)}
}

// DeviceAccess implements app.Access.
func (a *Access) DeviceAccess(ctx context.Context, deviceID, accountID string) (app.AccessRole, error) {
	r, err := a.c.CheckDeviceAccess(ctx, &datav1.CheckDeviceAccessRequest{DeviceId: deviceID, AccountId: accountID})
	if status.Code(err) == codes.NotFound {
		return app.AccessNone, nil
	}
	if err != nil {
		return app.AccessNone, fromStatus("check device access", err)
	}
	switch r.GetRole() {
	case datav1.AccessRole_ACCESS_ROLE_OWNER:
		return app.AccessOwner, nil
	case datav1.AccessRole_ACCESS_ROLE_MEMBER:
		return app.AccessMember, nil
	}
	return app.AccessNone, nil
}
