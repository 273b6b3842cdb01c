package idp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/crypto/argon2"
)

// HashParams are the argon2id parameters for new password hashes. Stored
// hashes carry their own parameters (PHC string format), so changing these
// only affects passwords set afterwards.
type HashParams struct {
	// Memory is in KiB.
	Memory uint32
	// Iterations is argon2's time cost.
	Iterations uint32
	// Parallelism is the number of lanes.
	Parallelism uint8
}

// DefaultHashParams follow OWASP's argon2id recommendation (19 MiB, two
// passes, one lane): tens of milliseconds per login, which is what makes an
// offline guess expensive.
var DefaultHashParams = HashParams{Memory: 19 * 1024, Iterations: 2, Parallelism: 1}

// CheapHashParams are for tests only: they keep the code path (argon2id,
// salt, constant-time compare) but cost microseconds.
var CheapHashParams = HashParams{Memory: 64, Iterations: 1, Parallelism: 1}

const (
	saltLen = 16
	keyLen  = 32
)

var errBadHash = errors.New("malformed password hash")

// hashPassword returns the PHC-format argon2id hash of password.
func hashPassword(password string, p HashParams) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("idp: password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Iterations,
		p.Parallelism, base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// verifyPassword reports whether password matches the PHC-format hash; the
// comparison is constant-time.
func verifyPassword(password, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var p HashParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Iterations, &p.Parallelism); err != nil {
		return false, errBadHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// policyError is a password-policy violation, answered as Keycloak does:
// 400 {"error":"<message key>","error_description":"<English text>"}.
type policyError struct {
	key, text string
}

// Error returns the English text of the violation.
func (e *policyError) Error() string { return e.text }

// checkPasswordPolicy applies the realm's Keycloak password policy string
// ("length(8) and digits(1) and notUsername") to password. Policies this
// provider does not know (hashAlgorithm, passwordHistory, regexPattern...)
// are ignored; known ones are checked in the order they are written, as
// Keycloak does, and the first violation is returned.
func checkPasswordPolicy(policy, password, username, email string) *policyError {
	if strings.TrimSpace(policy) == "" {
		return nil
	}
	for _, term := range strings.Split(policy, " and ") {
		name, arg := parsePolicyTerm(strings.TrimSpace(term))
		// count returns the term's number (def when absent) and how many
		// runes of the password satisfy pred.
		count := func(def int, pred func(rune) bool) (int, int) {
			n := def
			if v, err := strconv.Atoi(arg); err == nil {
				n = v
			}
			c := 0
			for _, r := range password {
				if pred == nil || pred(r) {
					c++
				}
			}
			return n, c
		}
		switch name {
		case "length":
			if n, c := count(8, nil); c < n {
				return &policyError{"invalidPasswordMinLengthMessage", fmt.Sprintf("Invalid password: minimum length %d.", n)}
			}
		case "maxLength":
			if n, c := count(64, nil); c > n {
				return &policyError{"invalidPasswordMaxLengthMessage", fmt.Sprintf("Invalid password: maximum length %d.", n)}
			}
		case "digits":
			if n, c := count(1, unicode.IsDigit); c < n {
				return &policyError{"invalidPasswordMinDigitsMessage", fmt.Sprintf("Invalid password: must contain at least %d numerical digits.", n)}
			}
		case "lowerCase":
			if n, c := count(1, unicode.IsLower); c < n {
				return &policyError{"invalidPasswordMinLowerCaseCharsMessage", fmt.Sprintf("Invalid password: must contain at least %d lower case characters.", n)}
			}
		case "upperCase":
			if n, c := count(1, unicode.IsUpper); c < n {
				return &policyError{"invalidPasswordMinUpperCaseCharsMessage", fmt.Sprintf("Invalid password: must contain at least %d upper case characters.", n)}
			}
		case "specialChars":
			special := func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }
			if n, c := count(1, special); c < n {
				return &policyError{"invalidPasswordMinSpecialCharsMessage", fmt.Sprintf("Invalid password: must contain at least %d special characters.", n)}
			}
		case "notUsername":
			if username != "" && strings.EqualFold(password, username) {
				return &policyError{"invalidPasswordNotUsernameMessage", "Invalid password: must not be equal to the username."}
			}
		case "notEmail":
			if email != "" && strings.EqualFold(password, email) {
				return &policyError{"invalidPasswordNotEmailMessage", "Invalid password: must not be equal to the email."}
			}
		}
	}
	return nil
}

// parsePolicyTerm splits "digits(1)" into "digits" and "1".
func parsePolicyTerm(term string) (name, arg string) {
	open := strings.IndexByte(term, '(')
	if open < 0 || !strings.HasSuffix(term, ")") {
		return term, ""
	}
	return term[:open], term[open+1 : len(term)-1]
}
