package grpcapi

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/comfortech/platform/libs/audit"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
	"github.com/comfortech/platform/services/device/internal/app"
)

// AuditMethods lists the operator actions of DeviceAdminService the audit
// log records, with the device as it was before each change.
func AuditMethods(a *app.App) audit.Methods {
	before := func(ctx context.Context, id string) (proto.Message, error) {
		c, err := a.Credential(ctx, id)
		if errors.Is(err, app.ErrNotFound) {
			return nil, audit.ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		return credentialState(c)
	}
	return audit.Methods{
		devicev1.DeviceAdminService_ProvisionDevice_FullMethodName: {
			Action: "device.provision", ResourceType: "device", ID: "response.device.device_id"},
		devicev1.DeviceAdminService_BatchProvisionDevices_FullMethodName: {
			Action: "device.provision", ResourceType: "device", ID: "response.items.device_id"},
		devicev1.DeviceAdminService_RotateDeviceSecret_FullMethodName: {
			Action: "device.rotate_secret", ResourceType: "device", ID: "device_id", Before: before},
		devicev1.DeviceAdminService_RevokeDeviceSecret_FullMethodName: {
			Action: "device.revoke_secret", ResourceType: "device", ID: "device_id", Reason: "reason", Before: before},
		devicev1.DeviceAdminService_DecommissionDevice_FullMethodName: {
			Action: "device.decommission", ResourceType: "device", ID: "device_id", Reason: "reason", Before: before},
		devicev1.DeviceAdminService_SendOperatorCommand_FullMethodName: {
			Action: "device.command", ResourceType: "device", ID: "device_id", After: "command"},
	}
}

// credentialState is what the audit log shows of a device's credentials:
// never the hashes, only whether a secret is set, rotating or revoked.
func credentialState(c app.Credential) (proto.Message, error) {
	m := map[string]any{
		"device_id": c.DeviceID, "serial": c.Serial, "model": c.Model,
		"secret_set": c.SecretHash != "", "revoked": !c.RevokedAt.IsZero(),
	}
	if !c.OldSecretExpiresAt.IsZero() {
		m["old_secret_expire_time"] = c.OldSecretExpiresAt.UTC().Format(time.RFC3339)
	}
	if !c.RevokedAt.IsZero() {
		m["revoke_time"] = c.RevokedAt.UTC().Format(time.RFC3339)
	}
	return structpb.NewStruct(m)
}
