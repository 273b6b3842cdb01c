package authgw_test

import (
	"strings"
	"testing"
	"time"

	authgw "github.com/comfortech/platform/gateways/auth"
	"github.com/comfortech/platform/libs/config"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"KEYCLOAK_URL": "http://idp:8090", "AUTH_CLIENT_SECRET": "s3cret", "KAFKA_BROKERS": "k1:9092,k2:9092",
	}
	cfg, err := config.ParseFrom[authgw.Config](base)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KeycloakRealm != "comfortech" || cfg.KeycloakAppClient != "comfortech" || cfg.KeycloakAdminClient != "comfortech-admin" ||
		cfg.ClientID != "comfortech-auth-gateway" || len(cfg.KafkaBrokers) != 2 || cfg.OTPTTL != 5*time.Minute ||
		cfg.OTPMaxAttempts != 5 || cfg.RateLimitPerPhone != "5/1m" || cfg.ClientSecret.Reveal() != "s3cret" {
		t.Fatalf("defaults: %+v", cfg)
	}
	for _, tc := range []struct {
		set, unset, names string
	}{
		{unset: "KEYCLOAK_URL", names: "KEYCLOAK_URL"},
		{unset: "AUTH_CLIENT_SECRET", names: "AUTH_CLIENT_SECRET"},
		{unset: "KAFKA_BROKERS", names: "KAFKA_BROKERS"},
		{set: "KEYCLOAK_URL=idp:8090", names: "KEYCLOAK_URL"},
		{set: "KEYCLOAK_URL=http://idp:8080/auth", names: "KEYCLOAK_URL"},
		{set: "RATE_LIMIT_PER_PHONE=lots", names: "RATE_LIMIT_PER_PHONE"},
		{set: "RATE_LIMIT_PER_IP=5/ever", names: "RATE_LIMIT_PER_IP"},
		{set: "TRUSTED_PROXIES=10.0.0.0/33", names: "TRUSTED_PROXIES"},
		{set: "OTP_TTL=soon", names: "OTP_TTL"},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		delete(env, tc.unset)
		if k, v, ok := strings.Cut(tc.set, "="); ok {
			env[k] = v
		}
		_, err := config.ParseFrom[authgw.Config](env)
		if err == nil || !strings.Contains(err.Error(), tc.names) {
			t.Errorf("%s%s: %v, want an error naming %s", tc.set, tc.unset, err, tc.names)
		}
	}
}
