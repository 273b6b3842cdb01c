package app

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Password length bounds, as in the API contract.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// e164 is a phone number in E.164: a plus, then 8 to 15 digits, the first
// not zero.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// ValidatePhone reports whether phone is in E.164, as a *FieldError on field.
func ValidatePhone(field, phone string) error {
	if !e164.MatchString(phone) {
		return invalid(field, "must be a phone number in E.164 format, e.g. +79516519741")
	}
	return nil
}

// ValidatePassword enforces the password policy on password, for the user
// called username: 8 to 128 characters, at least one letter and one digit,
// and not containing the username (for app users, the phone number's
// digits). The error is a *FieldError on field.
//
// The API contract checks length and character classes too; this check is
// here so that the policy holds whatever the transport, and because only
// the use case knows the username.
func ValidatePassword(field, password, username string) error {
	n := utf8.RuneCountInString(password)
	if n < MinPasswordLen || n > MaxPasswordLen {
		return invalid(field, "must be 8 to 128 characters long")
	}
	var letter, digit bool
	for _, r := range password {
		letter = letter || unicode.IsLetter(r)
		digit = digit || unicode.IsDigit(r)
	}
	if !letter || !digit {
		return invalid(field, "must contain a letter and a digit")
	}
	// A phone number is public knowledge; a password built on it is the
	// first thing a brute force tries.
	if u := strings.ToLower(strings.TrimPrefix(username, "+")); len(u) >= 4 && strings.Contains(strings.ToLower(password), u) {
		return invalid(field, "must not contain the phone number or username")
	}
	return nil
}

// SplitName splits a display name into the identity provider's first and
// last names at the first space, so that FirstName + " " + LastName gives
// the name back (with runs of white space collapsed).
func SplitName(name string) (first, last string) {
	f := strings.Fields(name)
	if len(f) == 0 {
		return "", ""
	}
	return f[0], strings.Join(f[1:], " ")
}
