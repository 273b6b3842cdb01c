package idp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" // x5t is defined as a SHA-1 thumbprint (RFC 7517 §4.8)
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idpstore"
)

// Key algorithms and uses, as Keycloak names them.
const (
	algRS256   = "RS256"
	algRSAOAEP = "RSA-OAEP"
	algHS512   = "HS512"
	useSig     = "sig"
	useEnc     = "enc"
)

// rsaKeyBits is Keycloak's default RSA key size.
const rsaKeyBits = 2048

// ErrActiveKey is returned by RemoveKey for the key that currently signs:
// rotate first, then remove the old key.
var ErrActiveKey = errors.New("idp: cannot remove the active signing key; rotate first")

// ErrUnknownRealm is returned by the key API for a realm that does not exist.
var ErrUnknownRealm = errors.New("idp: realm does not exist")

// rsaKey is a decoded RSA key pair with its certificate.
type rsaKey struct {
	kid    string
	alg    string
	use    string
	priv   *rsa.PrivateKey
	cert   []byte // DER
	active bool
}

// hmacKey signs refresh tokens.
type hmacKey struct {
	kid    string
	secret []byte
	active bool
}

// realmKeys is the decoded key material of one realm.
type realmKeys struct {
	sig       []*rsaKey // published RS256 keys, oldest first
	activeSig *rsaKey
	enc       []*rsaKey
	hmac      []*hmacKey
	activeMAC *hmacKey
}

func (k *realmKeys) sigKey(kid string) *rsaKey {
	for _, s := range k.sig {
		if s.kid == kid {
			return s
		}
	}
	return nil
}

func (k *realmKeys) hmacKey(kid string) *hmacKey {
	for _, h := range k.hmac {
		if h.kid == kid {
			return h
		}
	}
	return nil
}

// keyring caches decoded realm keys: parsing a PKCS#8 RSA key on every
// token would cost more than signing it.
type keyring struct {
	store *idpstore.Store
	mu    sync.Mutex
	cache map[string]*realmKeys // by realm id
}

func newKeyring(s *idpstore.Store) *keyring {
	return &keyring{store: s, cache: map[string]*realmKeys{}}
}

// get returns the realm's keys, loading them from the store on first use.
func (kr *keyring) get(ctx context.Context, realmID string) (*realmKeys, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if k, ok := kr.cache[realmID]; ok {
		return k, nil
	}
	stored, err := kr.store.Keys(ctx, realmID)
	if err != nil {
		return nil, fmt.Errorf("idp: load keys: %w", err)
	}
	k := &realmKeys{}
	for _, s := range stored {
		switch s.Alg {
		case algHS512:
			h := &hmacKey{kid: s.KID, secret: s.Secret, active: s.Active}
			k.hmac = append(k.hmac, h)
			if s.Active {
				k.activeMAC = h
			}
		case algRS256, algRSAOAEP:
			parsed, err := x509.ParsePKCS8PrivateKey(s.Secret)
			if err != nil {
				return nil, fmt.Errorf("idp: key %s: %w", s.KID, err)
			}
			priv, ok := parsed.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("idp: key %s is %T, not RSA", s.KID, parsed)
			}
			r := &rsaKey{kid: s.KID, alg: s.Alg, use: s.Use, priv: priv, cert: s.Cert, active: s.Active}
			if s.Alg == algRS256 {
				k.sig = append(k.sig, r)
				if s.Active {
					k.activeSig = r
				}
			} else {
				k.enc = append(k.enc, r)
			}
		}
	}
	if k.activeSig == nil || k.activeMAC == nil {
		return nil, fmt.Errorf("idp: realm %s has no active signing keys", realmID)
	}
	kr.cache[realmID] = k
	return k, nil
}

// forget drops the cached keys of a realm after a change.
func (kr *keyring) forget(realmID string) {
	kr.mu.Lock()
	delete(kr.cache, realmID)
	kr.mu.Unlock()
}

// generateRealmKeys creates a new realm's RS256 signing key, RSA-OAEP
// encryption key and HS512 refresh-token key, as Keycloak's default key
// providers do.
func generateRealmKeys(ctx context.Context, s *idpstore.Store, realmID, realmName string, now time.Time) error {
	for _, spec := range []struct{ alg, use string }{{algRS256, useSig}, {algRSAOAEP, useEnc}} {
		k, err := newRSAKey(realmID, realmName, spec.alg, spec.use, now)
		if err != nil {
			return err
		}
		if err := s.InsertKey(ctx, k); err != nil {
			return fmt.Errorf("idp: store key: %w", err)
		}
	}
	secret := make([]byte, 64)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("idp: hmac key: %w", err)
	}
	kid, err := newKID(algHS512)
	if err != nil {
		return err
	}
	if err := s.InsertKey(ctx, &idpstore.Key{KID: kid, RealmID: realmID, Alg: algHS512, Use: useSig,
		Secret: secret, Active: true, CreatedMs: now.UnixMilli()}); err != nil {
		return fmt.Errorf("idp: store key: %w", err)
	}
	return nil
}

// newRSAKey generates an active RSA key pair with a self-signed certificate
// (CN = realm name, as Keycloak's generated keys have), so that the JWKS can
// publish x5c, x5t and x5t#S256 that JWKS libraries cross-check.
func newRSAKey(realmID, realmName, alg, use string, now time.Time) (*idpstore.Key, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return nil, fmt.Errorf("idp: generate RSA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("idp: certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: realmName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("idp: self-signed certificate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("idp: encode key: %w", err)
	}
	kid, err := newKID(alg)
	if err != nil {
		return nil, err
	}
	return &idpstore.Key{KID: kid, RealmID: realmID, Alg: alg, Use: use, Secret: der, Cert: cert,
		Active: true, CreatedMs: now.UnixMilli()}, nil
}

// kidAlphabet keeps kids free of characters that need escaping in JSON.
const kidAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newKID returns a random 43-character kid chosen so that the base64url
// encoding of the JWS header that carries it contains neither '-' nor '_':
// gocloak decodes token headers with the standard alphabet and would fail
// on those. About one candidate in twenty qualifies, so this loops a few
// dozen times at most.
func newKID(alg string) (string, error) {
	buf := make([]byte, 43)
	for range 10_000 {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("idp: kid: %w", err)
		}
		for i, b := range buf {
			buf[i] = kidAlphabet[int(b)%len(kidAlphabet)]
		}
		kid := string(buf)
		if !strings.ContainsAny(b64(jwsHeader(alg, kid)), "-_") {
			return kid, nil
		}
	}
	return "", errors.New("idp: no kid gives a header free of '-' and '_'")
}

// jwk is one entry of the JWKS, with Keycloak's field order.
type jwk struct {
	KID     string   `json:"kid"`
	KTY     string   `json:"kty"`
	Alg     string   `json:"alg"`
	Use     string   `json:"use"`
	N       string   `json:"n"`
	E       string   `json:"e"`
	X5C     []string `json:"x5c"`
	X5T     string   `json:"x5t"`
	X5TS256 string   `json:"x5t#S256"`
}

func toJWK(k *rsaKey) jwk {
	s1 := sha1.Sum(k.cert)
	s256 := sha256.Sum256(k.cert)
	return jwk{
		KID: k.kid, KTY: "RSA", Alg: k.alg, Use: k.use,
		N:       b64(k.priv.N.Bytes()),
		E:       b64(big.NewInt(int64(k.priv.E)).Bytes()),
		X5C:     []string{base64.StdEncoding.EncodeToString(k.cert)},
		X5T:     b64(s1[:]),
		X5TS256: b64(s256[:]),
	}
}

// jwks returns the published keys: every RS256 key (active and passive)
// and the encryption key.
func (k *realmKeys) jwks() []jwk {
	out := make([]jwk, 0, len(k.sig)+len(k.enc))
	for _, s := range k.sig {
		out = append(out, toJWK(s))
	}
	for _, e := range k.enc {
		out = append(out, toJWK(e))
	}
	return out
}

// RotateKeys makes a new RS256 key the realm's signing key and returns its
// kid. The previous keys stay published in the JWKS, so tokens they signed
// keep verifying until RemoveKey retires them.
func (p *Provider) RotateKeys(ctx context.Context, realm string) (string, error) {
	r, err := p.store.RealmByName(ctx, realm)
	if err != nil {
		if errors.Is(err, idpstore.ErrNotFound) {
			return "", fmt.Errorf("%w: %s", ErrUnknownRealm, realm)
		}
		return "", fmt.Errorf("idp: rotate keys: %w", err)
	}
	k, err := newRSAKey(r.ID, r.Name, algRS256, useSig, p.now())
	if err != nil {
		return "", err
	}
	if err := p.store.InsertKey(ctx, k); err != nil {
		return "", fmt.Errorf("idp: rotate keys: %w", err)
	}
	p.keys.forget(r.ID)
	p.log.Info("idp: signing key rotated", zapRealm(realm), zapKID(k.KID))
	return k.KID, nil
}

// RemoveKey deletes a passive key of the realm: it leaves the JWKS, and
// tokens it signed stop verifying. The active signing key cannot be removed.
func (p *Provider) RemoveKey(ctx context.Context, realm, kid string) error {
	r, err := p.store.RealmByName(ctx, realm)
	if err != nil {
		if errors.Is(err, idpstore.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrUnknownRealm, realm)
		}
		return fmt.Errorf("idp: remove key: %w", err)
	}
	keys, err := p.keys.get(ctx, r.ID)
	if err != nil {
		return err
	}
	if keys.activeSig.kid == kid || (keys.activeMAC != nil && keys.activeMAC.kid == kid) {
		return ErrActiveKey
	}
	if err := p.store.DeleteKey(ctx, r.ID, kid); err != nil {
		return fmt.Errorf("idp: remove key %s: %w", kid, err)
	}
	p.keys.forget(r.ID)
	p.log.Info("idp: key removed", zapRealm(realm), zapKID(kid))
	return nil
}

// ClientSecret returns the secret of a confidential client, e.g. to hand a
// service its credentials in the all-in-one process or in tests.
func (p *Provider) ClientSecret(ctx context.Context, realm, clientID string) (string, error) {
	r, err := p.store.RealmByName(ctx, realm)
	if err != nil {
		if errors.Is(err, idpstore.ErrNotFound) {
			return "", fmt.Errorf("%w: %s", ErrUnknownRealm, realm)
		}
		return "", fmt.Errorf("idp: client secret: %w", err)
	}
	c, err := p.store.ClientByClientID(ctx, r.ID, clientID)
	if err != nil {
		return "", fmt.Errorf("idp: client %s: %w", clientID, err)
	}
	return c.Secret, nil
}
