package auth_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/comfortech/platform/libs/auth"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestVerifyRejectsBadTokens(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v := newVerifier(t, iss)
	key := iss.activeKey()
	kid := key.kid

	pubDER, err := x509.MarshalPKIXPublicKey(&key.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	// Keycloak publishes this string as the realm's public_key.
	pubB64 := []byte(base64.StdEncoding.EncodeToString(pubDER))
	attacker := newSigningKey(t, kid)
	now := time.Now()
	good := iss.mint(iss.userClaims())

	tests := []struct {
		name  string
		token string
		cause error // an expected wrapped cause, when the library names one
	}{
		{name: "empty", token: ""},
		{name: "garbage", token: "not-a-jwt", cause: jwt.ErrTokenMalformed},
		{name: "three garbage segments", token: "a.b.c", cause: jwt.ErrTokenMalformed},
		{name: "alg none", token: signAlg(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, iss.userClaims())},
		{name: "alg none without signature segment", token: strings.Join(strings.Split(good, ".")[:2], ".") + "."},
		{name: "HS256 signed with public key PEM", token: signAlg(t, jwt.SigningMethodHS256, pubPEM, kid, iss.userClaims()), cause: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 signed with public key DER", token: signAlg(t, jwt.SigningMethodHS256, pubDER, kid, iss.userClaims()), cause: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 signed with realm public_key string", token: signAlg(t, jwt.SigningMethodHS256, pubB64, kid, iss.userClaims()), cause: jwt.ErrTokenSignatureInvalid},
		{name: "RS512 with realm key", token: signAlg(t, jwt.SigningMethodRS512, key.priv, kid, iss.userClaims()), cause: jwt.ErrTokenSignatureInvalid},
		{name: "PS256 with realm key", token: signAlg(t, jwt.SigningMethodPS256, key.priv, kid, iss.userClaims()), cause: jwt.ErrTokenSignatureInvalid},
		{name: "signed by another key under the realm kid", token: iss.sign(attacker, iss.userClaims()), cause: jwt.ErrTokenSignatureInvalid},
		{name: "signed with the encryption key", token: iss.sign(iss.enc, iss.userClaims())},
		{name: "unknown kid", token: iss.sign(&signingKey{kid: "no-such-kid", priv: key.priv}, iss.userClaims())},
		{name: "no kid", token: signWithHeader(t, key.priv, `{"alg":"RS256","typ":"JWT"}`, iss.userClaims())},
		{name: "expired", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) {
			c["iat"] = now.Add(-10 * time.Minute).Unix()
			c["exp"] = now.Add(-2 * time.Minute).Unix()
		})), cause: jwt.ErrTokenExpired},
		{name: "not yet valid beyond leeway", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) {
			c["nbf"] = now.Add(2 * time.Minute).Unix()
		})), cause: jwt.ErrTokenNotValidYet},
		{name: "missing exp", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) { delete(c, "exp") })), cause: jwt.ErrTokenRequiredClaimMissing},
		{name: "wrong issuer", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) {
			c["iss"] = strings.Replace(iss.URL, "comfortech", "master", 1)
		})), cause: jwt.ErrTokenInvalidIssuer},
		{name: "issuer with trailing slash", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) { c["iss"] = iss.URL + "/" })), cause: jwt.ErrTokenInvalidIssuer},
		{name: "no issuer", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) { delete(c, "iss") })), cause: jwt.ErrTokenRequiredClaimMissing},
		{name: "wrong azp", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) { c["azp"] = "account-console" }))},
		{name: "no azp", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) { delete(c, "azp") }))},
		{name: "aud is the client but azp is not allowed", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) {
			c["aud"] = appClient
			c["azp"] = "other"
		}))},
		{name: "no sub", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) { delete(c, "sub") }))},
		{name: "tampered payload (roles raised)", token: tamper(t, good, func(c map[string]any) {
			c["resource_access"] = map[string]any{appClient: map[string]any{"roles": []string{"user", "admin"}}}
		}), cause: jwt.ErrTokenSignatureInvalid},
		{name: "tampered payload (subject swapped)", token: tamper(t, good, func(c map[string]any) { c["sub"] = adminSub }), cause: jwt.ErrTokenSignatureInvalid},
		{name: "tampered header (alg none)", token: b64([]byte(`{"alg":"none","typ":"JWT","kid":"`+kid+`"}`)) + good[strings.Index(good, "."):]},
		{name: "refresh token as RS256", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) {
			c["typ"] = "Refresh"
			c["aud"] = iss.URL
		}))},
		{name: "refresh token as Keycloak signs it (HS512)", token: signAlg(t, jwt.SigningMethodHS512, []byte("realm-hmac-secret-0123456789abcdef"), "hmac-kid", iss.userClaims(func(c jwt.MapClaims) {
			c["typ"] = "Refresh"
			c["exp"] = now.Add(30 * time.Minute).Unix()
		}))},
		{name: "ID token", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) {
			c["typ"] = "ID"
			c["aud"] = appClient
			c["at_hash"] = "x"
		}))},
		{name: "no typ", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) { delete(c, "typ") }))},
		{name: "typ in wrong case", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) { c["typ"] = "bearer" }))},
		{name: "oversized", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", 40<<10) }))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := v.Verify(context.Background(), tc.token)
			if err == nil {
				t.Fatalf("accepted: %v", p)
			}
			if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("error %v does not wrap ErrUnauthenticated", err)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("error %v does not wrap %v", err, tc.cause)
			}
			st := auth.StatusError(err)
			if got := status.Code(st); got != codes.Unauthenticated {
				t.Errorf("status code = %v, want Unauthenticated", got)
			}
			if tc.token != "" && (strings.Contains(err.Error(), tc.token) || strings.Contains(st.Error(), tc.token)) {
				t.Error("error message echoes the token")
			}
		})
	}
}

func TestVerifyAcceptsAccessTokens(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v := newVerifier(t, iss)
	now := time.Now()

	tests := []struct {
		name       string
		token      string
		wantSub    string
		wantAzp    string
		wantRoles  []string // must hold
		wantLacks  []string // must not hold
		wantAdmin  bool
		wantSvcAcc bool
	}{
		{name: "app user with Keycloak header", token: iss.mint(iss.userClaims()), wantSub: userSub, wantAzp: appClient,
			wantRoles: []string{auth.RoleUser, "offline_access"}, wantLacks: []string{auth.RoleAdmin, "manage-account"}},
		{name: "admin via admin client", token: iss.mint(iss.adminClaims(func(c jwt.MapClaims) { c["azp"] = adminClient })),
			wantSub: adminSub, wantAzp: adminClient, wantRoles: []string{auth.RoleUser, auth.RoleAdmin}, wantAdmin: true},
		{name: "admin as realm role", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) {
			c["realm_access"] = map[string]any{"roles": []string{auth.RoleAdmin}}
		})), wantSub: userSub, wantAzp: appClient, wantRoles: []string{auth.RoleAdmin, auth.RoleUser}, wantAdmin: true},
		{name: "golang-jwt header order", token: signAlg(t, jwt.SigningMethodRS256, iss.activeKey().priv, iss.activeKey().kid, iss.userClaims()),
			wantSub: userSub, wantAzp: appClient, wantRoles: []string{auth.RoleUser}},
		{name: "aud as array", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) { c["aud"] = []string{"account", "broker"} })),
			wantSub: userSub, wantAzp: appClient, wantRoles: []string{auth.RoleUser}},
		{name: "no aud", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) { delete(c, "aud") })),
			wantSub: userSub, wantAzp: appClient, wantRoles: []string{auth.RoleUser}},
		{name: "expired within leeway", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() })),
			wantSub: userSub, wantAzp: appClient, wantRoles: []string{auth.RoleUser}},
		{name: "nbf within leeway", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Second).Unix() })),
			wantSub: userSub, wantAzp: appClient, wantRoles: []string{auth.RoleUser}},
		{name: "no roles at all", token: iss.mint(iss.userClaims(func(c jwt.MapClaims) {
			delete(c, "realm_access")
			delete(c, "resource_access")
		})), wantSub: userSub, wantAzp: appClient, wantLacks: []string{auth.RoleUser}},
		{name: "service account", token: iss.mint(iss.serviceClaims(time.Minute)), wantSub: svcSub, wantAzp: svcClientID,
			wantLacks: []string{auth.RoleUser}, wantSvcAcc: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := v.Verify(context.Background(), tc.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Subject != tc.wantSub || p.ClientID != tc.wantAzp {
				t.Errorf("sub, azp = %q, %q; want %q, %q", p.Subject, p.ClientID, tc.wantSub, tc.wantAzp)
			}
			for _, r := range tc.wantRoles {
				if !p.HasRole(r) {
					t.Errorf("HasRole(%q) = false", r)
				}
			}
			for _, r := range tc.wantLacks {
				if p.HasRole(r) {
					t.Errorf("HasRole(%q) = true", r)
				}
			}
			if p.IsAdmin() != tc.wantAdmin {
				t.Errorf("IsAdmin() = %v", p.IsAdmin())
			}
			if p.IsServiceAccount() != tc.wantSvcAcc {
				t.Errorf("IsServiceAccount() = %v", p.IsServiceAccount())
			}
			if p.Token() != tc.token {
				t.Error("Token() is not the verified token")
			}
			if p.ExpiresAt.IsZero() {
				t.Error("ExpiresAt not set")
			}
			if s := fmt.Sprintf("%v %+v %#v", p, p, p); strings.Contains(s, tc.token) || strings.Contains(s, userPhone) {
				t.Errorf("formatting a principal leaks the token or phone: %s", s)
			}
		})
	}
}

func TestPrincipalClaimsParsed(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v := newVerifier(t, iss)
	p, err := v.Verify(context.Background(), iss.mint(iss.userClaims()))
	if err != nil {
		t.Fatal(err)
	}
	if p.Username != userPhone || p.SessionID != "2c6f0d5e-8b1a-4f3c-9e7d-5a4b3c2d1e0f" {
		t.Errorf("username, sid = %q, %q", p.Username, p.SessionID)
	}
	if got := p.ClientRoles["account"]; len(got) != 3 || got[2] != "view-profile" {
		t.Errorf("ClientRoles[account] = %v", got)
	}
	if got := p.RealmRoles; len(got) != 3 || got[0] != "default-roles-comfortech" {
		t.Errorf("RealmRoles = %v", got)
	}
	if d := time.Until(p.ExpiresAt); d < accessTTL-time.Minute || d > accessTTL {
		t.Errorf("ExpiresAt in %v", d)
	}
}

func TestAppClientIsConfigurable(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v := newVerifier(t, iss, func(c *auth.Config) { c.AppClient = "account" })
	p, err := v.Verify(context.Background(), iss.mint(iss.userClaims()))
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasRole("view-profile") || p.HasRole(auth.RoleUser) {
		t.Errorf("with AppClient=account: view-profile %v, user %v", p.HasRole("view-profile"), p.HasRole(auth.RoleUser))
	}
}

func TestKeyRotationRefreshesOnceAndIsRateLimited(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v := newVerifier(t, iss, func(c *auth.Config) { c.UnknownKIDRefreshInterval = time.Hour })
	ctx := context.Background()
	old := iss.mint(iss.userClaims())
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	if got := iss.jwksHits.Load(); got != 1 {
		t.Fatalf("JWKS hits after load = %d, want 1", got)
	}

	// The realm rotates: a new active key with a new kid.
	iss.rotate()
	rotated := iss.mint(iss.userClaims())
	if _, err := v.Verify(ctx, rotated); err != nil {
		t.Fatalf("token signed with the rotated key: %v", err)
	}
	if got := iss.jwksHits.Load(); got != 2 {
		t.Fatalf("JWKS hits after rotation = %d, want 2", got)
	}
	if _, err := v.Verify(ctx, old); err != nil {
		t.Errorf("token of the previous, still published key: %v", err)
	}

	// A flood of unknown kids: every token is rejected, quickly, and the
	// identity provider sees no further JWKS request.
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			forged := iss.sign(&signingKey{kid: fmt.Sprint("forged-", i), priv: iss.activeKey().priv}, iss.userClaims())
			if _, err := v.Verify(ctx, forged); !errors.Is(err, auth.ErrUnauthenticated) {
				errs <- fmt.Errorf("forged kid %d: err = %v", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("flood took %v: rate-limited requests should fail fast", d)
	}
	if got := iss.jwksHits.Load(); got != 2 {
		t.Errorf("JWKS hits after 200 unknown kids = %d, want 2", got)
	}
	if _, err := v.Verify(ctx, rotated); err != nil {
		t.Errorf("cached key after the flood: %v", err)
	}
}

func TestPeriodicRefreshDropsRetiredKeys(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v := newVerifier(t, iss, func(c *auth.Config) { c.RefreshInterval = 50 * time.Millisecond })
	ctx := context.Background()
	old := iss.activeKey()
	tok := iss.mint(iss.userClaims())
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	iss.rotate()
	iss.retire(old.kid)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := v.Verify(ctx, tok)
		if err != nil {
			if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("err = %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("token of a retired key still verifies after periodic refreshes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := v.Verify(ctx, iss.mint(iss.userClaims())); err != nil {
		t.Errorf("new key after periodic refresh: %v", err)
	}
}

func TestStartsWhileIdentityProviderIsDown(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	iss.jwksDown.Store(true)
	ctx := t.Context()
	start := time.Now()
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: iss.URL, AllowedClients: []string{appClient}})
	if err != nil {
		t.Fatalf("NewVerifier with the IdP down: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("NewVerifier blocked for %v", d)
	}
	tok := iss.mint(iss.userClaims())
	_, err = v.Verify(ctx, tok)
	if !errors.Is(err, auth.ErrUnauthenticated) || !errors.Is(err, auth.ErrKeysNotLoaded) {
		t.Fatalf("Verify before keys load: err = %v", err)
	}
	if msg := status.Convert(auth.StatusError(err)).Message(); !strings.Contains(msg, "not available") {
		t.Errorf("client message = %q", msg)
	}
	// Once an attempt has failed, Ready reports its cause.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := v.Ready(ctx)
		if err == nil {
			t.Fatal("Ready while the IdP is down")
		}
		if strings.Contains(err.Error(), "503") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready while down = %v, want the 503 cause", err)
		}
	}

	iss.jwksDown.Store(false)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := v.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	if err := v.Ready(ctx); err != nil {
		t.Errorf("Ready after recovery: %v", err)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Errorf("Verify after recovery: %v", err)
	}
}

func TestWaitReadyGivesUpWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// Nothing listens on port 1 of localhost: connection refused.
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: "http://127.0.0.1:1/realms/comfortech", AllowedClients: []string{appClient}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.WaitReady(ctx); !errors.Is(err, auth.ErrKeysNotLoaded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReady = %v", err)
	}
}

func TestNewVerifierRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  auth.Config
	}{
		{"no issuer", auth.Config{AllowedClients: []string{appClient}}},
		{"relative issuer", auth.Config{Issuer: "/realms/comfortech", AllowedClients: []string{appClient}}},
		{"no allowed clients", auth.Config{Issuer: "https://id.example.com/realms/comfortech"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := auth.NewVerifier(t.Context(), tc.cfg); err == nil {
				t.Error("NewVerifier accepted the config")
			}
		})
	}
}

func TestStatusError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string
	}{
		{"nil", nil, codes.OK, ""},
		{"unauthenticated", fmt.Errorf("%w: %w", auth.ErrUnauthenticated, jwt.ErrTokenSignatureInvalid), codes.Unauthenticated, "invalid access token"},
		{"expired", fmt.Errorf("%w: %w", auth.ErrUnauthenticated, jwt.ErrTokenExpired), codes.Unauthenticated, "access token expired"},
		{"forbidden", fmt.Errorf("%w: requires role %q", auth.ErrForbidden, "admin"), codes.PermissionDenied, "permission denied"},
		{"existing status kept", status.Error(codes.Unavailable, "down"), codes.Unavailable, "down"},
		{"unknown error fails closed", errors.New("boom"), codes.Unauthenticated, "invalid access token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := auth.StatusError(tc.err)
			if tc.err == nil {
				if got != nil {
					t.Fatalf("StatusError(nil) = %v", got)
				}
				return
			}
			st := status.Convert(got)
			if st.Code() != tc.wantCode || st.Message() != tc.wantMsg {
				t.Errorf("status = %v %q, want %v %q", st.Code(), st.Message(), tc.wantCode, tc.wantMsg)
			}
			if !errors.Is(got, tc.err) {
				t.Error("status error does not unwrap to its cause")
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	user := &auth.Principal{Subject: userSub, ClientRoles: map[string][]string{appClient: {auth.RoleUser}}}
	tests := []struct {
		name string
		ctx  context.Context
		role string
		want error
	}{
		{"no principal", context.Background(), "", auth.ErrUnauthenticated},
		{"authenticated only", auth.WithPrincipal(context.Background(), user), "", nil},
		{"has role", auth.WithPrincipal(context.Background(), user), auth.RoleUser, nil},
		{"lacks role", auth.WithPrincipal(context.Background(), user), auth.RoleAdmin, auth.ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := auth.Authorize(tc.ctx, tc.role); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Authorize = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestVerifiedTokenCache checks that a token presented again is answered
// from the cache (no RSA verification: a handful of allocations instead of
// about a hundred), and that a remembered token is refused once expired.
// Not parallel: AllocsPerRun needs the process to itself.
func TestVerifiedTokenCache(t *testing.T) {
	iss := newIssuer(t)
	ctx := context.Background()
	tok := iss.mint(iss.userClaims())

	cached := newVerifier(t, iss)
	uncached := newVerifier(t, iss, func(c *auth.Config) { c.CacheSize = -1 })
	first, err := cached.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	again, err := cached.Verify(ctx, tok)
	if err != nil || again != first {
		t.Fatalf("second verification: %v, same principal %v", err, again == first)
	}
	hit := testing.AllocsPerRun(20, func() { _, _ = cached.Verify(ctx, tok) })
	miss := testing.AllocsPerRun(20, func() { _, _ = uncached.Verify(ctx, tok) })
	if hit*5 > miss {
		t.Fatalf("cached verification allocates %.0f, uncached %.0f: the cache is not used", hit, miss)
	}

	short := newVerifier(t, iss, func(c *auth.Config) { c.Leeway = time.Millisecond })
	exp := time.Now().Add(1500 * time.Millisecond).Unix()
	expiring := iss.mint(iss.userClaims(func(c jwt.MapClaims) { c["exp"] = exp }))
	if _, err := short.Verify(ctx, expiring); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.Unix(exp, 0)) + 100*time.Millisecond)
	if _, err := short.Verify(ctx, expiring); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("expired token answered from the cache: %v", err)
	}
}
