package envconfig

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/libs/audit"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
)

// Kind is one section of the document and the service calls behind it.
type Kind struct {
	// Kind names the item in changes (`DeviceModel`), Key the document's
	// section (`device_models`).
	Kind, Key string
	// New returns an empty item; Name its key.
	New  func() proto.Message
	Name func(proto.Message) string
	// Normalize rewrites a raw item before it is decoded (optional).
	Normalize func(map[string]any)
	// Clean clears output-only fields and masks secrets before an item is
	// shown (optional).
	Clean func(proto.Message)
	// The service's calls. Get answers NotFound for a missing item.
	Get    func(ctx context.Context, name string) (proto.Message, error)
	Put    func(ctx context.Context, item proto.Message, validateOnly bool) (stored proto.Message, created, changed bool, err error)
	List   func(ctx context.Context) ([]proto.Message, error)
	Delete func(ctx context.Context, name string) error
}

// pageSize is the page the kinds list with (the services' largest).
const pageSize = 500

// listAll pages through a list RPC.
func listAll[T proto.Message](ctx context.Context, page func(ctx context.Context, token string) ([]T, string, error)) ([]proto.Message, error) {
	var out []proto.Message
	token := ""
	for {
		items, next, err := page(ctx, token)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			out = append(out, it)
		}
		if next == "" {
			return out, nil
		}
		token = next
	}
}

// DeviceModels is the `device_models` section: the data service's device
// models, with their metrics, commands and default alert rules.
func DeviceModels(conn grpc.ClientConnInterface) Kind {
	c := datav1.NewDeviceModelServiceClient(conn)
	return Kind{
		Kind: "DeviceModel", Key: "device_models",
		New:  func() proto.Message { return &datav1.DeviceModel{} },
		Name: func(m proto.Message) string { return m.(*datav1.DeviceModel).GetId() },
		Clean: func(m proto.Message) {
			dm := m.(*datav1.DeviceModel)
			dm.CreateTime, dm.UpdateTime = nil, nil
		},
		Get: func(ctx context.Context, name string) (proto.Message, error) {
			r, err := c.GetDeviceModel(ctx, &datav1.GetDeviceModelRequest{ModelId: name})
			return r.GetModel(), err
		},
		Put: func(ctx context.Context, item proto.Message, validateOnly bool) (proto.Message, bool, bool, error) {
			r, err := c.PutDeviceModel(ctx, &datav1.PutDeviceModelRequest{Model: item.(*datav1.DeviceModel), ValidateOnly: validateOnly})
			return r.GetModel(), r.GetCreated(), r.GetChanged(), err
		},
		List: func(ctx context.Context) ([]proto.Message, error) {
			return listAll(ctx, func(ctx context.Context, token string) ([]*datav1.DeviceModel, string, error) {
				r, err := c.ListDeviceModels(ctx, &datav1.ListDeviceModelsRequest{PageSize: pageSize, PageToken: token})
				return r.GetItems(), r.GetNextPageToken(), err
			})
		},
		Delete: func(ctx context.Context, name string) error {
			_, err := c.DeleteDeviceModel(ctx, &datav1.DeleteDeviceModelRequest{ModelId: name})
			return err
		},
	}
}

// Applications is the `applications` section: the notify service's
// catalog, each item in the notifications-backend registration format
// (channels may be written `push`, `sms`, `email`, `webhook`).
func Applications(conn grpc.ClientConnInterface) Kind {
	c := notifyv1.NewCatalogServiceClient(conn)
	return Kind{
		Kind: "Application", Key: "applications",
		New:  func() proto.Message { return &notifyv1.Application{} },
		Name: func(m proto.Message) string { return m.(*notifyv1.Application).GetName() },
		Normalize: func(raw map[string]any) {
			types, _ := raw["event_types"].([]any)
			for _, t := range types {
				et, _ := t.(map[string]any)
				chans, _ := et["default_channels"].([]any)
				for i, ch := range chans {
					if s, ok := ch.(string); ok && !strings.HasPrefix(s, "CHANNEL_") {
						chans[i] = "CHANNEL_" + strings.ToUpper(s)
					}
				}
			}
		},
		Clean: func(m proto.Message) {
			a := m.(*notifyv1.Application)
			a.CreateTime, a.UpdateTime = nil, nil
		},
		Get: func(ctx context.Context, name string) (proto.Message, error) {
			r, err := c.GetApplication(ctx, &notifyv1.GetApplicationRequest{ApplicationName: name})
			return r.GetApplication(), err
		},
		Put: func(ctx context.Context, item proto.Message, validateOnly bool) (proto.Message, bool, bool, error) {
			r, err := c.PutApplication(ctx, &notifyv1.PutApplicationRequest{Application: item.(*notifyv1.Application), ValidateOnly: validateOnly})
			return r.GetApplication(), r.GetCreated(), r.GetChanged(), err
		},
		List: func(ctx context.Context) ([]proto.Message, error) {
			return listAll(ctx, func(ctx context.Context, token string) ([]*notifyv1.Application, string, error) {
				r, err := c.ListApplications(ctx, &notifyv1.ListApplicationsRequest{PageSize: pageSize, PageToken: token})
				return r.GetItems(), r.GetNextPageToken(), err
			})
		},
		Delete: func(ctx context.Context, name string) error {
			_, err := c.DeleteApplication(ctx, &notifyv1.DeleteApplicationRequest{ApplicationName: name})
			return err
		},
	}
}

// Subscriptions is the `subscriptions` section: the notify service's event
// subscriptions. Their signing secrets are the service's to make (an
// operator reads one with :rotate-secret); auth secrets written in the
// document are sent, never shown, and an empty one keeps the stored value.
func Subscriptions(conn grpc.ClientConnInterface) Kind {
	c := notifyv1.NewSubscriptionServiceClient(conn)
	return Kind{
		Kind: "Subscription", Key: "subscriptions",
		New:  func() proto.Message { return &notifyv1.Subscription{} },
		Name: func(m proto.Message) string { return m.(*notifyv1.Subscription).GetName() },
		Clean: func(m proto.Message) {
			s := m.(*notifyv1.Subscription)
			s.Status, s.StatusReason, s.CreateTime, s.UpdateTime = notifyv1.SubscriptionStatus_SUBSCRIPTION_STATUS_UNSPECIFIED, "", nil, nil
			audit.Redact(s)
		},
		Get: func(ctx context.Context, name string) (proto.Message, error) {
			r, err := c.GetSubscription(ctx, &notifyv1.GetSubscriptionRequest{SubscriptionName: name})
			return r.GetSubscription(), err
		},
		Put: func(ctx context.Context, item proto.Message, validateOnly bool) (proto.Message, bool, bool, error) {
			r, err := c.PutSubscription(ctx, &notifyv1.PutSubscriptionRequest{Subscription: item.(*notifyv1.Subscription), ValidateOnly: validateOnly})
			return r.GetSubscription(), r.GetCreated(), r.GetChanged(), err
		},
		List: func(ctx context.Context) ([]proto.Message, error) {
			return listAll(ctx, func(ctx context.Context, token string) ([]*notifyv1.Subscription, string, error) {
				r, err := c.ListSubscriptions(ctx, &notifyv1.ListSubscriptionsRequest{PageSize: pageSize, PageToken: token})
				return r.GetItems(), r.GetNextPageToken(), err
			})
		},
		Delete: func(ctx context.Context, name string) error {
			_, err := c.DeleteSubscription(ctx, &notifyv1.DeleteSubscriptionRequest{SubscriptionName: name})
			return err
		},
	}
}
