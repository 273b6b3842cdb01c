package secret_test

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/comfortech/platform/services/device/internal/secret"
)

// legacy is an argon2id hash of legacySecret as an earlier version
// stored it (m=64, t=1, p=1).
var legacySecret, legacy = func() (string, string) {
	s := secret.New()
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(s), salt, 1, 64, 1, 32)
	return s, fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}()

func TestHashVerify(t *testing.T) {
	t.Parallel()
	s := secret.New()
	if len(s) != 43 {
		t.Fatalf("secret %q: length %d", s, len(s))
	}
	h := secret.Hash(s)
	cases := []struct {
		name    string
		s, hash string
		ok      bool
		err     bool
	}{
		{"right secret", s, h, true, false},
		{"wrong secret", secret.New(), h, false, false},
		{"empty secret", "", h, false, false},
		{"truncated digest", s, h[:len(h)-2], false, true},
		{"earlier argon2id hash", legacySecret, legacy, true, false},
		{"wrong secret, earlier hash", s, legacy, false, false},
		{"not argon2id", s, "$argon2i$v=19$m=64,t=1,p=1$AAAA$AAAA", false, true},
		{"garbage", s, "plain", false, true},
		{"bad params", s, "$argon2id$v=19$m=64,t=0,p=1$AAAA$AAAA", false, true},
	}
	for _, c := range cases {
		ok, err := secret.Verify(c.s, c.hash)
		if ok != c.ok || (err != nil) != c.err {
			t.Errorf("%s: Verify = %v, %v; want %v, err %v", c.name, ok, err, c.ok, c.err)
		}
	}
	if !strings.HasPrefix(h, "$sha256$") || strings.Contains(h, s) {
		t.Errorf("hash %q", h)
	}
}

// BenchmarkVerify is the cost of a device's connect to its credential check.
func BenchmarkVerify(b *testing.B) {
	s := secret.New()
	h := secret.Hash(s)
	for b.Loop() {
		if ok, err := secret.Verify(s, h); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func TestClaimCode(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$`)
	seen := map[string]bool{}
	for range 100 {
		c := secret.NewClaimCode()
		if !re.MatchString(c) {
			t.Fatalf("claim code %q", c)
		}
		seen[c] = true
	}
	if len(seen) != 100 {
		t.Errorf("only %d distinct codes of 100", len(seen))
	}
}
