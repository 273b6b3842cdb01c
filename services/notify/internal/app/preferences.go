package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Route returns the channels a notification goes to under p: the most
// specific matching rule (event type over application over any; fewer
// levels over more), else the event type's defaults; minus the disabled
// channels; nothing but critical during quiet hours (loc is the account's
// time zone when the quiet hours name none).
func Route(p *Preferences, et EventType, application, level string, now time.Time, loc *time.Location) (chans []Channel, quiet bool) {
	best, bestScore := -1, -1
	for i, r := range p.Rules {
		if (r.Application != "" && r.Application != application) || (r.EventType != "" && r.EventType != et.ID) {
			continue
		}
		if len(r.Levels) > 0 && !slices.Contains(r.Levels, level) {
			continue
		}
		score := 0
		if r.Application != "" {
			score += 100
		}
		if r.EventType != "" {
			score += 200
		}
		if len(r.Levels) > 0 {
			score += 10 - len(r.Levels)
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	chans = et.DefaultChannels
	if best >= 0 {
		chans = p.Rules[best].Channels
	}
	out := make([]Channel, 0, len(chans))
	for _, c := range chans {
		if !slices.Contains(p.DisabledChannels, c) && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if level != LevelCritical && InQuietHours(p.QuietHours, now, loc) {
		return nil, len(out) > 0
	}
	return out, false
}

// InQuietHours reports whether now falls in q (in q's time zone, else loc).
func InQuietHours(q QuietHours, now time.Time, loc *time.Location) bool {
	if !q.Enabled {
		return false
	}
	if q.Timezone != "" {
		if l, err := time.LoadLocation(q.Timezone); err == nil {
			loc = l
		}
	}
	if loc == nil {
		loc = time.UTC
	}
	start, err1 := time.Parse("15:04", q.Start)
	end, err2 := time.Parse("15:04", q.End)
	if err1 != nil || err2 != nil {
		return false
	}
	t := now.In(loc)
	m := t.Hour()*60 + t.Minute()
	s, e := start.Hour()*60+start.Minute(), end.Hour()*60+end.Minute()
	if s <= e {
		return m >= s && m < e
	}
	return m >= s || m < e // crosses midnight
}

// GetPreferences returns the account's preferences (empty when never set).
func (s *Service) GetPreferences(ctx context.Context, accountID string) (*Preferences, error) {
	p, err := s.store.GetPreferences(ctx, accountID)
	if errors.Is(err, ErrNotFound) {
		return &Preferences{AccountID: accountID}, nil
	}
	return p, err
}

// UpdatePreferences replaces the account's preferences.
func (s *Service) UpdatePreferences(ctx context.Context, p *Preferences) (*Preferences, error) {
	for i, r := range p.Rules {
		if r.EventType != "" && r.Application == "" {
			return nil, invalid(fmt.Sprintf("preferences.rules[%d].event_type", i), "event_type needs application")
		}
	}
	if q := p.QuietHours; q.Timezone != "" {
		if _, err := time.LoadLocation(q.Timezone); err != nil {
			return nil, invalid("preferences.quiet_hours.timezone", fmt.Sprintf("unknown time zone %q", q.Timezone))
		}
	}
	p.UpdateTime = s.now()
	defer s.invalidate()
	if err := s.store.PutPreferences(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// ListEventTypes pages through every registered application's event types.
func (s *Service) ListEventTypes(ctx context.Context) ([]*Application, error) {
	var all []*Application
	p := Page{Size: 500}
	for {
		apps, next, err := s.store.ListApplications(ctx, p)
		if err != nil {
			return nil, err
		}
		all = append(all, apps...)
		if next == "" {
			return all, nil
		}
		p.Token = next
	}
}

// RegisterPushToken adds or refreshes a token; it belongs to the account
// that registered it last.
func (s *Service) RegisterPushToken(ctx context.Context, t *PushToken) (*PushToken, error) {
	t.ID = uuid.NewString()
	t.CreateTime = s.now()
	t.LastSeen = t.CreateTime
	defer s.invalidate()
	if err := s.store.PutPushToken(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// ListPushTokens pages through an account's tokens.
func (s *Service) ListPushTokens(ctx context.Context, accountID string, p Page) ([]*PushToken, string, error) {
	return s.store.ListPushTokens(ctx, accountID, p)
}

// DeletePushToken removes one of the account's tokens.
func (s *Service) DeletePushToken(ctx context.Context, accountID, id string) error {
	defer s.invalidate()
	return s.store.DeletePushToken(ctx, accountID, id)
}

// newSecret returns a Standard Webhooks signing secret.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// checkURL refuses URLs the SSRF guard would refuse at dial time anyway,
// so the user learns at once; field names the request field.
func (s *Service) checkURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return invalid(field, field+" must be an absolute http(s) URL")
	}
	if s.cfg.CheckHost != nil {
		if err := s.cfg.CheckHost(u.Hostname()); err != nil {
			return invalid(field, err.Error())
		}
	}
	return nil
}

// CreateWebhook adds an endpoint and returns it with its secret.
func (s *Service) CreateWebhook(ctx context.Context, e *WebhookEndpoint) (*WebhookEndpoint, error) {
	if err := s.checkURL("url", e.URL); err != nil {
		return nil, err
	}
	e.ID = uuid.NewString()
	e.Enabled = true
	e.Secret = newSecret()
	e.CreateTime = s.now()
	e.UpdateTime = e.CreateTime
	defer s.invalidate()
	if err := s.store.CreateWebhook(ctx, e); err != nil {
		return nil, err
	}
	return e, nil
}

// GetWebhook returns one of the account's endpoints.
func (s *Service) GetWebhook(ctx context.Context, accountID, id string) (*WebhookEndpoint, error) {
	e, err := s.store.GetWebhook(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.AccountID != accountID {
		return nil, &Error{Kind: ErrNotFound, Msg: "webhook endpoint not found"}
	}
	return e, nil
}

// ListWebhooks pages through the account's endpoints.
func (s *Service) ListWebhooks(ctx context.Context, accountID string, p Page) ([]*WebhookEndpoint, string, error) {
	return s.store.ListWebhooks(ctx, accountID, p)
}

// UpdateWebhook replaces an endpoint's settings; the secret stays.
func (s *Service) UpdateWebhook(ctx context.Context, accountID string, upd *WebhookEndpoint) (*WebhookEndpoint, error) {
	e, err := s.GetWebhook(ctx, accountID, upd.ID)
	if err != nil {
		return nil, err
	}
	if err := s.checkURL("url", upd.URL); err != nil {
		return nil, err
	}
	e.URL, e.Description, e.EventTypes = upd.URL, upd.Description, upd.EventTypes
	if upd.Enabled && !e.Enabled {
		e.DisabledReason = ""
	}
	e.Enabled = upd.Enabled
	e.UpdateTime = s.now()
	defer s.invalidate()
	return e, s.store.UpdateWebhook(ctx, e)
}

// DeleteWebhook removes one of the account's endpoints.
func (s *Service) DeleteWebhook(ctx context.Context, accountID, id string) error {
	defer s.invalidate()
	return s.store.DeleteWebhook(ctx, accountID, id)
}

// RotateWebhookSecret issues a new secret; the old one keeps signing for
// grace (default 24 h).
func (s *Service) RotateWebhookSecret(ctx context.Context, accountID, id string, grace time.Duration) (secret string, oldExpire time.Time, err error) {
	e, err := s.GetWebhook(ctx, accountID, id)
	if err != nil {
		return "", time.Time{}, err
	}
	e.rotate(s.now(), grace)
	e.UpdateTime = s.now()
	defer s.invalidate()
	if err := s.store.UpdateWebhook(ctx, e); err != nil {
		return "", time.Time{}, err
	}
	return e.Secret, e.OldExpire, nil
}
