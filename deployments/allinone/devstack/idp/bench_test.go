package idp_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp"
	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
)

// BenchmarkPasswordGrant measures the token endpoint's password grant
// with the production argon2id parameters: the cost of one login. The
// cheap-kdf variant shows what is left without the KDF (SQLite, RSA
// signing of two tokens, HTTP).
func BenchmarkPasswordGrant(b *testing.B) {
	b.Run("argon2id-default", func(b *testing.B) { benchPasswordGrant(b, idp.DefaultHashParams) })
	b.Run("cheap-kdf", func(b *testing.B) { benchPasswordGrant(b, idp.CheapHashParams) })
}

func benchPasswordGrant(b *testing.B, params idp.HashParams) {
	srv := idptest.Start(b, func(c *idp.Config) { c.PasswordHashing = params })
	user := srv.CreateUser(b, "+79990000001")
	tokenURL := srv.Issuer() + "/protocol/openid-connect/token"
	form := url.Values{"grant_type": {"password"}, "client_id": {idptest.AppClient},
		"username": {user.Username}, "password": {user.Password}, "scope": {"openid"}}.Encode()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(tokenURL, "application/x-www-form-urlencoded", strings.NewReader(form))
			if err != nil {
				b.Error(err)
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}
