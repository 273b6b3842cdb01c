package authgw_test

import (
	"testing"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp"
	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
)

// startIdP starts the embedded identity provider with the repository's
// realm and returns its base URL, the gateway client's secret and the
// platform admin's password. opts adjust its configuration.
func startIdP(t testing.TB, opts ...func(*idp.Config)) (url, secret, adminPassword string) {
	t.Helper()
	srv := idptest.Start(t, opts...)
	return srv.URL, srv.ClientSecret(t, "comfortech-auth-gateway"), srv.AdminPassword
}
