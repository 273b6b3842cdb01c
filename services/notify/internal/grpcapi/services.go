package grpcapi

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/services/notify/internal/app"
)

func tsOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func toApplication(p *notifyv1.Application) *app.Application {
	a := &app.Application{Name: p.GetName(), Title: p.GetTitle()}
	for _, e := range p.GetEventTypes() {
		a.EventTypes = append(a.EventTypes, app.EventType{ID: e.GetId(), Title: e.GetTitle(), Description: e.GetDescription(),
			Levels: e.GetLevels(), DefaultChannels: toChannels(e.GetDefaultChannels())})
	}
	return a
}

func fromEventType(e app.EventType) *notifyv1.EventType {
	return &notifyv1.EventType{Id: e.ID, Title: e.Title, Description: e.Description, Levels: e.Levels, DefaultChannels: fromChannels(e.DefaultChannels)}
}

func fromApplication(a *app.Application) *notifyv1.Application {
	p := &notifyv1.Application{Name: a.Name, Title: a.Title, CreateTime: tsOrNil(a.CreateTime), UpdateTime: tsOrNil(a.UpdateTime)}
	for _, e := range a.EventTypes {
		p.EventTypes = append(p.EventTypes, fromEventType(e))
	}
	return p
}

// PutApplication implements CatalogService.
func (a *API) PutApplication(ctx context.Context, req *notifyv1.PutApplicationRequest) (*notifyv1.PutApplicationResponse, error) {
	stored, created, changed, err := a.svc.PutApplication(ctx, toApplication(req.GetApplication()), req.GetValidateOnly())
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.PutApplicationResponse{Application: fromApplication(stored), Created: created, Changed: changed}, nil
}

// ListApplications implements CatalogService.
func (a *API) ListApplications(ctx context.Context, req *notifyv1.ListApplicationsRequest) (*notifyv1.ListApplicationsResponse, error) {
	apps, next, err := a.svc.ListApplications(ctx, page(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	resp := &notifyv1.ListApplicationsResponse{NextPageToken: next}
	for _, x := range apps {
		resp.Items = append(resp.Items, fromApplication(x))
	}
	return resp, nil
}

// GetApplication implements CatalogService.
func (a *API) GetApplication(ctx context.Context, req *notifyv1.GetApplicationRequest) (*notifyv1.GetApplicationResponse, error) {
	x, err := a.svc.GetApplication(ctx, req.GetApplicationName())
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.GetApplicationResponse{Application: fromApplication(x)}, nil
}

// DeleteApplication implements CatalogService.
func (a *API) DeleteApplication(ctx context.Context, req *notifyv1.DeleteApplicationRequest) (*notifyv1.DeleteApplicationResponse, error) {
	if err := a.svc.DeleteApplication(ctx, req.GetApplicationName()); err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.DeleteApplicationResponse{}, nil
}

func fromPreferences(p *app.Preferences) *notifyv1.NotificationPreferences {
	out := &notifyv1.NotificationPreferences{AccountId: p.AccountID, DisabledChannels: fromChannels(p.DisabledChannels), UpdateTime: tsOrNil(p.UpdateTime),
		QuietHours: &notifyv1.QuietHours{Enabled: p.QuietHours.Enabled, Start: p.QuietHours.Start, End: p.QuietHours.End, Timezone: p.QuietHours.Timezone}}
	if out.QuietHours.Start == "" {
		out.QuietHours.Start, out.QuietHours.End = "22:00", "07:00"
	}
	for _, r := range p.Rules {
		out.Rules = append(out.Rules, &notifyv1.PreferenceRule{Application: r.Application, EventType: r.EventType, Levels: r.Levels, Channels: fromChannels(r.Channels)})
	}
	return out
}

// GetNotificationPreferences implements PreferenceService.
func (a *API) GetNotificationPreferences(ctx context.Context, _ *notifyv1.GetNotificationPreferencesRequest) (*notifyv1.GetNotificationPreferencesResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	p, err := a.svc.GetPreferences(ctx, id)
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.GetNotificationPreferencesResponse{Preferences: fromPreferences(p)}, nil
}

// UpdateNotificationPreferences implements PreferenceService.
func (a *API) UpdateNotificationPreferences(ctx context.Context, req *notifyv1.UpdateNotificationPreferencesRequest) (*notifyv1.UpdateNotificationPreferencesResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	in := req.GetPreferences()
	p := &app.Preferences{AccountID: id, DisabledChannels: toChannels(in.GetDisabledChannels())}
	if q := in.GetQuietHours(); q != nil {
		p.QuietHours = app.QuietHours{Enabled: q.GetEnabled(), Start: q.GetStart(), End: q.GetEnd(), Timezone: q.GetTimezone()}
	}
	for _, r := range in.GetRules() {
		p.Rules = append(p.Rules, app.Rule{Application: r.GetApplication(), EventType: r.GetEventType(), Levels: r.GetLevels(), Channels: toChannels(r.GetChannels())})
	}
	out, err := a.svc.UpdatePreferences(ctx, p)
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.UpdateNotificationPreferencesResponse{Preferences: fromPreferences(out)}, nil
}

// ListEventTypes implements PreferenceService (one page: the catalog is small).
func (a *API) ListEventTypes(ctx context.Context, _ *notifyv1.ListEventTypesRequest) (*notifyv1.ListEventTypesResponse, error) {
	apps, err := a.svc.ListEventTypes(ctx)
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	resp := &notifyv1.ListEventTypesResponse{}
	for _, x := range apps {
		for _, e := range x.EventTypes {
			resp.Items = append(resp.Items, &notifyv1.ApplicationEventType{Application: x.Name, ApplicationTitle: x.Title, EventType: fromEventType(e)})
		}
	}
	return resp, nil
}

var platforms = map[app.Platform]notifyv1.Platform{app.Android: notifyv1.Platform_PLATFORM_ANDROID, app.IOS: notifyv1.Platform_PLATFORM_IOS, app.Web: notifyv1.Platform_PLATFORM_WEB}

func fromPushToken(t *app.PushToken) *notifyv1.PushToken {
	return &notifyv1.PushToken{Id: t.ID, Platform: platforms[t.Platform], Token: app.MaskToken(t.Token), AppVersion: t.AppVersion,
		CreateTime: tsOrNil(t.CreateTime), LastSeenTime: tsOrNil(t.LastSeen)}
}

// RegisterPushToken implements PushTokenService.
func (a *API) RegisterPushToken(ctx context.Context, req *notifyv1.RegisterPushTokenRequest) (*notifyv1.RegisterPushTokenResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	var pl app.Platform
	for k, v := range platforms {
		if v == req.GetPlatform() {
			pl = k
		}
	}
	t, err := a.svc.RegisterPushToken(ctx, &app.PushToken{AccountID: id, Platform: pl, Token: req.GetToken(), AppVersion: req.GetAppVersion()})
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.RegisterPushTokenResponse{PushToken: fromPushToken(t)}, nil
}

// ListPushTokens implements PushTokenService.
func (a *API) ListPushTokens(ctx context.Context, req *notifyv1.ListPushTokensRequest) (*notifyv1.ListPushTokensResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	ts, next, err := a.svc.ListPushTokens(ctx, id, page(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	resp := &notifyv1.ListPushTokensResponse{NextPageToken: next}
	for _, t := range ts {
		resp.Items = append(resp.Items, fromPushToken(t))
	}
	return resp, nil
}

// DeletePushToken implements PushTokenService.
func (a *API) DeletePushToken(ctx context.Context, req *notifyv1.DeletePushTokenRequest) (*notifyv1.DeletePushTokenResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.svc.DeletePushToken(ctx, id, req.GetPushTokenId()); err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.DeletePushTokenResponse{}, nil
}

func fromWebhook(e *app.WebhookEndpoint) *notifyv1.WebhookEndpoint {
	return &notifyv1.WebhookEndpoint{Id: e.ID, Url: e.URL, Description: e.Description, EventTypes: e.EventTypes, Enabled: e.Enabled,
		DisabledReason: e.DisabledReason, CreateTime: tsOrNil(e.CreateTime), UpdateTime: tsOrNil(e.UpdateTime)}
}

// CreateWebhookEndpoint implements WebhookEndpointService.
func (a *API) CreateWebhookEndpoint(ctx context.Context, req *notifyv1.CreateWebhookEndpointRequest) (*notifyv1.CreateWebhookEndpointResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	e, err := a.svc.CreateWebhook(ctx, &app.WebhookEndpoint{AccountID: id, URL: req.GetUrl(), Description: req.GetDescription(), EventTypes: req.GetEventTypes()})
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.CreateWebhookEndpointResponse{Endpoint: fromWebhook(e), Secret: e.Secret}, nil
}

// ListWebhookEndpoints implements WebhookEndpointService.
func (a *API) ListWebhookEndpoints(ctx context.Context, req *notifyv1.ListWebhookEndpointsRequest) (*notifyv1.ListWebhookEndpointsResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	es, next, err := a.svc.ListWebhooks(ctx, id, page(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	resp := &notifyv1.ListWebhookEndpointsResponse{NextPageToken: next}
	for _, e := range es {
		resp.Items = append(resp.Items, fromWebhook(e))
	}
	return resp, nil
}

// GetWebhookEndpoint implements WebhookEndpointService.
func (a *API) GetWebhookEndpoint(ctx context.Context, req *notifyv1.GetWebhookEndpointRequest) (*notifyv1.GetWebhookEndpointResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	e, err := a.svc.GetWebhook(ctx, id, req.GetEndpointId())
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.GetWebhookEndpointResponse{Endpoint: fromWebhook(e)}, nil
}

// UpdateWebhookEndpoint implements WebhookEndpointService.
func (a *API) UpdateWebhookEndpoint(ctx context.Context, req *notifyv1.UpdateWebhookEndpointRequest) (*notifyv1.UpdateWebhookEndpointResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	e, err := a.svc.UpdateWebhook(ctx, id, &app.WebhookEndpoint{ID: req.GetEndpointId(), URL: req.GetUrl(), Description: req.GetDescription(),
		Enabled: req.GetEnabled(), EventTypes: req.GetEventTypes()})
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.UpdateWebhookEndpointResponse{Endpoint: fromWebhook(e)}, nil
}

// DeleteWebhookEndpoint implements WebhookEndpointService.
func (a *API) DeleteWebhookEndpoint(ctx context.Context, req *notifyv1.DeleteWebhookEndpointRequest) (*notifyv1.DeleteWebhookEndpointResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.svc.DeleteWebhook(ctx, id, req.GetEndpointId()); err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.DeleteWebhookEndpointResponse{}, nil
}

// RotateWebhookSecret implements WebhookEndpointService.
func (a *API) RotateWebhookSecret(ctx context.Context, req *notifyv1.RotateWebhookSecretRequest) (*notifyv1.RotateWebhookSecretResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	secret, exp, err := a.svc.RotateWebhookSecret(ctx, id, req.GetEndpointId(), req.GetGracePeriod().AsDuration())
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.RotateWebhookSecretResponse{Secret: secret, OldSecretExpireTime: timestamppb.New(exp)}, nil
}

func fromTemplate(t *app.Template) *notifyv1.Template {
	return &notifyv1.Template{Id: t.ID, Application: t.Application, EventType: t.EventType, Channel: channelToProto[t.Channel], Locale: t.Locale,
		Subject: t.Subject, Body: t.Body, HtmlBody: t.HTMLBody, UpdateTime: tsOrNil(t.UpdateTime)}
}

// PutTemplate implements TemplateService.
func (a *API) PutTemplate(ctx context.Context, req *notifyv1.PutTemplateRequest) (*notifyv1.PutTemplateResponse, error) {
	in := req.GetTemplate()
	t, created, changed, err := a.svc.PutTemplate(ctx, &app.Template{Application: in.GetApplication(), EventType: in.GetEventType(),
		Channel: toChannel(in.GetChannel()), Locale: in.GetLocale(), Subject: in.GetSubject(), Body: in.GetBody(), HTMLBody: in.GetHtmlBody()}, req.GetValidateOnly())
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.PutTemplateResponse{Template: fromTemplate(t), Created: created, Changed: changed}, nil
}

// ListTemplates implements TemplateService.
func (a *API) ListTemplates(ctx context.Context, req *notifyv1.ListTemplatesRequest) (*notifyv1.ListTemplatesResponse, error) {
	ts, next, err := a.svc.ListTemplates(ctx, app.Template{Application: req.GetApplication(), EventType: req.GetEventType(),
		Channel: toChannel(req.GetChannel()), Locale: req.GetLocale()}, page(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	resp := &notifyv1.ListTemplatesResponse{NextPageToken: next}
	for _, t := range ts {
		resp.Items = append(resp.Items, fromTemplate(t))
	}
	return resp, nil
}

// DeleteTemplate implements TemplateService.
func (a *API) DeleteTemplate(ctx context.Context, req *notifyv1.DeleteTemplateRequest) (*notifyv1.DeleteTemplateResponse, error) {
	if err := a.svc.DeleteTemplate(ctx, req.GetTemplateId()); err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.DeleteTemplateResponse{}, nil
}

var statuses = map[app.Status]notifyv1.DeliveryStatus{
	app.StatusSent: notifyv1.DeliveryStatus_DELIVERY_STATUS_SENT, app.StatusRetrying: notifyv1.DeliveryStatus_DELIVERY_STATUS_RETRYING,
	app.StatusFailed: notifyv1.DeliveryStatus_DELIVERY_STATUS_FAILED, app.StatusSkipped: notifyv1.DeliveryStatus_DELIVERY_STATUS_SKIPPED,
}

func fromAttempt(x *app.Attempt) *notifyv1.Delivery {
	return &notifyv1.Delivery{Id: x.ID, NotificationId: x.NotificationID, AccountId: x.AccountID, Subscription: x.Subscription,
		Application: x.Application, EventType: x.EventType,
		Level: x.Level, Channel: channelToProto[x.Channel], Recipient: x.Recipient, Attempt: int32(x.Attempt), Status: statuses[x.Status],
		ProviderStatus: int32(x.ProviderStatus), Detail: x.Detail, Latency: durationpb.New(x.Latency), NextAttemptTime: tsOrNil(x.NextAttempt),
		CreateTime: tsOrNil(x.Time)}
}

// ListDeliveries implements DeliveryService.
func (a *API) ListDeliveries(ctx context.Context, req *notifyv1.ListDeliveriesRequest) (*notifyv1.ListDeliveriesResponse, error) {
	var st app.Status
	for k, v := range statuses {
		if v == req.GetStatus() {
			st = k
		}
	}
	f := app.DeliveryFilter{AccountID: req.GetAccountId(), NotificationID: req.GetNotificationId(), Application: req.GetApplication(),
		EventType: req.GetEventType(), Subscription: req.GetSubscription(), Channel: toChannel(req.GetChannel()), Status: st, Start: timeOf(req.GetStartTime()), End: timeOf(req.GetEndTime())}
	xs, next, err := a.svc.ListAttempts(ctx, f, page(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	resp := &notifyv1.ListDeliveriesResponse{NextPageToken: next}
	for _, x := range xs {
		resp.Items = append(resp.Items, fromAttempt(x))
	}
	return resp, nil
}

// GetDelivery implements DeliveryService.
func (a *API) GetDelivery(ctx context.Context, req *notifyv1.GetDeliveryRequest) (*notifyv1.GetDeliveryResponse, error) {
	x, err := a.svc.GetAttempt(ctx, req.GetDeliveryId())
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.GetDeliveryResponse{Delivery: fromAttempt(x)}, nil
}

func fromDead(d *app.DeadLetter) *notifyv1.DeadLetter {
	return &notifyv1.DeadLetter{Id: d.ID, Topic: d.Topic, Key: d.Key, Value: d.Value, Headers: d.Headers, Reason: d.Reason,
		NotificationId: d.NotificationID, Attempts: int32(d.Attempts), ReplayCount: int32(d.ReplayCount),
		LastReplayTime: tsOrNil(d.LastReplay), CreateTime: tsOrNil(d.CreateTime)}
}

// ListDeadLetters implements DeadLetterService.
func (a *API) ListDeadLetters(ctx context.Context, req *notifyv1.ListDeadLettersRequest) (*notifyv1.ListDeadLettersResponse, error) {
	f := app.DeadLetterFilter{Topic: req.GetTopic(), Start: timeOf(req.GetStartTime()), End: timeOf(req.GetEndTime())}
	if req.Replayed != nil {
		r := req.GetReplayed()
		f.Replayed = &r
	}
	ds, next, err := a.svc.ListDeadLetters(ctx, f, page(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	resp := &notifyv1.ListDeadLettersResponse{NextPageToken: next}
	for _, d := range ds {
		resp.Items = append(resp.Items, fromDead(d))
	}
	return resp, nil
}

// GetDeadLetter implements DeadLetterService.
func (a *API) GetDeadLetter(ctx context.Context, req *notifyv1.GetDeadLetterRequest) (*notifyv1.GetDeadLetterResponse, error) {
	d, err := a.svc.GetDeadLetter(ctx, req.GetDeadLetterId())
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.GetDeadLetterResponse{DeadLetter: fromDead(d)}, nil
}

// ReplayDeadLetter implements DeadLetterService.
func (a *API) ReplayDeadLetter(ctx context.Context, req *notifyv1.ReplayDeadLetterRequest) (*notifyv1.ReplayDeadLetterResponse, error) {
	d, err := a.svc.ReplayDeadLetter(ctx, req.GetDeadLetterId())
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.ReplayDeadLetterResponse{DeadLetter: fromDead(d)}, nil
}

// DeleteDeadLetter implements DeadLetterService.
func (a *API) DeleteDeadLetter(ctx context.Context, req *notifyv1.DeleteDeadLetterRequest) (*notifyv1.DeleteDeadLetterResponse, error) {
	if err := a.svc.DeleteDeadLetter(ctx, req.GetDeadLetterId()); err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.DeleteDeadLetterResponse{}, nil
}

// ListSinkMessages implements DevSinkService.
func (a *API) ListSinkMessages(ctx context.Context, req *notifyv1.ListSinkMessagesRequest) (*notifyv1.ListSinkMessagesResponse, error) {
	ms, next, err := a.svc.ListSinkMessages(ctx, toChannel(req.GetChannel()), req.GetRecipient(), page(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	resp := &notifyv1.ListSinkMessagesResponse{NextPageToken: next}
	for _, m := range ms {
		resp.Items = append(resp.Items, &notifyv1.SinkMessage{Id: m.ID, Channel: channelToProto[m.Channel], Recipient: m.Recipient, Subject: m.Subject,
			Body: m.Body, HtmlBody: m.HTMLBody, NotificationId: m.NotificationID, ReceiveTime: tsOrNil(m.Time)})
	}
	return resp, nil
}

// ClearSinkMessages implements DevSinkService.
func (a *API) ClearSinkMessages(ctx context.Context, _ *notifyv1.ClearSinkMessagesRequest) (*notifyv1.ClearSinkMessagesResponse, error) {
	n, err := a.svc.ClearSinkMessages(ctx)
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.ClearSinkMessagesResponse{DeletedCount: int32(n)}, nil
}

// SendDirectMessage implements DirectService.
func (a *API) SendDirectMessage(ctx context.Context, req *notifyv1.SendDirectMessageRequest) (*notifyv1.SendDirectMessageResponse, error) {
	r := &app.DirectRequest{ID: req.GetId(), Channel: toChannel(req.GetChannel()), Phone: req.GetPhone(), Email: req.GetEmail(), AccountID: req.GetAccountId(),
		Subject: req.GetSubject(), Body: req.GetBody(), TemplateApplication: req.GetTemplateApplication(), TemplateEventType: req.GetTemplateEventType(),
		Payload: req.GetPayload().AsMap(), Locale: req.GetLocale()}
	res, err := a.svc.SendDirect(ctx, r)
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.SendDirectMessageResponse{DeliveryId: res.DeliveryID, Sent: res.Sent, Detail: res.Detail}, nil
}
