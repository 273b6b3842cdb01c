package idp

import (
	"crypto/x509"
	"encoding/base64"
	"net/http"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idpstore"
)

// handleRealmInfo answers GET /realms/{realm} (gocloak's GetIssuer).
func (p *Provider) handleRealmInfo(w http.ResponseWriter, r *http.Request, realm *idpstore.Realm) {
	keys, err := p.keys.get(r.Context(), realm.ID)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	der, err := x509.MarshalPKIXPublicKey(&keys.activeSig.priv.PublicKey)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	iss := p.issuer(r, realm.Name)
	writeJSON(w, http.StatusOK, map[string]any{
		"realm":             realm.Name,
		"public_key":        base64.StdEncoding.EncodeToString(der),
		"token-service":     iss + "/protocol/openid-connect",
		"account-service":   iss + "/account",
		"tokens-not-before": 0,
	})
}

// handleCerts serves the realm's JWKS.
func (p *Provider) handleCerts(w http.ResponseWriter, r *http.Request, realm *idpstore.Realm) {
	keys, err := p.keys.get(r.Context(), realm.ID)
	if err != nil {
		p.serverError(w, r, err)
		return
	}
	ct := "application/json"
	if r.Header.Get("Accept") == "application/jwk-set+json" {
		ct = "application/jwk-set+json"
	}
	w.Header().Set("Cache-Control", "no-cache")
	writeJSONAs(w, http.StatusOK, ct, map[string]any{"keys": keys.jwks()})
}

// handleDiscovery serves the OpenID Provider metadata, with the fields and
// values Keycloak 26 publishes.
func (p *Provider) handleDiscovery(w http.ResponseWriter, r *http.Request, realm *idpstore.Realm) {
	iss := p.issuer(r, realm.Name)
	o := iss + "/protocol/openid-connect"
	algs := []string{"PS384", "RS384", "EdDSA", "ES384", "HS256", "HS512", "ES256", "RS256", "HS384", "ES512", "PS256", "PS512", "RS512"}
	asymmetric := []string{"PS384", "RS384", "EdDSA", "ES384", "ES256", "RS256", "ES512", "PS256", "PS512", "RS512"}
	authMethods := []string{"private_key_jwt", "client_secret_basic", "client_secret_post", "tls_client_auth", "client_secret_jwt"}
	scopes := []string{"openid"}
	seen := map[string]bool{"openid": true}
	for _, s := range append(append([]string{}, builtinDefaultScopes...), builtinOptionalScopes...) {
		if !seen[s] {
			scopes = append(scopes, s)
			seen[s] = true
		}
	}
	doc := map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                o + "/auth",
		"token_endpoint":                        o + "/token",
		"introspection_endpoint":                o + "/token/introspect",
		"userinfo_endpoint":                     o + "/userinfo",
		"end_session_endpoint":                  o + "/logout",
		"frontchannel_logout_session_supported": true,
		"frontchannel_logout_supported":         true,
		"jwks_uri":                              o + "/certs",
		"check_session_iframe":                  o + "/login-status-iframe.html",
		"grant_types_supported": []string{"authorization_code", "implicit", "refresh_token", "password",
			"client_credentials", "urn:openid:params:grant-type:ciba", "urn:ietf:params:oauth:grant-type:device_code"},
		"acr_values_supported":                                     []string{"0", "1"},
		"response_types_supported":                                 []string{"code", "none", "id_token", "token", "id_token token", "code id_token", "code token", "code id_token token"},
		"subject_types_supported":                                  []string{"public", "pairwise"},
		"prompt_values_supported":                                  []string{"none", "login", "consent"},
		"id_token_signing_alg_values_supported":                    asymmetric,
		"id_token_encryption_alg_values_supported":                 []string{"ECDH-ES+A256KW", "ECDH-ES+A192KW", "ECDH-ES+A128KW", "RSA-OAEP", "RSA-OAEP-256", "RSA1_5", "ECDH-ES"},
		"id_token_encryption_enc_values_supported":                 []string{"A256GCM", "A192GCM", "A128GCM", "A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512"},
		"userinfo_signing_alg_values_supported":                    append(append([]string{}, asymmetric...), "none"),
		"request_object_signing_alg_values_supported":              append(append([]string{}, asymmetric...), "none"),
		"response_modes_supported":                                 []string{"query", "fragment", "form_post", "query.jwt", "fragment.jwt", "form_post.jwt", "jwt"},
		"registration_endpoint":                                    iss + "/clients-registrations/openid-connect",
		"token_endpoint_auth_methods_supported":                    authMethods,
		"token_endpoint_auth_signing_alg_values_supported":         algs,
		"introspection_endpoint_auth_methods_supported":            authMethods,
		"introspection_endpoint_auth_signing_alg_values_supported": algs,
		"authorization_signing_alg_values_supported":               asymmetric,
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "name", "given_name", "family_name",
			"preferred_username", "email", "acr", "azp", "nonce"},
		"claim_types_supported":                                           []string{"normal"},
		"claims_parameter_supported":                                      true,
		"scopes_supported":                                                scopes,
		"request_parameter_supported":                                     true,
		"request_uri_parameter_supported":                                 true,
		"require_request_uri_registration":                                true,
		"code_challenge_methods_supported":                                []string{"plain", "S256"},
		"tls_client_certificate_bound_access_tokens":                      true,
		"revocation_endpoint":                                             o + "/revoke",
		"revocation_endpoint_auth_methods_supported":                      authMethods,
		"revocation_endpoint_auth_signing_alg_values_supported":           algs,
		"backchannel_logout_supported":                                    true,
		"backchannel_logout_session_supported":                            true,
		"device_authorization_endpoint":                                   o + "/auth/device",
		"backchannel_token_delivery_modes_supported":                      []string{"poll", "ping"},
		"backchannel_authentication_endpoint":                             o + "/ext/ciba/auth",
		"backchannel_authentication_request_signing_alg_values_supported": []string{"PS384", "RS384", "EdDSA", "ES384", "ES256", "RS256", "ES512", "PS256", "PS512", "RS512"},
		"require_pushed_authorization_requests":                           false,
		"pushed_authorization_request_endpoint":                           o + "/ext/par/request",
		"mtls_endpoint_aliases": map[string]string{
			"token_endpoint":                        o + "/token",
			"revocation_endpoint":                   o + "/revoke",
			"introspection_endpoint":                o + "/token/introspect",
			"device_authorization_endpoint":         o + "/auth/device",
			"registration_endpoint":                 iss + "/clients-registrations/openid-connect",
			"userinfo_endpoint":                     o + "/userinfo",
			"pushed_authorization_request_endpoint": o + "/ext/par/request",
			"backchannel_authentication_endpoint":   o + "/ext/ciba/auth",
		},
		"authorization_response_iss_parameter_supported": true,
	}
	writeJSON(w, http.StatusOK, doc)
}
