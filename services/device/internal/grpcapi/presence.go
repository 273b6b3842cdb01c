package grpcapi

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
	"github.com/comfortech/platform/services/device/internal/app"
)

// presenceServer implements devicev1.PresenceServiceServer for the owners
// and members of devices.
type presenceServer struct {
	devicev1.UnimplementedPresenceServiceServer
	base
	presence *app.PresenceHistory
}

// GetPresence implements devicev1.PresenceServiceServer.
func (s *presenceServer) GetPresence(ctx context.Context, req *devicev1.GetPresenceRequest) (*devicev1.GetPresenceResponse, error) {
	p, err := getPresence(ctx, s.base, s.presence, false, req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	return &devicev1.GetPresenceResponse{Presence: p}, nil
}

// ListPresenceEvents implements devicev1.PresenceServiceServer.
func (s *presenceServer) ListPresenceEvents(ctx context.Context, req *devicev1.ListPresenceEventsRequest) (*devicev1.ListPresenceEventsResponse, error) {
	items, next, err := listPresence(ctx, s.base, s.presence, false, req.GetDeviceId(), req.GetStartTime(), req.GetEndTime(),
		req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &devicev1.ListPresenceEventsResponse{Items: items, NextPageToken: next}, nil
}

// GetDevicePresence implements devicev1.DeviceAdminServiceServer.
func (s *adminServer) GetDevicePresence(ctx context.Context, req *devicev1.GetDevicePresenceRequest) (*devicev1.GetDevicePresenceResponse, error) {
	p, err := getPresence(ctx, s.base, s.presence, true, req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	return &devicev1.GetDevicePresenceResponse{Presence: p}, nil
}

// ListDevicePresenceEvents implements devicev1.DeviceAdminServiceServer.
func (s *adminServer) ListDevicePresenceEvents(ctx context.Context, req *devicev1.ListDevicePresenceEventsRequest) (*devicev1.ListDevicePresenceEventsResponse, error) {
	items, next, err := listPresence(ctx, s.base, s.presence, true, req.GetDeviceId(), req.GetStartTime(), req.GetEndTime(),
		req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &devicev1.ListDevicePresenceEventsResponse{Items: items, NextPageToken: next}, nil
}

func getPresence(ctx context.Context, b base, h *app.PresenceHistory, operator bool, deviceID string) (*devicev1.Presence, error) {
	who, err := caller(ctx, operator)
	if err != nil {
		return nil, err
	}
	p, err := h.Get(ctx, who, deviceID)
	if err != nil {
		return nil, b.toStatus(ctx, err)
	}
	out := &devicev1.Presence{DeviceId: p.DeviceID, Online: p.Online, Reason: toReason(p.Reason)}
	if !p.Since.IsZero() {
		out.SinceTime, out.LastSeenTime = timestamppb.New(p.Since), timestamppb.New(p.LastSeen)
	}
	return out, nil
}

func listPresence(ctx context.Context, b base, h *app.PresenceHistory, operator bool, deviceID string, start, end *timestamppb.Timestamp,
	pageSize int32, pageToken string) ([]*devicev1.PresenceEvent, string, error) {
	who, err := caller(ctx, operator)
	if err != nil {
		return nil, "", err
	}
	es, next, err := h.List(ctx, who, deviceID, optTime(start), optTime(end), int(pageSize), pageToken)
	if err != nil {
		return nil, "", b.toStatus(ctx, err)
	}
	items := make([]*devicev1.PresenceEvent, len(es))
	for i, e := range es {
		items[i] = &devicev1.PresenceEvent{Online: e.Online, Reason: toReason(e.Reason), Time: timestamppb.New(e.At)}
	}
	return items, next, nil
}

// optTime is t, or the zero time when unset.
func optTime(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func toReason(r app.PresenceReason) devicev1.PresenceReason {
	switch r {
	case app.ReasonConnected:
		return devicev1.PresenceReason_PRESENCE_REASON_CONNECTED
	case app.ReasonDisconnected:
		return devicev1.PresenceReason_PRESENCE_REASON_DISCONNECTED
	}
	return devicev1.PresenceReason_PRESENCE_REASON_UNSPECIFIED
}
