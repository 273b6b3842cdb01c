package main

import (
	"strings"
	"testing"

	"github.com/comfortech/platform/libs/config"
)

// TestSettings checks where the fleet's credentials may come from: a
// file, or provisioning with a token or a password, and that a setting
// that cannot work names its variable.
func TestSettings(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"credentials file", map[string]string{"SIM_CREDENTIALS": "devices.csv"}, ""},
		{"provision with a token", map[string]string{"SIM_PROVISION": "10", "SIM_ADMIN_TOKEN": "t"}, ""},
		{"provision with a password, saved", map[string]string{"SIM_PROVISION": "10", "SIM_ADMIN_PASSWORD": "p", "SIM_CREDENTIALS": "new.json"}, ""},
		{"nothing", map[string]string{}, "SIM_CREDENTIALS"},
		{"provision without credentials", map[string]string{"SIM_PROVISION": "10"}, "SIM_ADMIN_TOKEN"},
		{"negative count", map[string]string{"SIM_PROVISION": "-1", "SIM_CREDENTIALS": "devices.csv"}, "SIM_PROVISION"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.ParseFrom[settings](c.env)
			if (c.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("%v, want an error naming %q", err, c.wantErr)
			}
			if err == nil && (cfg.Provision.AdminURL != "http://localhost:8082" || cfg.Provision.Model != "thermostat-t1") {
				t.Errorf("defaults: %+v", cfg.Provision)
			}
		})
	}
}
