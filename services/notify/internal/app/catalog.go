package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	appNameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	eventTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,127}$`)
)

// BuiltIn is the platform's own application, registered at start-up so
// the data service's alert notifications (application "comfortech") route.
func BuiltIn() *Application {
	all := []string{"info", "warning", "error", "critical"}
	return &Application{Name: "comfortech", Title: "Comfortech", EventTypes: []EventType{
		{ID: "alert.raised", Title: "Alert raised", Description: "A device reading crossed an alert rule.", Levels: all, DefaultChannels: []Channel{Push}},
		{ID: "alert.cleared", Title: "Alert cleared", Description: "A device reading is back to normal.", Levels: all, DefaultChannels: []Channel{Push}},
		{ID: "device.fault", Title: "Device fault", Levels: []string{"warning", "error", "critical"}, DefaultChannels: []Channel{Push}},
		{ID: "device.filter_change", Title: "Filter change needed", Levels: []string{"info", "warning"}, DefaultChannels: []Channel{Push}},
		{ID: "device.co_detected", Title: "Carbon monoxide detected", Levels: []string{"critical"}, DefaultChannels: []Channel{Push, SMS}},
		{ID: "account.registered", Title: "Welcome", Levels: []string{"info"}, DefaultChannels: []Channel{Email}},
		{ID: "account.password_changed", Title: "Password changed", Levels: []string{"info", "warning"}, DefaultChannels: []Channel{Email, Push}},
		{ID: "account.device_shared", Title: "Device shared with you", Levels: []string{"info"}, DefaultChannels: []Channel{Push}},
		{ID: "account.suspended", Title: "Account suspended", Levels: []string{"warning"}, DefaultChannels: []Channel{Email}},
	}}
}

// ValidateApplication checks a registration (the rules the API's
// protovalidate also enforces, for registrations read from files).
func ValidateApplication(a *Application) error {
	if !appNameRE.MatchString(a.Name) {
		return invalid("application.name", fmt.Sprintf("application name %q must match %s", a.Name, appNameRE))
	}
	if a.Title == "" {
		return invalid("application.title", "application title is required")
	}
	seen := map[string]bool{}
	for i, e := range a.EventTypes {
		f := fmt.Sprintf("application.event_types[%d]", i)
		switch {
		case !eventTypeRE.MatchString(e.ID):
			return invalid(f+".id", fmt.Sprintf("event type id %q must match %s", e.ID, eventTypeRE))
		case seen[e.ID]:
			return invalid(f+".id", fmt.Sprintf("event type id %q is repeated", e.ID))
		case e.Title == "":
			return invalid(f+".title", "event type title is required")
		case len(e.Levels) == 0:
			return invalid(f+".levels", "event type needs at least one level")
		}
		seen[e.ID] = true
		for _, l := range e.Levels {
			if !slices.Contains(Levels, l) {
				return invalid(f+".levels", fmt.Sprintf("level %q is not one of %s", l, strings.Join(Levels, ", ")))
			}
		}
		for _, c := range e.DefaultChannels {
			if !slices.Contains(Channels, c) {
				return invalid(f+".default_channels", fmt.Sprintf("channel %q is unknown", c))
			}
		}
	}
	return nil
}

// PutApplication registers or replaces an application: titles and event
// types may change, the name is the key. It reports whether the
// application is new and whether anything changed; with validateOnly
// nothing is stored.
func (s *Service) PutApplication(ctx context.Context, a *Application, validateOnly bool) (stored *Application, created, changed bool, err error) {
	if err := ValidateApplication(a); err != nil {
		return nil, false, false, err
	}
	old, err := s.store.GetApplication(ctx, a.Name)
	switch {
	case errors.Is(err, ErrNotFound):
		created, changed = true, true
		a.CreateTime = s.now()
		a.UpdateTime = a.CreateTime
	case err != nil:
		return nil, false, false, err
	default:
		a.CreateTime = old.CreateTime
		a.UpdateTime = old.UpdateTime
		if old.Title != a.Title || !reflect.DeepEqual(normEvents(old.EventTypes), normEvents(a.EventTypes)) {
			changed = true
			a.UpdateTime = s.now()
		}
	}
	if changed && !validateOnly {
		defer s.forget(a.Name)
		if err := s.store.PutApplication(ctx, a); err != nil {
			return nil, false, false, err
		}
	}
	return a, created, changed, nil
}

func normEvents(es []EventType) []EventType {
	out := make([]EventType, len(es))
	for i, e := range es {
		if len(e.DefaultChannels) == 0 {
			e.DefaultChannels = nil
		}
		out[i] = e
	}
	return out
}

// GetApplication returns one application.
func (s *Service) GetApplication(ctx context.Context, name string) (*Application, error) {
	return s.store.GetApplication(ctx, name)
}

// ListApplications pages through applications by name.
func (s *Service) ListApplications(ctx context.Context, p Page) ([]*Application, string, error) {
	return s.store.ListApplications(ctx, p)
}

// DeleteApplication removes an application.
func (s *Service) DeleteApplication(ctx context.Context, name string) error {
	defer s.forget(name)
	return s.store.DeleteApplication(ctx, name)
}

// LoadRegistrations reads every *.yaml, *.yml and *.json file in dir, each
// one application in the notifications-backend registration format:
//
//	name: devices
//	title: Devices
//	event_types:
//	  - id: filter-change
//	    title: Filter change
//	    levels: [info, warning]
//	    default_channels: [push]
func LoadRegistrations(dir string) ([]*Application, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("catalog dir: %w", err)
	}
	var apps []*Application
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
		a := &Application{}
		if ext == ".json" {
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			err = dec.Decode(a)
		} else {
			dec := yaml.NewDecoder(strings.NewReader(string(b)))
			dec.KnownFields(true)
			err = dec.Decode(a)
		}
		if err != nil {
			return nil, fmt.Errorf("catalog %s: %w", path, err)
		}
		if err := ValidateApplication(a); err != nil {
			return nil, fmt.Errorf("catalog %s: %s: %w", path, err.Error(), ErrInvalid)
		}
		apps = append(apps, a)
	}
	return apps, nil
}

// RegisterAll registers apps (start-up: the built-in application and the
// catalog files).
func (s *Service) RegisterAll(ctx context.Context, apps ...*Application) error {
	for _, a := range apps {
		if _, _, _, err := s.PutApplication(ctx, a, false); err != nil {
			return fmt.Errorf("register %s: %w", a.Name, err)
		}
	}
	return nil
}
