package grpcapi

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/services/notify/internal/app"
)

var filterOps = map[app.FilterOp]notifyv1.FilterOperator{
	app.FilterExact: notifyv1.FilterOperator_FILTER_OPERATOR_EXACT, app.FilterPrefix: notifyv1.FilterOperator_FILTER_OPERATOR_PREFIX,
	app.FilterSuffix: notifyv1.FilterOperator_FILTER_OPERATOR_SUFFIX,
}

var subscriptionStatuses = map[app.SubscriptionStatus]notifyv1.SubscriptionStatus{
	app.SubscriptionActive: notifyv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, app.SubscriptionPaused: notifyv1.SubscriptionStatus_SUBSCRIPTION_STATUS_PAUSED,
	app.SubscriptionDisabled: notifyv1.SubscriptionStatus_SUBSCRIPTION_STATUS_DISABLED,
}

// toSubscription takes what the operator sets; output-only fields are
// ignored.
func toSubscription(p *notifyv1.Subscription) *app.Subscription {
	s := &app.Subscription{Name: p.GetName(), URL: p.GetUrl(), Topics: p.GetEventTypes(), Enabled: p.GetEnabled()}
	for _, f := range p.GetFilters() {
		var op app.FilterOp
		for k, v := range filterOps {
			if v == f.GetOperator() {
				op = k
			}
		}
		s.Filters = append(s.Filters, app.Filter{Attribute: f.GetAttribute(), Op: op, Value: f.GetValue()})
	}
	a := p.GetAuth()
	switch {
	case a.GetBasic() != nil:
		s.Auth = &app.WebhookAuth{Basic: &app.BasicAuth{Username: a.GetBasic().GetUsername(), Password: a.GetBasic().GetPassword()}}
	case a.GetBearer() != nil:
		s.Auth = &app.WebhookAuth{Bearer: &app.BearerAuth{Token: a.GetBearer().GetToken()}}
	case a.GetOauth2() != nil:
		o := a.GetOauth2()
		s.Auth = &app.WebhookAuth{OAuth2: &app.OAuth2Auth{TokenURL: o.GetTokenUrl(), ClientID: o.GetClientId(), ClientSecret: o.GetClientSecret(),
			Scopes: o.GetScopes()}}
	}
	return s
}

// fromSubscription shows a subscription without its secrets: neither the
// signing secret nor the auth's password, token or client secret.
func fromSubscription(s *app.Subscription) *notifyv1.Subscription {
	p := &notifyv1.Subscription{Name: s.Name, Url: s.URL, EventTypes: s.Topics, Enabled: s.Enabled,
		Status: subscriptionStatuses[s.Status()], StatusReason: s.DisabledReason, CreateTime: tsOrNil(s.CreateTime), UpdateTime: tsOrNil(s.UpdateTime)}
	for _, f := range s.Filters {
		p.Filters = append(p.Filters, &notifyv1.AttributeFilter{Attribute: f.Attribute, Operator: filterOps[f.Op], Value: f.Value})
	}
	if a := s.Auth; a != nil {
		switch {
		case a.Basic != nil:
			p.Auth = &notifyv1.SubscriptionAuth{Method: &notifyv1.SubscriptionAuth_Basic{Basic: &notifyv1.BasicAuth{Username: a.Basic.Username}}}
		case a.Bearer != nil:
			p.Auth = &notifyv1.SubscriptionAuth{Method: &notifyv1.SubscriptionAuth_Bearer{Bearer: &notifyv1.BearerAuth{}}}
		case a.OAuth2 != nil:
			p.Auth = &notifyv1.SubscriptionAuth{Method: &notifyv1.SubscriptionAuth_Oauth2{Oauth2: &notifyv1.OAuth2ClientCredentials{
				TokenUrl: a.OAuth2.TokenURL, ClientId: a.OAuth2.ClientID, Scopes: a.OAuth2.Scopes}}}
		}
	}
	return p
}

// PutSubscription implements SubscriptionService.
func (a *API) PutSubscription(ctx context.Context, req *notifyv1.PutSubscriptionRequest) (*notifyv1.PutSubscriptionResponse, error) {
	s, created, changed, err := a.svc.PutSubscription(ctx, toSubscription(req.GetSubscription()), req.GetValidateOnly())
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	resp := &notifyv1.PutSubscriptionResponse{Subscription: fromSubscription(s), Created: created, Changed: changed}
	if created {
		resp.Secret = s.Secret // shown this once
	}
	return resp, nil
}

// ListSubscriptions implements SubscriptionService.
func (a *API) ListSubscriptions(ctx context.Context, req *notifyv1.ListSubscriptionsRequest) (*notifyv1.ListSubscriptionsResponse, error) {
	subs, next, err := a.svc.ListSubscriptions(ctx, page(req.GetPageSize(), req.GetPageToken()))
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	resp := &notifyv1.ListSubscriptionsResponse{NextPageToken: next}
	for _, s := range subs {
		resp.Items = append(resp.Items, fromSubscription(s))
	}
	return resp, nil
}

// GetSubscription implements SubscriptionService.
func (a *API) GetSubscription(ctx context.Context, req *notifyv1.GetSubscriptionRequest) (*notifyv1.GetSubscriptionResponse, error) {
	s, err := a.svc.GetSubscription(ctx, req.GetSubscriptionName())
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.GetSubscriptionResponse{Subscription: fromSubscription(s)}, nil
}

// DeleteSubscription implements SubscriptionService.
func (a *API) DeleteSubscription(ctx context.Context, req *notifyv1.DeleteSubscriptionRequest) (*notifyv1.DeleteSubscriptionResponse, error) {
	if err := a.svc.DeleteSubscription(ctx, req.GetSubscriptionName()); err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.DeleteSubscriptionResponse{}, nil
}

// RotateSubscriptionSecret implements SubscriptionService.
func (a *API) RotateSubscriptionSecret(ctx context.Context, req *notifyv1.RotateSubscriptionSecretRequest) (*notifyv1.RotateSubscriptionSecretResponse, error) {
	secret, exp, err := a.svc.RotateSubscriptionSecret(ctx, req.GetSubscriptionName(), req.GetGracePeriod().AsDuration())
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &notifyv1.RotateSubscriptionSecretResponse{Secret: secret, OldSecretExpireTime: timestamppb.New(exp)}, nil
}
