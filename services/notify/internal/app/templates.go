package app

import (
	"context"
	"errors"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
)

// Rendered is a message's content for one channel.
type Rendered struct {
	Subject, Body, HTML string
}

// templateData is what templates see: the payload's fields plus Message,
// Level, Application and EventType.
func templateData(n *Notification) map[string]any {
	d := make(map[string]any, len(n.Payload)+4)
	for k, v := range n.Payload {
		d[k] = v
	}
	d["Message"], d["Level"], d["Application"], d["EventType"] = n.Message, n.Level, n.Application, n.EventType
	return d
}

// PutTemplate validates (parses) and stores a template.
func (s *Service) PutTemplate(ctx context.Context, t *Template, validateOnly bool) (stored *Template, created, changed bool, err error) {
	for _, f := range []struct{ name, text string }{{"template.subject", t.Subject}, {"template.body", t.Body}} {
		if _, err := texttemplate.New("").Option("missingkey=zero").Parse(f.text); err != nil {
			return nil, false, false, invalid(f.name, "does not parse: "+err.Error())
		}
	}
	if _, err := htmltemplate.New("").Parse(t.HTMLBody); err != nil {
		return nil, false, false, invalid("template.html_body", "does not parse: "+err.Error())
	}
	old, err := s.store.FindTemplate(ctx, t.Application, t.EventType, t.Channel, t.Locale)
	switch {
	case errors.Is(err, ErrNotFound):
		created, changed = true, true
	case err != nil:
		return nil, false, false, err
	default:
		t.ID = old.ID
		changed = old.Subject != t.Subject || old.Body != t.Body || old.HTMLBody != t.HTMLBody
		t.UpdateTime = old.UpdateTime
	}
	if validateOnly || !changed {
		return t, created, changed, nil
	}
	t.UpdateTime = s.now()
	defer s.invalidate()
	if _, err := s.store.PutTemplate(ctx, t); err != nil {
		return nil, false, false, err
	}
	return t, created, changed, nil
}

// ListTemplates lists templates matching the non-zero fields of f.
func (s *Service) ListTemplates(ctx context.Context, f Template, p Page) ([]*Template, string, error) {
	return s.store.ListTemplates(ctx, f, p)
}

// DeleteTemplate removes a template.
func (s *Service) DeleteTemplate(ctx context.Context, id string) error {
	defer s.invalidate()
	return s.store.DeleteTemplate(ctx, id)
}

// findTemplate looks for the template of locale, then its language, then en.
func (s *Service) findTemplate(ctx context.Context, application, eventType string, ch Channel, locale string) (*Template, error) {
	tries := []string{locale}
	if i := strings.IndexByte(locale, '-'); i > 0 {
		tries = append(tries, locale[:i])
	}
	tries = append(tries, "en")
	for _, l := range tries {
		if l == "" {
			continue
		}
		t, err := s.templates.get(ctx, application+"\x00"+eventType+"\x00"+string(ch)+"\x00"+l, func(ctx context.Context) (*Template, error) {
			t, err := s.store.FindTemplate(ctx, application, eventType, ch, l)
			if errors.Is(err, ErrNotFound) {
				return nil, nil
			}
			return t, err
		})
		if err != nil {
			return nil, err
		}
		if t != nil {
			return t, nil
		}
	}
	return nil, ErrNotFound
}

// Render renders n for ch in locale (title is the default subject), falling back to the notification's
// message when no template matches or the template fails.
func (s *Service) Render(ctx context.Context, n *Notification, title string, ch Channel, locale string) (Rendered, error) {
	fallback := Rendered{Subject: title, Body: n.Message}
	t, err := s.findTemplate(ctx, n.Application, n.EventType, ch, locale)
	if errors.Is(err, ErrNotFound) {
		return fallback, nil
	}
	if err != nil {
		return Rendered{}, err
	}
	data := templateData(n)
	var r Rendered
	var b strings.Builder
	for _, f := range []struct {
		text string
		dst  *string
	}{{t.Subject, &r.Subject}, {t.Body, &r.Body}} {
		b.Reset()
		tt, err := texttemplate.New("").Option("missingkey=zero").Parse(f.text)
		if err == nil {
			err = tt.Execute(&b, data)
		}
		if err != nil {
			s.log.Warn("template failed, sending the message as is: " + err.Error())
			return fallback, nil
		}
		*f.dst = b.String()
	}
	if t.HTMLBody != "" {
		b.Reset()
		ht, err := htmltemplate.New("").Parse(t.HTMLBody)
		if err == nil {
			err = ht.Execute(&b, data)
		}
		if err == nil {
			r.HTML = b.String()
		}
	}
	if r.Subject == "" {
		r.Subject = fallback.Subject
	}
	return r, nil
}
