package idp

import (
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := hashPassword("correct horse 1", CheapHashParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash = %s", h)
	}
	h2, _ := hashPassword("correct horse 1", CheapHashParams)
	if h == h2 {
		t.Fatal("same hash twice: no salt")
	}
	tests := []struct {
		name, password, hash string
		ok                   bool
		err                  bool
	}{
		{"right", "correct horse 1", h, true, false},
		{"wrong", "correct horse 2", h, false, false},
		{"empty", "", h, false, false},
		{"not argon2id", "x", "$2a$10$abc", false, true},
		{"bad params", "x", "$argon2id$v=19$m=x$c2FsdA$aGFzaA", false, true},
		{"bad version", "x", "$argon2id$v=16$m=64,t=1,p=1$c2FsdA$aGFzaA", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, err := verifyPassword(tc.password, tc.hash)
			if ok != tc.ok || (err != nil) != tc.err {
				t.Fatalf("verify = %v, %v", ok, err)
			}
		})
	}
}

func TestPasswordPolicy(t *testing.T) {
	t.Parallel()
	const policy = "length(8) and digits(1) and notUsername and upperCase(1) and specialChars(1) and notEmail and maxLength(20) and lowerCase(2) and passwordHistory(3)"
	tests := []struct {
		password, key string
	}{
		{"Abcdef1!", ""},
		{"Ab1!", "invalidPasswordMinLengthMessage"},
		{"Abcdefg!", "invalidPasswordMinDigitsMessage"},
		{"+79001234567aA!", "invalidPasswordNotUsernameMessage"},
		{"abcdefg1!", "invalidPasswordMinUpperCaseCharsMessage"},
		{"Abcdefg12", "invalidPasswordMinSpecialCharsMessage"},
		{"A@example.com1", "invalidPasswordNotEmailMessage"},
		{"Abcdefghijklmnopqrst1!", "invalidPasswordMaxLengthMessage"},
		{"ABCDEFg1!", "invalidPasswordMinLowerCaseCharsMessage"},
	}
	for _, tc := range tests {
		t.Run(tc.password, func(t *testing.T) {
			t.Parallel()
			pe := checkPasswordPolicy(policy, tc.password, "+79001234567aa!", "a@example.com1")
			switch {
			case tc.key == "" && pe != nil:
				t.Fatalf("rejected: %v", pe)
			case tc.key != "" && (pe == nil || pe.key != tc.key):
				t.Fatalf("got %v, want %s", pe, tc.key)
			}
		})
	}
	if pe := checkPasswordPolicy("length(8) and digits(1) and notUsername", "short", "u", ""); pe == nil ||
		pe.text != "Invalid password: minimum length 8." {
		t.Fatalf("message = %v", pe)
	}
	if pe := checkPasswordPolicy("", "x", "x", ""); pe != nil {
		t.Fatalf("empty policy rejected: %v", pe)
	}
}

func TestKIDKeepsHeaderStandardBase64(t *testing.T) {
	t.Parallel()
	for range 50 {
		for _, alg := range []string{algRS256, algHS512} {
			kid, err := newKID(alg)
			if err != nil {
				t.Fatal(err)
			}
			if enc := b64(jwsHeader(alg, kid)); strings.ContainsAny(enc, "-_") {
				t.Fatalf("header %s", enc)
			}
		}
	}
}
