package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/comfortech/platform/libs/auth"
	"github.com/golang-jwt/jwt/v5"
)

// Test identities, shaped like the comfortech realm's.
const (
	userSub       = "6f1c2a9e-7d0b-4c55-9a61-2f3e8b7d1c40"
	adminSub      = "1a2b3c4d-0000-4e5f-8a9b-0c1d2e3f4a5b"
	userPhone     = "+79516519741"
	svcClientID   = "svc-gateway-main"
	svcClientSec  = "s3cretValue42"
	svcSub        = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"
	realmPath     = "/realms/comfortech"
	appClient     = "comfortech"
	adminClient   = "comfortech-admin"
	testKeyBits   = 2048
	accessTTL     = 300 * time.Second
	jwksPathTest  = realmPath + "/protocol/openid-connect/certs"
	tokenPathTest = realmPath + "/protocol/openid-connect/token"
)

// signingKey is one RSA key of the test realm.
type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

func newSigningKey(t testing.TB, kid string) *signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, testKeyBits)
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{kid: kid, priv: k}
}

// testIssuer is a minimal Keycloak realm: a JWKS endpoint publishing an RS256
// signing key plus an RSA-OAEP encryption key (as Keycloak does), and a token
// endpoint for the client-credentials grant. It counts hits on both.
type testIssuer struct {
	t   testing.TB
	srv *httptest.Server
	// URL is the realm's issuer, the exact iss of its tokens.
	URL string

	mu        sync.Mutex
	published []*signingKey
	active    *signingKey
	enc       *signingKey
	nextKID   int

	jwksHits  atomic.Int64
	tokenHits atomic.Int64
	jwksDown  atomic.Bool
	// tokenTTL is the expires_in of client-credentials tokens, in seconds.
	tokenTTL atomic.Int64
}

func newIssuer(t testing.TB) *testIssuer {
	t.Helper()
	iss := &testIssuer{t: t}
	iss.tokenTTL.Store(int64(accessTTL / time.Second))
	iss.enc = newSigningKey(t, "enc-key")
	iss.rotate()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+jwksPathTest, iss.serveJWKS)
	mux.HandleFunc("POST "+tokenPathTest, iss.serveToken)
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	iss.URL = iss.srv.URL + realmPath
	return iss
}

// rotate publishes a new signing key and makes it the active one; older keys
// stay published until retired, as in Keycloak.
func (iss *testIssuer) rotate() *signingKey {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.nextKID++
	k := newSigningKey(iss.t, fmt.Sprintf("rs256-key-%d", iss.nextKID))
	iss.published = append(iss.published, k)
	iss.active = k
	return k
}

// retire removes a key from the JWKS.
func (iss *testIssuer) retire(kid string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	keep := iss.published[:0]
	for _, k := range iss.published {
		if k.kid != kid {
			keep = append(keep, k)
		}
	}
	iss.published = keep
}

func (iss *testIssuer) activeKey() *signingKey {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.active
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(k *signingKey, alg, use string) map[string]string {
	pub := k.priv.PublicKey
	return map[string]string{
		"kid": k.kid, "kty": "RSA", "alg": alg, "use": use,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func (iss *testIssuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	iss.jwksHits.Add(1)
	if iss.jwksDown.Load() {
		http.Error(w, "identity provider starting", http.StatusServiceUnavailable)
		return
	}
	iss.mu.Lock()
	keys := []map[string]string{rsaJWK(iss.enc, "RSA-OAEP", "enc")}
	for _, k := range iss.published {
		keys = append(keys, rsaJWK(k, "RS256", "sig"))
	}
	iss.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

// serveToken implements the client-credentials grant like Keycloak: Basic
// client authentication, form body, token JSON without a refresh token.
func (iss *testIssuer) serveToken(w http.ResponseWriter, r *http.Request) {
	iss.tokenHits.Add(1)
	w.Header().Set("Content-Type", "application/json")
	id, secret, ok := r.BasicAuth()
	if !ok || id != svcClientID || secret != svcClientSec {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}`))
		return
	}
	if r.PostFormValue("grant_type") != "client_credentials" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"unsupported_grant_type","error_description":"Unsupported grant_type"}`))
		return
	}
	ttl := iss.tokenTTL.Load()
	tok := iss.sign(iss.activeKey(), iss.serviceClaims(time.Duration(ttl)*time.Second))
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok, "expires_in": ttl, "refresh_expires_in": 0,
		"token_type": "Bearer", "not-before-policy": 0, "scope": "profile email",
	})
}

// userClaims returns the claims of a password-grant access token for a
// default user of the realm, then applies mods.
func (iss *testIssuer) userClaims(mods ...func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"exp": now.Add(accessTTL).Unix(), "iat": now.Unix(),
		"jti": "onrtac:" + fmt.Sprint(now.UnixNano()), "iss": iss.URL, "aud": "account",
		"sub": userSub, "typ": "Bearer", "azp": appClient,
		"sid": "2c6f0d5e-8b1a-4f3c-9e7d-5a4b3c2d1e0f", "acr": "1",
		"realm_access": map[string]any{"roles": []string{"default-roles-comfortech", "offline_access", "uma_authorization"}},
		"resource_access": map[string]any{
			appClient: map[string]any{"roles": []string{auth.RoleUser}},
			"account": map[string]any{"roles": []string{"manage-account", "manage-account-links", "view-profile"}},
		},
		"scope": "openid email profile", "email_verified": false, "preferred_username": userPhone,
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

// adminClaims is a user token that also holds the admin client role.
func (iss *testIssuer) adminClaims(mods ...func(jwt.MapClaims)) jwt.MapClaims {
	return iss.userClaims(append([]func(jwt.MapClaims){func(c jwt.MapClaims) {
		c["sub"] = adminSub
		c["preferred_username"] = "admin"
		c["resource_access"].(map[string]any)[appClient] = map[string]any{"roles": []string{auth.RoleUser, auth.RoleAdmin}}
	}}, mods...)...)
}

// serviceClaims is a client-credentials token of the svc client.
func (iss *testIssuer) serviceClaims(ttl time.Duration) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"exp": now.Add(ttl).Unix(), "iat": now.Unix(), "jti": fmt.Sprint("svc-", now.UnixNano()),
		"iss": iss.URL, "sub": svcSub, "typ": "Bearer", "azp": svcClientID, "acr": "1",
		"realm_access":       map[string]any{"roles": []string{"default-roles-comfortech"}},
		"scope":              "profile email",
		"preferred_username": "service-account-" + svcClientID,
	}
}

// sign produces an RS256 token with the JWS header exactly as Keycloak writes
// it: `{"alg":"RS256","typ" : "JWT","kid" : "<kid>"}`.
func (iss *testIssuer) sign(k *signingKey, claims jwt.MapClaims) string {
	return signWithHeader(iss.t, k.priv, fmt.Sprintf(`{"alg":"RS256","typ" : "JWT","kid" : %q}`, k.kid), claims)
}

func signWithHeader(t testing.TB, priv *rsa.PrivateKey, header string, claims jwt.MapClaims) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := b64([]byte(header)) + "." + b64(payload)
	sig, err := jwt.SigningMethodRS256.Sign(signing, priv)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

// mint signs claims with the active key.
func (iss *testIssuer) mint(claims jwt.MapClaims) string { return iss.sign(iss.activeKey(), claims) }

// signAlg signs claims with any golang-jwt method and key, setting kid.
func signAlg(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newVerifier builds a Verifier for iss and waits until its keys are loaded.
func newVerifier(t testing.TB, iss *testIssuer, mods ...func(*auth.Config)) *auth.Verifier {
	t.Helper()
	cfg := auth.Config{Issuer: iss.URL, AllowedClients: []string{appClient, adminClient, svcClientID}}
	for _, m := range mods {
		m(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := auth.NewVerifier(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := v.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	return v
}

func bearer(tok string) string { return "Bearer " + tok }

// tamper replaces the payload of a signed token, keeping header and signature.
func tamper(t testing.TB, tok string, mod func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	mod(c)
	raw, _ = json.Marshal(c)
	parts[1] = b64(raw)
	return strings.Join(parts, ".")
}
