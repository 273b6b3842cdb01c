package grpcapi

import (
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
)

// Converters between app types and messages, one per type and direction.

// ts converts a time, leaving the zero time unset.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func toAccount(a app.Account) *datav1.Account {
	st := datav1.AccountStatus_ACCOUNT_STATUS_ACTIVE
	if a.Suspended {
		st = datav1.AccountStatus_ACCOUNT_STATUS_SUSPENDED
	}
	return &datav1.Account{Id: a.ID, Phone: a.Phone, Name: a.Name, Email: a.Email, Locale: a.Locale, Timezone: a.Timezone,
		Status: st, SuspendReason: a.SuspendReason, CreateTime: ts(a.CreatedAt), UpdateTime: ts(a.UpdatedAt)}
}

func toHome(h app.Home) *datav1.Home {
	return &datav1.Home{Id: h.ID, OwnerAccountId: h.OwnerID, Name: h.Name, Timezone: h.Timezone,
		DeviceCount: int32(h.DeviceCount), CreateTime: ts(h.CreatedAt), UpdateTime: ts(h.UpdatedAt)}
}

func toRoom(r app.Room) *datav1.Room {
	return &datav1.Room{Id: r.ID, HomeId: r.HomeID, Name: r.Name, DeviceCount: int32(r.DeviceCount),
		CreateTime: ts(r.CreatedAt), UpdateTime: ts(r.UpdatedAt)}
}

func toRole(r app.AccessRole) datav1.AccessRole {
	switch r {
	case app.AccessOwner:
		return datav1.AccessRole_ACCESS_ROLE_OWNER
	case app.AccessMember:
		return datav1.AccessRole_ACCESS_ROLE_MEMBER
	}
	return datav1.AccessRole_ACCESS_ROLE_UNSPECIFIED
}

func toDevice(v app.DeviceView) *datav1.Device {
	d := v.Device
	return &datav1.Device{Id: d.ID, Serial: d.Serial, Model: d.Model, FirmwareVersion: d.FirmwareVersion, Name: d.Name,
		OwnerAccountId: d.OwnerID, HomeId: d.HomeID, RoomId: d.RoomID, AccessRole: toRole(v.Role), Online: d.Online,
		LastSeenTime: ts(d.LastSeen), ClaimTime: ts(d.ClaimedAt), CreateTime: ts(d.CreatedAt), UpdateTime: ts(d.UpdatedAt)}
}

// maskPhone keeps the "+" and first digit and the last four digits:
// enough for a member to be recognised, too little to be harvested.
func maskPhone(p string) string {
	if len(p) <= 6 {
		return p
	}
	b := []byte(p)
	for i := 2; i < len(b)-4; i++ {
		b[i] = '*'
	}
	return string(b)
}

func toShare(s app.Share) *datav1.Share {
	return &datav1.Share{DeviceId: s.DeviceID, AccountId: s.AccountID, PhoneMasked: maskPhone(s.MemberPhone),
		Name: s.MemberName, Role: datav1.AccessRole_ACCESS_ROLE_MEMBER, CreateTime: ts(s.CreatedAt)}
}

func toDocument(d app.Document) (*datav1.StateDocument, error) {
	st, err := structpb.NewStruct(d.Values)
	if err != nil {
		return nil, err
	}
	times := make(map[string]*timestamppb.Timestamp, len(d.FieldTimes))
	for k, t := range d.FieldTimes {
		times[k] = timestamppb.New(t)
	}
	return &datav1.StateDocument{State: st, Version: d.Version, FieldUpdateTimes: times, UpdateTime: ts(d.UpdatedAt)}, nil
}

func toState(s app.DeviceState) (*datav1.DeviceState, error) {
	desired, err := toDocument(s.Desired)
	if err != nil {
		return nil, err
	}
	reported, err := toDocument(s.Reported)
	if err != nil {
		return nil, err
	}
	delta, err := structpb.NewStruct(s.Delta())
	if err != nil {
		return nil, err
	}
	return &datav1.DeviceState{DeviceId: s.DeviceID, Desired: desired, Reported: reported, Delta: delta}, nil
}

func toModel(m app.DeviceModel) *datav1.DeviceModel {
	metrics := make([]*datav1.MetricSpec, len(m.Metrics))
	for i, s := range m.Metrics {
		metrics[i] = &datav1.MetricSpec{Name: s.Name, Title: s.Title, Unit: s.Unit}
	}
	return &datav1.DeviceModel{Id: m.ID, Title: m.Title, Description: m.Description, Metrics: metrics,
		Commands: m.Commands, DefaultAlertRules: m.DefaultAlertRules, CreateTime: ts(m.CreatedAt), UpdateTime: ts(m.UpdatedAt)}
}

func fromModel(m *datav1.DeviceModel) app.DeviceModel {
	out := app.DeviceModel{ID: m.GetId(), Title: m.GetTitle(), Description: m.GetDescription(),
		Commands: m.GetCommands(), DefaultAlertRules: m.GetDefaultAlertRules()}
	for _, s := range m.GetMetrics() {
		out.Metrics = append(out.Metrics, app.MetricSpec{Name: s.GetName(), Title: s.GetTitle(), Unit: s.GetUnit()})
	}
	return out
}

func pageReq(size int32, token string) app.PageRequest {
	return app.PageRequest{Size: size, Token: token}
}
