package idp_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/Nerzal/gocloak/v13"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
)

const (
	realm       = idptest.Realm
	appClient   = idptest.AppClient
	authGateway = "comfortech-auth-gateway"
	mainGateway = "comfortech-main-gateway"
)

// apiError asserts that err is a gocloak APIError with code and a message
// containing want.
func apiError(t *testing.T, err error, code int, want string) {
	t.Helper()
	var ae *gocloak.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v (%T), want *gocloak.APIError %d", err, err, code)
	}
	if ae.Code != code || !strings.Contains(ae.Message, want) {
		t.Fatalf("APIError = %d %q, want %d containing %q", ae.Code, ae.Message, code, want)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// claimsOf decodes a token's payload without verification.
func claimsOf(t *testing.T, gc *gocloak.GoCloak, tok string) map[string]any {
	t.Helper()
	_, c, err := gc.DecodeAccessToken(context.Background(), tok, realm)
	if err != nil {
		t.Fatalf("DecodeAccessToken: %v", err)
	}
	return *c
}

func TestGocloakTokenFlows(t *testing.T) {
	t.Parallel()
	srv := idptest.Start(t)
	ctx := context.Background()
	gc := gocloak.NewClient(srv.URL)
	user := srv.CreateUser(t, "+79516519741")

	t.Run("Login gives access, refresh and ID tokens with Keycloak's claims", func(t *testing.T) {
		tok := must[*gocloak.JWT](t)(gc.Login(ctx, appClient, "", realm, user.Username, user.Password))
		if tok.AccessToken == "" || tok.RefreshToken == "" || tok.IDToken == "" {
			t.Fatalf("token = %+v", tok)
		}
		if tok.ExpiresIn != 300 || tok.RefreshExpiresIn != 1800 || tok.TokenType != "Bearer" || tok.Scope != "openid email profile" {
			t.Fatalf("token = %+v", tok)
		}
		header, err := base64.RawStdEncoding.DecodeString(strings.Split(tok.AccessToken, ".")[0])
		if err != nil {
			t.Fatalf("gocloak-style header decode: %v", err)
		}
		tk, c, err := gc.DecodeAccessToken(ctx, tok.AccessToken, realm)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"alg":"RS256","typ" : "JWT","kid" : "` + tk.Header["kid"].(string) + `"}`; string(header) != want {
			t.Fatalf("header = %s, want %s", header, want)
		}
		cl := *c
		checks := map[string]any{
			"iss": srv.Issuer(), "sub": user.ID, "typ": "Bearer", "azp": appClient, "sid": tok.SessionState,
			"aud": "account", "acr": "1", "preferred_username": user.Username, "scope": "openid email profile",
			"email_verified": false,
		}
		for k, want := range checks {
			if cl[k] != want {
				t.Errorf("claim %s = %v, want %v", k, cl[k], want)
			}
		}
		if cl["exp"].(float64)-cl["iat"].(float64) != 300 {
			t.Errorf("exp - iat = %v", cl["exp"].(float64)-cl["iat"].(float64))
		}
		if _, ok := cl["session_state"]; ok {
			t.Error("session_state claim present; Keycloak 26 removed it")
		}
		ra := cl["resource_access"].(map[string]any)
		if got := ra[appClient].(map[string]any)["roles"]; len(got.([]any)) != 1 || got.([]any)[0] != "user" {
			t.Errorf("resource_access.comfortech = %v", got)
		}
		if got := ra["account"].(map[string]any)["roles"].([]any); len(got) != 3 {
			t.Errorf("resource_access.account = %v", got)
		}
		realmRoles := cl["realm_access"].(map[string]any)["roles"].([]any)
		if len(realmRoles) != 3 {
			t.Errorf("realm_access = %v", realmRoles)
		}
		id := claimsOf(t, gc, tok.IDToken)
		if id["typ"] != "ID" || id["aud"] != appClient || id["sid"] != tok.SessionState || id["at_hash"] == nil {
			t.Errorf("id token = %v", id)
		}
	})

	t.Run("LoginAdmin gives a 60 s master token", func(t *testing.T) {
		tok := must[*gocloak.JWT](t)(gc.LoginAdmin(ctx, "admin", srv.MasterPassword, "master"))
		if tok.ExpiresIn != 60 || tok.IDToken != "" {
			t.Fatalf("token = %+v", tok)
		}
	})

	t.Run("LoginClient gives a service-account token without refresh token", func(t *testing.T) {
		tok := must[*gocloak.JWT](t)(gc.LoginClient(ctx, authGateway, srv.ClientSecret(t, authGateway), realm))
		if tok.RefreshToken != "" || tok.RefreshExpiresIn != 0 || tok.AccessToken == "" {
			t.Fatalf("token = %+v", tok)
		}
		c := claimsOf(t, gc, tok.AccessToken)
		if c["preferred_username"] != "service-account-"+authGateway || c["azp"] != authGateway || c["sid"] != nil {
			t.Fatalf("claims = %v", c)
		}
		rm := c["resource_access"].(map[string]any)["realm-management"].(map[string]any)["roles"].([]any)
		if len(rm) < 6 {
			t.Fatalf("realm-management roles = %v", rm)
		}
	})

	t.Run("RefreshToken keeps the session and scope; Logout ends it", func(t *testing.T) {
		tok := must[*gocloak.JWT](t)(gc.Login(ctx, appClient, "", realm, user.Username, user.Password))
		ref := must[*gocloak.JWT](t)(gc.RefreshToken(ctx, tok.RefreshToken, appClient, "", realm))
		if ref.RefreshToken == "" || ref.SessionState != tok.SessionState || ref.Scope != tok.Scope || ref.IDToken == "" {
			t.Fatalf("refreshed = %+v", ref)
		}
		if err := gc.Logout(ctx, appClient, "", realm, ref.RefreshToken); err != nil {
			t.Fatal(err)
		}
		_, err := gc.RefreshToken(ctx, tok.RefreshToken, appClient, "", realm)
		apiError(t, err, 400, "invalid_grant: Session not active")
		res := must[*gocloak.IntroSpectTokenResult](t)(gc.RetrospectToken(ctx, ref.AccessToken, authGateway, srv.ClientSecret(t, authGateway), realm))
		if *res.Active {
			t.Fatal("access token still active after logout")
		}
		_, err = gc.GetUserInfo(ctx, ref.AccessToken, realm)
		apiError(t, err, 401, "401 Unauthorized")
		// Logging out a gone session is still a success.
		if err := gc.Logout(ctx, appClient, "", realm, ref.RefreshToken); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("LogoutPublicClient", func(t *testing.T) {
		tok := must[*gocloak.JWT](t)(gc.Login(ctx, appClient, "", realm, user.Username, user.Password))
		if err := gc.LogoutPublicClient(ctx, appClient, realm, tok.AccessToken, tok.RefreshToken); err != nil {
			t.Fatal(err)
		}
		_, err := gc.RefreshToken(ctx, tok.RefreshToken, appClient, "", realm)
		apiError(t, err, 400, "Session not active")
	})

	t.Run("RetrospectToken of an active token", func(t *testing.T) {
		tok := must[*gocloak.JWT](t)(gc.Login(ctx, appClient, "", realm, user.Username, user.Password))
		res := must[*gocloak.IntroSpectTokenResult](t)(gc.RetrospectToken(ctx, tok.AccessToken, authGateway, srv.ClientSecret(t, authGateway), realm))
		if !*res.Active || *res.Type != "Bearer" || res.Exp == nil || res.Jti == nil {
			t.Fatalf("introspection = %+v", res)
		}
		// gocloak sends no credentials at all for an empty secret.
		_, err := gc.RetrospectToken(ctx, tok.AccessToken, appClient, "", realm)
		apiError(t, err, 400, "invalid_client: Missing client_id parameter")
	})

	t.Run("GetUserInfo", func(t *testing.T) {
		tok := must[*gocloak.JWT](t)(gc.Login(ctx, appClient, "", realm, user.Username, user.Password))
		info := must[*gocloak.UserInfo](t)(gc.GetUserInfo(ctx, tok.AccessToken, realm))
		if *info.Sub != user.ID || *info.PreferredUsername != user.Username || *info.EmailVerified {
			t.Fatalf("userinfo = %+v", info)
		}
		admin := must[*gocloak.JWT](t)(gc.LoginAdmin(ctx, "admin", srv.MasterPassword, "master"))
		_, err := gc.GetUserInfo(ctx, admin.AccessToken, "master")
		apiError(t, err, 403, "403 Forbidden") // no openid scope
		_, err = gc.GetUserInfo(ctx, "not-a-token", realm)
		apiError(t, err, 401, "401 Unauthorized")
	})

	t.Run("GetCerts and GetIssuer", func(t *testing.T) {
		certs := must[*gocloak.CertResponse](t)(gc.GetCerts(ctx, realm))
		uses := map[string]string{}
		for _, k := range *certs.Keys {
			if k.Kid == nil || *k.Kid == "" || k.X5c == nil || len(*k.X5c) != 1 || k.X5t == nil || k.X5tS256 == nil {
				t.Fatalf("key = %+v", k)
			}
			uses[*k.Use] = *k.Alg
		}
		if uses["sig"] != "RS256" || uses["enc"] != "RSA-OAEP" {
			t.Fatalf("keys = %v", uses)
		}
		iss := must[*gocloak.IssuerResponse](t)(gc.GetIssuer(ctx, realm))
		if *iss.Realm != realm || *iss.PublicKey == "" || *iss.TokenService != srv.Issuer()+"/protocol/openid-connect" {
			t.Fatalf("issuer = %+v", iss)
		}
	})
}

func TestGocloakTokenErrors(t *testing.T) {
	t.Parallel()
	srv := idptest.Start(t)
	ctx := context.Background()
	gc := gocloak.NewClient(srv.URL)
	user := srv.CreateUser(t, "+79000000001")
	disabled := srv.CreateUser(t, "+79000000002")
	admin := must[*gocloak.JWT](t)(gc.LoginAdmin(ctx, "admin", srv.MasterPassword, "master"))
	if err := gc.UpdateUser(ctx, admin.AccessToken, realm, gocloak.User{ID: &disabled.ID, Enabled: gocloak.BoolP(false)}); err != nil {
		t.Fatal(err)
	}
	secret := srv.ClientSecret(t, mainGateway)

	tests := []struct {
		name string
		call func() error
		code int
		msg  string
	}{
		{"wrong password", func() error {
			_, err := gc.Login(ctx, appClient, "", realm, user.Username, "wrong")
			return err
		}, 401, "401 Unauthorized: invalid_grant: Invalid user credentials"},
		{"unknown username", func() error {
			_, err := gc.Login(ctx, appClient, "", realm, "+70000000000", "whatever1")
			return err
		}, 401, "invalid_grant: Invalid user credentials"},
		{"disabled user, checked before the password", func() error {
			_, err := gc.Login(ctx, appClient, "", realm, disabled.Username, "wrong")
			return err
		}, 400, "400 Bad Request: invalid_grant: Account disabled"},
		{"no username", func() error {
			_, err := gc.Login(ctx, appClient, "", realm, "", "x")
			return err
		}, 401, "invalid_request: Missing parameter: username"},
		{"wrong secret", func() error {
			_, err := gc.LoginClient(ctx, mainGateway, "nope", realm)
			return err
		}, 401, "unauthorized_client: Invalid client or Invalid client credentials"},
		{"unknown client", func() error {
			_, err := gc.LoginClient(ctx, "nobody", "nope", realm)
			return err
		}, 401, "invalid_client: Invalid client or Invalid client credentials"},
		{"direct grants disabled", func() error {
			_, err := gc.Login(ctx, mainGateway, secret, realm, user.Username, user.Password)
			return err
		}, 400, "unauthorized_client: Client not allowed for direct access grants"},
		{"malformed refresh token", func() error {
			_, err := gc.RefreshToken(ctx, "a.b.c", appClient, "", realm)
			return err
		}, 400, "invalid_grant: Invalid refresh token"},
		{"no refresh token", func() error {
			_, err := gc.RefreshToken(ctx, "", appClient, "", realm)
			return err
		}, 400, "invalid_request: No refresh token"},
		{"refresh token of another client", func() error {
			tok, err := gc.Login(ctx, appClient, "", realm, user.Username, user.Password)
			if err != nil {
				return err
			}
			_, err = gc.RefreshToken(ctx, tok.RefreshToken, "comfortech-admin", "", realm)
			return err
		}, 400, "Token client and authorized client don't match"},
		{"refresh after the user was disabled", func() error {
			u := srv.CreateUser(t, "+79000000003")
			tok, err := gc.Login(ctx, appClient, "", realm, u.Username, u.Password)
			if err != nil {
				return err
			}
			if err := gc.UpdateUser(ctx, admin.AccessToken, realm, gocloak.User{ID: &u.ID, Enabled: gocloak.BoolP(false)}); err != nil {
				return err
			}
			_, err = gc.RefreshToken(ctx, tok.RefreshToken, appClient, "", realm)
			return err
		}, 400, "invalid_grant: User disabled"},
		{"unknown realm", func() error {
			_, err := gc.Login(ctx, appClient, "", "nowhere", user.Username, user.Password)
			return err
		}, 404, "404 Not Found: Realm does not exist"},
		{"logout with a bad refresh token", func() error {
			return gc.Logout(ctx, appClient, "", realm, "garbage")
		}, 400, "invalid_grant: Invalid refresh token"},
		{"logout with a wrong secret", func() error {
			return gc.Logout(ctx, mainGateway, "wrong", realm, "garbage")
		}, 401, "unauthorized_client"},
		{"temporary password", func() error {
			u := srv.CreateUser(t, "+79000000004")
			if err := gc.SetPassword(ctx, admin.AccessToken, u.ID, realm, "Temp0rary99", true); err != nil {
				return err
			}
			_, err := gc.Login(ctx, appClient, "", realm, u.Username, "Temp0rary99")
			return err
		}, 400, "invalid_grant: Account is not fully set up"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			apiError(t, tc.call(), tc.code, tc.msg)
		})
	}
}
