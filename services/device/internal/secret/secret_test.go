package secret_test

import (
	"regexp"
	"testing"

	"github.com/comfortech/platform/services/device/internal/secret"
)

var cheap = secret.Params{Memory: 64, Time: 1, Threads: 1}

func TestHashVerify(t *testing.T) {
	t.Parallel()
	s := secret.New()
	if len(s) != 43 {
		t.Fatalf("secret %q: length %d", s, len(s))
	}
	h := secret.Hash(s, cheap)
	cases := []struct {
		name    string
		s, hash string
		ok      bool
		err     bool
	}{
		{"right secret", s, h, true, false},
		{"wrong secret", secret.New(), h, false, false},
		{"empty secret", "", h, false, false},
		{"default params", s, secret.Hash(s, secret.DefaultParams), true, false},
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
	if secret.Hash(s, cheap) == h {
		t.Error("two hashes of one secret are equal: salt not random")
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
