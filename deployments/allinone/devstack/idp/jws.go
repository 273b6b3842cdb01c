package idp

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Token types, the "typ" claim Keycloak writes.
const (
	typBearer  = "Bearer"
	typID      = "ID"
	typRefresh = "Refresh"
)

// Errors of token parsing; callers turn them into each endpoint's answer.
var (
	errMalformed = errors.New("malformed token")
	errSignature = errors.New("bad token signature")
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwsHeader is the protected header exactly as Keycloak serialises it,
// spaces included: clients that compare or decode header bytes see the
// same thing from both.
func jwsHeader(alg, kid string) []byte {
	return []byte(`{"alg":"` + alg + `","typ" : "JWT","kid" : "` + kid + `"}`)
}

// audience is the aud claim: a string when it has one value, an array when
// it has several, absent when empty (the omitempty of a slice).
type audience []string

// MarshalJSON writes one audience as a string, as Keycloak does.
func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON accepts a string or an array of strings.
func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("aud: %w", err)
	}
	*a = many
	return nil
}

// roleList is the {"roles":[...]} object of realm_access and
// resource_access entries.
type roleList struct {
	Roles []string `json:"roles"`
}

// claims covers the access, ID and refresh tokens; the field order is
// Keycloak's, and omitempty leaves out what a token type does not carry.
type claims struct {
	Exp               int64               `json:"exp"`
	Iat               int64               `json:"iat"`
	AuthTime          int64               `json:"auth_time,omitempty"`
	JTI               string              `json:"jti"`
	Iss               string              `json:"iss"`
	Aud               audience            `json:"aud,omitempty"`
	Sub               string              `json:"sub"`
	Typ               string              `json:"typ"`
	Azp               string              `json:"azp"`
	Nonce             string              `json:"nonce,omitempty"`
	Sid               string              `json:"sid,omitempty"`
	AtHash            string              `json:"at_hash,omitempty"`
	Acr               string              `json:"acr,omitempty"`
	AllowedOrigins    []string            `json:"allowed-origins,omitempty"`
	RealmAccess       *roleList           `json:"realm_access,omitempty"`
	ResourceAccess    map[string]roleList `json:"resource_access,omitempty"`
	Scope             string              `json:"scope,omitempty"`
	ClientHost        string              `json:"clientHost,omitempty"`
	EmailVerified     *bool               `json:"email_verified,omitempty"`
	Name              string              `json:"name,omitempty"`
	PreferredUsername string              `json:"preferred_username,omitempty"`
	GivenName         string              `json:"given_name,omitempty"`
	FamilyName        string              `json:"family_name,omitempty"`
	Email             string              `json:"email,omitempty"`
	ClientAddress     string              `json:"clientAddress,omitempty"`
	ClientID          string              `json:"client_id,omitempty"`

	// raw is the verified payload, for introspection to echo every claim.
	raw []byte
}

// hasScope reports whether the space-separated scope claim holds s.
func (c *claims) hasScope(s string) bool {
	for _, f := range strings.Fields(c.Scope) {
		if f == s {
			return true
		}
	}
	return false
}

// signRS256 serialises c as a compact JWS signed with k.
func signRS256(k *rsaKey, c *claims) (string, error) {
	return sign(jwt.SigningMethodRS256, algRS256, k.kid, k.priv, c)
}

// signHS512 serialises c as a compact JWS with the realm's HMAC key.
func signHS512(k *hmacKey, c *claims) (string, error) {
	return sign(jwt.SigningMethodHS512, algHS512, k.kid, k.secret, c)
}

func sign(m jwt.SigningMethod, alg, kid string, key any, c *claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("idp: encode claims: %w", err)
	}
	signing := b64(jwsHeader(alg, kid)) + "." + b64(payload)
	sig, err := m.Sign(signing, key)
	if err != nil {
		return "", fmt.Errorf("idp: sign token: %w", err)
	}
	return signing + "." + b64(sig), nil
}

// jwsParts is a split compact JWS with its decoded header.
type jwsParts struct {
	alg, kid string
	signing  string
	sig      []byte
	payload  []byte
}

// maxTokenLen bounds what is parsed at all.
const maxTokenLen = 64 << 10

func splitJWS(token string) (*jwsParts, error) {
	if len(token) > maxTokenLen {
		return nil, errMalformed
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errMalformed
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errMalformed
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, errMalformed
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errMalformed
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errMalformed
	}
	return &jwsParts{alg: h.Alg, kid: h.Kid, signing: parts[0] + "." + parts[1], sig: sig, payload: payload}, nil
}

// verifyRS256 checks an RS256 token against the realm's published signing
// keys (by kid) and decodes its claims. Expiry is not checked here.
func verifyRS256(keys *realmKeys, token string) (*claims, error) {
	p, err := splitJWS(token)
	if err != nil {
		return nil, err
	}
	if p.alg != algRS256 {
		return nil, errSignature
	}
	k := keys.sigKey(p.kid)
	if k == nil {
		return nil, errSignature
	}
	if err := jwt.SigningMethodRS256.Verify(p.signing, p.sig, publicKey(k.priv)); err != nil {
		return nil, errSignature
	}
	return decodeClaims(p.payload)
}

// verifyHS512 checks a refresh token against the realm's HMAC keys.
func verifyHS512(keys *realmKeys, token string) (*claims, error) {
	p, err := splitJWS(token)
	if err != nil {
		return nil, err
	}
	if p.alg != algHS512 {
		return nil, errSignature
	}
	k := keys.hmacKey(p.kid)
	if k == nil {
		return nil, errSignature
	}
	if err := jwt.SigningMethodHS512.Verify(p.signing, p.sig, k.secret); err != nil {
		return nil, errSignature
	}
	return decodeClaims(p.payload)
}

func publicKey(k *rsa.PrivateKey) *rsa.PublicKey { return &k.PublicKey }

func decodeClaims(payload []byte) (*claims, error) {
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, errMalformed
	}
	c.raw = payload
	return &c, nil
}
