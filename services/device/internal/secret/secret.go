// Package secret makes and checks device credentials: MQTT secrets
// (32 random bytes, base64url), their stored hashes, and claim codes.
//
// A secret carries 256 bits of entropy, so nobody can guess it from its
// hash whatever the hash costs: a slow, memory-hard KDF (argon2id, right
// for people's passwords) would only slow down every device's connect —
// the broker asks for a verification on each one, and a broker restart
// reconnects the whole fleet at once. Secrets are stored as SHA-256
// ($sha256$digest); argon2id hashes stored by earlier versions
// ($argon2id$...) still verify.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrMalformed reports a stored hash that cannot be parsed.
var ErrMalformed = errors.New("secret: malformed hash")

const secretBytes = 32

var b64 = base64.RawStdEncoding

// sha256Prefix starts the hashes Hash makes.
const sha256Prefix = "$sha256$"

// New returns a fresh random secret, base64url without padding (43
// characters, safe in MQTT passwords and shell arguments).
func New() string {
	return base64.RawURLEncoding.EncodeToString(random(secretBytes))
}

// Hash returns the stored form of s: $sha256$ and the base64 digest.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return sha256Prefix + b64.EncodeToString(sum[:])
}

// Verify reports whether s matches the stored hash encoded, in constant
// time: a SHA-256 hash from Hash, or an argon2id PHC string of an earlier
// version.
func Verify(s, encoded string) (bool, error) {
	if digest, ok := strings.CutPrefix(encoded, sha256Prefix); ok {
		want, err := b64.DecodeString(digest)
		if err != nil || len(want) != sha256.Size {
			return false, ErrMalformed
		}
		got := sha256.Sum256([]byte(s))
		return subtle.ConstantTimeCompare(got[:], want) == 1, nil
	}
	return verifyArgon2id(s, encoded)
}

// verifyArgon2id checks s against an argon2id PHC string
// ($argon2id$v=19$m=...,t=...,p=...$salt$key).
func verifyArgon2id(s, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, ErrMalformed
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, ErrMalformed
	}
	var memory, time uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &time, &threads); err != nil || time == 0 || threads == 0 {
		return false, ErrMalformed
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, ErrMalformed
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) == 0 {
		return false, ErrMalformed
	}
	got := argon2.IDKey([]byte(s), salt, time, memory, threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// claimAlphabet has 32 symbols without look-alikes (no I, O, 0, 1), so
// a random byte masked to 5 bits picks one without bias.
const claimAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// NewClaimCode returns a random claim code of 12 symbols (60 bits) in
// groups of four, e.g. "K7QM-2XHD-R9TB", to print on the box.
func NewClaimCode() string {
	b := random(12)
	var sb strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(claimAlphabet[c&31])
	}
	return sb.String()
}

// random returns n bytes from crypto/rand, which never fails.
func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
