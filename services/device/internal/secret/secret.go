// Package secret makes and checks device credentials: MQTT secrets
// (32 random bytes, base64url), their argon2id hashes in the PHC string
// format, and claim codes.
//
// A secret carries 256 bits of entropy, so the KDF does not need to slow
// down guessing the way a password's does; its parameters are kept light
// (DefaultParams) because the broker asks for a verification on every
// connect.
package secret

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	// Memory in KiB.
	Memory uint32
	// Time is the number of passes.
	Time uint32
	// Threads is the parallelism.
	Threads uint8
}

// DefaultParams cost a few milliseconds and 8 MiB per verification.
var DefaultParams = Params{Memory: 8 * 1024, Time: 1, Threads: 1}

// ErrMalformed reports a stored hash that cannot be parsed.
var ErrMalformed = errors.New("secret: malformed hash")

const (
	secretBytes = 32
	saltBytes   = 16
	keyBytes    = 32
)

var b64 = base64.RawStdEncoding

// New returns a fresh random secret, base64url without padding (43
// characters, safe in MQTT passwords and shell arguments).
func New() string {
	return base64.RawURLEncoding.EncodeToString(random(secretBytes))
}

// Hash returns the argon2id hash of s with a random salt, as a PHC string
// ($argon2id$v=19$m=...,t=...,p=...$salt$key) that records its parameters.
func Hash(s string, p Params) string {
	salt := random(saltBytes)
	key := argon2.IDKey([]byte(s), salt, p.Time, p.Memory, p.Threads, keyBytes)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether s matches the PHC hash encoded, in constant time.
func Verify(s, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, ErrMalformed
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, ErrMalformed
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || p.Time == 0 || p.Threads == 0 {
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
	got := argon2.IDKey([]byte(s), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
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
