package auth_test

import (
	"strings"
	"testing"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/config"
)

func TestSettingsFromEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{name: "issuer required", env: map[string]string{}, wantErr: "AUTH_ISSUER is required"},
		{name: "issuer must be a URL", env: map[string]string{"AUTH_ISSUER": "comfortech"}, wantErr: "AUTH_ISSUER"},
		{name: "secret without client", env: map[string]string{"AUTH_ISSUER": "http://id/realms/x", "AUTH_CLIENT_SECRET": "s"}, wantErr: "AUTH_CLIENT_ID and AUTH_CLIENT_SECRET"},
		{name: "defaults", env: map[string]string{"AUTH_ISSUER": "http://id/realms/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := config.ParseFrom[auth.Settings](tt.env)
			if err == nil {
				err = s.Validate()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ts, err := s.NewTokenSource(); ts != nil || err != nil {
				t.Fatalf("token source without a client: %v %v", ts, err)
			}
		})
	}
}
