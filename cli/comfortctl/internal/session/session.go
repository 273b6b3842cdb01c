// Package session keeps comfortctl's login between runs: the gateways'
// URLs, how the operator logged in, and the tokens with their expiry, in
// one JSON file readable by its owner only (0600, in a 0700 directory),
// because it holds bearer tokens and, for a client-credentials login, the
// client secret.
package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Grants a session can come from.
const (
	// GrantPassword is a person's login through the auth gateway.
	GrantPassword = "password"
	// GrantClientCredentials is a service account's OAuth 2
	// client-credentials grant at the realm's token endpoint.
	GrantClientCredentials = "client_credentials"
)

// ErrNotFound is returned by Load when there is no session file.
var ErrNotFound = errors.New("session: no session")

// Session is what a login leaves behind.
type Session struct {
	// AuthURL, AdminURL are the auth and admin gateways' base URLs.
	AuthURL  string `json:"auth_url"`
	AdminURL string `json:"admin_url"`
	// Issuer is the realm URL whose token endpoint issues
	// client-credentials tokens.
	Issuer string `json:"issuer,omitempty"`
	// Ops maps a part to its ops listener's base URL, for status.
	Ops map[string]string `json:"ops,omitempty"`
	// Grant is GrantPassword or GrantClientCredentials.
	Grant string `json:"grant"`
	// Username is who logged in with a password.
	Username string `json:"username,omitempty"`
	// ClientID and ClientSecret are the client of a client-credentials
	// login: the secret gets the next token when this one expires.
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
	// AccessToken is the bearer token and Expiry when it expires.
	AccessToken string    `json:"access_token"`
	Expiry      time.Time `json:"expiry"`
	// RefreshToken renews a password login until RefreshExpiry.
	RefreshToken  string    `json:"refresh_token,omitempty"`
	RefreshExpiry time.Time `json:"refresh_expiry,omitzero"`
}

// DefaultPath is the session file under the user's configuration
// directory: $XDG_CONFIG_HOME/comfortctl/session.json on Linux.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("session: %w (set COMFORTCTL_CONFIG)", err)
	}
	return filepath.Join(dir, "comfortctl", "session.json"), nil
}

// Load reads the session at path; ErrNotFound when there is none.
func Load(path string) (*Session, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	var s Session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("session %s: %w", path, err)
	}
	return &s, nil
}

// Save writes s to path, replacing the file whole (a new file renamed
// over the old one) so that a run interrupted half-way leaves the previous
// session, never half of one.
func (s *Session) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	f, err := os.CreateTemp(dir, ".session-*")
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	// CreateTemp makes the file 0600 already; Chmod says it for umasks
	// and systems where that is not so.
	err = errors.Join(f.Chmod(0o600), write(f, b), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("session: %w", err)
	}
	return nil
}

func write(f *os.File, b []byte) error {
	_, err := f.Write(append(b, '\n'))
	return err
}

// Remove deletes the session at path; no session is not an error.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("session: %w", err)
	}
	return nil
}
