package comfortctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
	"golang.org/x/term"

	"github.com/comfortech/platform/cli/comfortctl/internal/session"
	"github.com/comfortech/platform/libs/apiclient"
	"github.com/comfortech/platform/libs/auth"
)

// earlyRefresh is how long before its expiry an access token is renewed,
// so that it does not expire between here and the gateway.
const earlyRefresh = 30 * time.Second

// errNotLoggedIn is returned by commands that need a session when there is
// none.
var errNotLoggedIn = errors.New("not logged in: run comfortctl login")

// sessionState is the session of this run and where it is kept.
type sessionState struct {
	mu   sync.Mutex
	path string
	// s is nil when no one is logged in.
	s *session.Session
}

// sessionPath resolves the session file: --config, COMFORTCTL_CONFIG, or
// the default under the user's configuration directory.
func (a *app) sessionPath() (string, error) {
	if a.configPath != "" {
		return a.configPath, nil
	}
	if p := a.getenv("COMFORTCTL_CONFIG"); p != "" {
		return p, nil
	}
	return session.DefaultPath()
}

// session loads the session file once per run.
func (a *app) session() (*sessionState, error) {
	if a.sess != nil {
		return a.sess, nil
	}
	path, err := a.sessionPath()
	if err != nil {
		return nil, err
	}
	s, err := session.Load(path)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		return nil, err
	}
	a.sess = &sessionState{path: path, s: s}
	return a.sess, nil
}

// saved returns the saved session, or an empty one, for settings.
func (a *app) saved() session.Session {
	st, err := a.session()
	if err != nil || st.s == nil {
		return session.Session{}
	}
	return *st.s
}

// Resolved settings: flag, environment, session, default.
func (a *app) authBase() string {
	return a.setting(a.authURL, "COMFORTCTL_AUTH_URL", a.saved().AuthURL, defaultAuthURL)
}

func (a *app) adminBase() string {
	return a.setting(a.adminURL, "COMFORTCTL_ADMIN_URL", a.saved().AdminURL, defaultAdminURL)
}

func (a *app) issuerURL() string {
	return a.setting(a.issuer, "COMFORTCTL_ISSUER", a.saved().Issuer, defaultIssuer)
}

// adminAPI is the admin gateway, called with the session's token.
func (a *app) adminAPI() *apiclient.Client {
	return &apiclient.Client{BaseURL: a.adminBase(), HTTP: a.http, Token: a.token}
}

// token returns the session's access token, renewed first when it is about
// to expire: through the auth gateway's refresh for a password login, with
// a new client-credentials grant for a service account. The renewed session
// is saved.
func (a *app) token(ctx context.Context) (string, error) {
	st, err := a.session()
	if err != nil {
		return "", err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.s
	if s == nil || s.AccessToken == "" {
		return "", errNotLoggedIn
	}
	now := time.Now()
	if now.Add(earlyRefresh).Before(s.Expiry) {
		return s.AccessToken, nil
	}
	renewed := *s
	switch s.Grant {
	case session.GrantClientCredentials:
		if err := a.clientCredentials(ctx, &renewed); err != nil {
			return "", fmt.Errorf("renew the %s token: %w", s.ClientID, err)
		}
	default:
		if s.RefreshToken == "" || !now.Before(s.RefreshExpiry) {
			return "", fmt.Errorf("the session of %s has expired: run comfortctl login", s.Username)
		}
		var t tokens
		api := &apiclient.Client{BaseURL: s.AuthURL, HTTP: a.http}
		if err := api.Do(ctx, http.MethodPost, "/v1/auth/refresh", nil, map[string]string{"refresh_token": s.RefreshToken}, &t); err != nil {
			return "", fmt.Errorf("renew the session of %s (run comfortctl login if it has ended): %w", s.Username, err)
		}
		t.apply(&renewed, now)
	}
	if err := renewed.Save(st.path); err != nil {
		return "", err
	}
	st.s = &renewed
	return renewed.AccessToken, nil
}

// tokens is the auth gateway's login and refresh answer.
type tokens struct {
	AccessToken      string `json:"access_token"`
	RefreshToken     string `json:"refresh_token"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
}

// apply stores t in s, with expiries counted from now (when it was asked).
func (t tokens) apply(s *session.Session, now time.Time) {
	s.AccessToken, s.RefreshToken = t.AccessToken, t.RefreshToken
	s.Expiry = now.Add(time.Duration(t.ExpiresIn) * time.Second)
	s.RefreshExpiry = now.Add(time.Duration(t.RefreshExpiresIn) * time.Second)
}

// clientCredentials gets s a new token with its client's credentials at
// s.Issuer's token endpoint.
func (a *app) clientCredentials(ctx context.Context, s *session.Session) error {
	src, err := auth.NewTokenSource(auth.ClientCredentialsConfig{
		Issuer: s.Issuer, ClientID: s.ClientID, ClientSecret: s.ClientSecret, HTTPClient: a.http,
	})
	if err != nil {
		return err
	}
	t, err := src.Token()
	if err != nil {
		// The realm's own words ("unauthorized_client: Invalid client or
		// Invalid client credentials") say more than oauth2's wrapping.
		if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok && re.ErrorCode != "" {
			return fmt.Errorf("%s: %s: %s", s.Issuer, re.ErrorCode, re.ErrorDescription)
		}
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.AccessToken, s.RefreshToken, s.Expiry, s.RefreshExpiry = t.AccessToken, "", t.Expiry, time.Time{}
	return nil
}

func (a *app) loginCommand() *cobra.Command {
	var (
		username, clientID       string
		passwordStdin, secretStd bool
	)
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in as an administrator (password) or as a service-account client (client credentials)",
		Long: `Log in and keep the session (gateway URLs, tokens, expiry) in a file only
you can read: --config, COMFORTCTL_CONFIG, or <user config dir>/comfortctl/session.json.
Later commands renew the access token when it expires.

  comfortctl login                          # user admin, password prompted without echo
  comfortctl login --username ops1 --password-stdin < pw.txt
  comfortctl login --client-id comfortech-ops --client-secret-stdin < secret.txt
  COMFORTCTL_CLIENT_SECRET=... comfortctl login --client-id comfortech-ops

A password login goes through the auth gateway (POST /v1/auth/login); a
client-credentials login asks the realm's token endpoint (--issuer) and keeps
the client secret in the session file to get the next token.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if passwordStdin && secretStd {
				return usagef("--password-stdin and --client-secret-stdin: stdin holds one of them")
			}
			if secretStd && clientID == "" {
				return usagef("--client-secret-stdin needs --client-id")
			}
			saved := a.saved()
			s := &session.Session{AuthURL: a.authBase(), AdminURL: a.adminBase(), Issuer: a.issuerURL(), Ops: a.opsSetting(saved)}
			now := time.Now()
			if clientID != "" {
				if cmd.Flags().Changed("username") || passwordStdin {
					return usagef("--client-id logs a client in: --username and --password-stdin do not apply")
				}
				secret, err := a.clientSecret(secretStd)
				if err != nil {
					return err
				}
				s.Grant, s.ClientID, s.ClientSecret = session.GrantClientCredentials, clientID, secret
				if err := a.clientCredentials(cmd.Context(), s); err != nil {
					return fmt.Errorf("login as %s: %w", clientID, err)
				}
			} else {
				password, err := a.password(username, passwordStdin)
				if err != nil {
					return err
				}
				var t tokens
				api := &apiclient.Client{BaseURL: s.AuthURL, HTTP: a.http}
				if err := api.Do(cmd.Context(), http.MethodPost, "/v1/auth/login", nil,
					map[string]string{"username": username, "password": password}, &t); err != nil {
					return fmt.Errorf("login as %s: %w", username, err)
				}
				s.Grant, s.Username = session.GrantPassword, username
				t.apply(s, now)
			}
			st, err := a.session()
			if err != nil {
				return err
			}
			if err := s.Save(st.path); err != nil {
				return err
			}
			st.s = s
			who := s.Username
			if who == "" {
				who = s.ClientID
			}
			return a.print(loginResult{Who: who, Grant: s.Grant, AdminURL: s.AdminURL, Expiry: s.Expiry.UTC(), Session: st.path},
				func(w io.Writer) {
					fmt.Fprintf(w, "Logged in as %s (%s) for %s; the token is renewed when it expires (%s).\nSession: %s\n",
						who, s.Grant, s.AdminURL, s.Expiry.Local().Format(time.RFC3339), st.path)
				})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&username, "username", "u", "admin", "administrator to log in as")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin instead of prompting")
	f.StringVar(&clientID, "client-id", "", "log in as this confidential client (client-credentials grant), e.g. comfortech-ops")
	f.BoolVar(&secretStd, "client-secret-stdin", false, "read the client secret from stdin (default: env COMFORTCTL_CLIENT_SECRET)")
	return cmd
}

// loginResult is login's JSON output: never the tokens.
type loginResult struct {
	Who      string    `json:"who"`
	Grant    string    `json:"grant"`
	AdminURL string    `json:"admin_url"`
	Expiry   time.Time `json:"expiry"`
	Session  string    `json:"session"`
}

// password reads the password from stdin (--password-stdin) or prompts for
// it on the terminal without echo.
func (a *app) password(username string, fromStdin bool) (string, error) {
	if fromStdin {
		return readSecret(a.stdin, "password")
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usagef("no terminal to ask the password on: use --password-stdin")
	}
	fmt.Fprintf(a.stderr, "Password for %s: ", username)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if len(b) == 0 {
		return "", errors.New("empty password")
	}
	return string(b), nil
}

// clientSecret reads the client secret from stdin or COMFORTCTL_CLIENT_SECRET.
func (a *app) clientSecret(fromStdin bool) (string, error) {
	if fromStdin {
		return readSecret(a.stdin, "client secret")
	}
	if v := a.getenv("COMFORTCTL_CLIENT_SECRET"); v != "" {
		return v, nil
	}
	return "", usagef("--client-id needs the secret: --client-secret-stdin or env COMFORTCTL_CLIENT_SECRET")
}

// readSecret reads the first line of r.
func readSecret(r io.Reader, what string) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the %s from stdin: %w", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("read the %s from stdin: empty", what)
	}
	return line, nil
}

func (a *app) logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End the session and delete the session file",
		Long: `End the session: a password login's session ends at the auth gateway
(POST /v1/auth/logout), so its refresh token stops working; the session file
is deleted in every case. Logging out when no one is logged in succeeds.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.session()
			if err != nil {
				return err
			}
			if st.s == nil {
				fmt.Fprintln(a.stderr, "Not logged in.")
				return nil
			}
			var remote error
			if st.s.Grant == session.GrantPassword && st.s.RefreshToken != "" {
				api := &apiclient.Client{BaseURL: st.s.AuthURL, HTTP: a.http}
				remote = api.Do(cmd.Context(), http.MethodPost, "/v1/auth/logout", nil, map[string]string{"refresh_token": st.s.RefreshToken}, nil)
			}
			if err := session.Remove(st.path); err != nil {
				return err
			}
			st.s = nil
			if remote != nil {
				return fmt.Errorf("the session file is deleted, but the auth gateway did not end the session: %w", remote)
			}
			fmt.Fprintln(a.stderr, "Logged out.")
			return nil
		},
	}
}
