package keycloak

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Nerzal/gocloak/v13"

	"github.com/comfortech/platform/gateways/auth/internal/app"
)

// Errors of this package that are not the client's doing and so stay
// internal (they map to no app sentinel), but that callers inside the
// package branch on.
var (
	// errServiceToken means the admin API refused the service account's
	// token (401): it is fetched again once.
	errServiceToken = errors.New("keycloak: service token refused")
	// errRoleNotFound means a role mapping named a role the realm does not
	// have (or with another id): the role cache is dropped and the call
	// retried once.
	errRoleNotFound = errors.New("keycloak: role not found")
)

// apiError returns the gocloak error inside err, if any. gocloak reports
// every HTTP failure as *APIError with Type "unknown", so only Code and
// Message tell answers apart (contract §1).
func apiError(err error) (*gocloak.APIError, bool) {
	var ae *gocloak.APIError
	if errors.As(err, &ae) {
		return ae, true
	}
	return nil, false
}

// transport reports errors the identity provider did not answer with a
// client error: no connection (Code 0) or a server error.
func transport(ae *gocloak.APIError) bool {
	return ae.Code == 0 || ae.Code >= 500 || ae.Code == http.StatusTooManyRequests
}

// has reports whether the error message contains s, case-insensitively.
// The message is "<status line>: <error>: <errorMessage>:
// <error_description>" with empty parts left out.
func has(ae *gocloak.APIError, s string) bool {
	return strings.Contains(strings.ToLower(ae.Message), strings.ToLower(s))
}

// loginError maps an answer of the password grant (contract §5).
func loginError(err error) error {
	if err == nil {
		return nil
	}
	ae, ok := apiError(err)
	switch {
	case !ok:
		return fmt.Errorf("%w: keycloak login: %w", app.ErrUnavailable, err)
	case transport(ae):
		return fmt.Errorf("%w: keycloak login: %s", app.ErrUnavailable, ae.Message)
	// Disabled is checked before the password by Keycloak, so this answer
	// does not reveal whether the password was right.
	case has(ae, "account disabled"), has(ae, "user disabled"):
		return fmt.Errorf("%w: %s", app.ErrAccountDisabled, ae.Message)
	case has(ae, "not fully set up"):
		return fmt.Errorf("%w: %s", app.ErrAccountNotReady, ae.Message)
	// Wrong password: 401. Unknown user: 401 in Keycloak 26, 400 in newer
	// versions; both invalid_grant "Invalid user credentials". Any other
	// invalid_grant (e.g. a brute-force lock, "Account temporarily
	// disabled") is treated alike, so nothing tells users apart.
	case has(ae, "invalid_grant"), has(ae, "invalid user credentials"):
		return fmt.Errorf("%w: %s", app.ErrInvalidCredentials, ae.Message)
	}
	// invalid_client, unauthorized_client, unknown realm, direct grants
	// disabled: the gateway's configuration, not the user's mistake.
	return fmt.Errorf("keycloak login: %s", ae.Message)
}

// refreshError maps an answer of the refresh grant or of logout (contract
// §5): every invalid_grant means the token or its session is no good.
func refreshError(op string, err error) error {
	if err == nil {
		return nil
	}
	ae, ok := apiError(err)
	switch {
	case !ok:
		return fmt.Errorf("%w: keycloak %s: %w", app.ErrUnavailable, op, err)
	case transport(ae):
		return fmt.Errorf("%w: keycloak %s: %s", app.ErrUnavailable, op, ae.Message)
	case has(ae, "user disabled"), has(ae, "account disabled"):
		return fmt.Errorf("%w: %s", app.ErrAccountDisabled, ae.Message)
	case has(ae, "invalid_grant"), has(ae, "no refresh token"):
		return fmt.Errorf("%w: %s", app.ErrInvalidToken, ae.Message)
	}
	return fmt.Errorf("keycloak %s: %s", op, ae.Message)
}

// adminError maps an answer of the admin API (contract §5).
func adminError(op string, err error) error {
	if err == nil {
		return nil
	}
	ae, ok := apiError(err)
	switch {
	case !ok:
		return fmt.Errorf("%w: keycloak %s: %w", app.ErrUnavailable, op, err)
	case transport(ae):
		return fmt.Errorf("%w: keycloak %s: %s", app.ErrUnavailable, op, ae.Message)
	case ae.Code == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s: %s", errServiceToken, op, ae.Message)
	case ae.Code == http.StatusNotFound && has(ae, "user not found"):
		return fmt.Errorf("%w: %s: %s", app.ErrNotFound, op, ae.Message)
	case ae.Code == http.StatusNotFound && (has(ae, "role not found") || has(ae, "could not find role")):
		return fmt.Errorf("%w: %s: %s", errRoleNotFound, op, ae.Message)
	case ae.Code == http.StatusConflict && has(ae, "same email"):
		return &app.ConflictError{Field: "email"}
	case ae.Code == http.StatusConflict:
		return &app.ConflictError{Field: "phone"}
	case ae.Code == http.StatusBadRequest && (has(ae, "invalidpassword") || has(ae, "invalid password")):
		return &app.FieldError{Field: "password", Reason: "is refused by the password policy: " + lastPart(ae.Message)}
	}
	// 403 (the service account lacks a realm-management role), unknown
	// realm or client, a 400 for a request we built: configuration or bugs.
	return fmt.Errorf("keycloak %s: %s", op, ae.Message)
}

// lastPart returns the error_description of a gocloak message.
func lastPart(msg string) string {
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}
