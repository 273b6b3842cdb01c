package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/logging"
)

// RoleUser is the client role every registered user gets.
const RoleUser = "user"

// Registration is what a new user gives.
type Registration struct {
	Phone, Password string
	// Name, Email, Locale and Timezone are optional.
	Name, Email, Locale, Timezone string
	// ClientIP is the caller's address, for rate limiting.
	ClientIP string
}

// Register creates an enabled user with role user and the given password,
// announces the account with an AccountRegistered event, and logs the user
// in. A user is never left behind without its event: when any step after
// the creation fails, the user is deleted again.
func (s *Service) Register(ctx context.Context, r Registration) (Tokens, error) {
	if err := ValidatePhone("phone", r.Phone); err != nil {
		return Tokens{}, err
	}
	if err := ValidatePassword("password", r.Password, r.Phone); err != nil {
		return Tokens{}, err
	}
	if err := s.limit("register", r.Phone, r.ClientIP); err != nil {
		return Tokens{}, err
	}
	first, last := SplitName(r.Name)
	id, err := s.d.IdP.CreateUser(ctx, NewUser{Username: r.Phone, FirstName: first, LastName: last, Email: strings.ToLower(r.Email)})
	if err != nil {
		return Tokens{}, fmt.Errorf("register: %w", err)
	}
	log := s.logger(ctx).With(logging.AccountID(id), logging.Phone("phone", r.Phone))
	if err := s.completeRegistration(ctx, id, r); err != nil {
		// Compensate with a fresh context: the caller's may be what failed.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), compensationTimeout)
		defer cancel()
		if derr := s.d.IdP.DeleteUser(cctx, id); derr != nil && !errors.Is(derr, ErrNotFound) {
			log.Error("registration failed and the user could not be deleted: it has no account",
				zap.NamedError("cause", err), zap.Error(derr))
		} else {
			log.Warn("registration failed, user deleted again", zap.Error(err))
		}
		// A publish that timed out may still be delivered; the deletion
		// event, ordered after it on the same key, lets consumers undo it.
		if errors.Is(err, ErrUnavailable) {
			if perr := s.d.Events.Deleted(cctx, id); perr != nil {
				log.Debug("registration failed: AccountDeleted not published either", zap.Error(perr))
			}
		}
		return Tokens{}, fmt.Errorf("register: %w", err)
	}
	log.Info("user registered")
	t, err := s.d.IdP.Login(ctx, r.Phone, r.Password)
	if err != nil {
		// The user and the account exist; only the first login failed. The
		// client may log in.
		return Tokens{}, fmt.Errorf("register: log in the new user: %w", asUnavailable(err))
	}
	return t, nil
}

// compensationTimeout bounds the deletion of a half-registered user.
const compensationTimeout = 10 * time.Second

func (s *Service) completeRegistration(ctx context.Context, id string, r Registration) error {
	if err := s.d.IdP.GrantRole(ctx, id, RoleUser); err != nil {
		return err
	}
	if err := s.d.IdP.SetPassword(ctx, id, r.Password, false); err != nil {
		return err
	}
	acc := RegisteredAccount{
		AccountID: id, Phone: r.Phone, Name: strings.Join(strings.Fields(r.Name), " "), Email: strings.ToLower(r.Email),
		Locale: orDefault(r.Locale, s.cfg.DefaultLocale), Timezone: orDefault(r.Timezone, s.cfg.DefaultTimezone),
		Time: s.now(),
	}
	if err := s.d.Events.Registered(ctx, acc); err != nil {
		return asUnavailable(err)
	}
	return nil
}

// Login exchanges a username (a phone, or an admin's login name) and a
// password for tokens.
func (s *Service) Login(ctx context.Context, username, password, clientIP string) (Tokens, error) {
	if err := s.limit("login", strings.ToLower(username), clientIP); err != nil {
		return Tokens{}, err
	}
	t, err := s.d.IdP.Login(ctx, username, password)
	if err != nil {
		if errors.Is(err, ErrInvalidCredentials) {
			s.logger(ctx).Info("login refused", logging.Phone("username", username))
		}
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	return t, nil
}

// Refresh exchanges a refresh token for new tokens.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	t, err := s.d.IdP.Refresh(ctx, refreshToken)
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	return t, nil
}

// Logout ends the session of a refresh token.
func (s *Service) Logout(ctx context.Context, refreshToken string) error {
	if err := s.d.IdP.Logout(ctx, refreshToken); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// Me returns the caller's user.
func (s *Service) Me(ctx context.Context, id string) (User, error) {
	u, err := s.d.IdP.User(ctx, id)
	if err != nil {
		return User{}, fmt.Errorf("me: %w", err)
	}
	return u, nil
}

// Caller is the authenticated user a call acts for.
type Caller struct {
	// ID is the token's sub.
	ID string
	// Username is the token's preferred_username.
	Username string
}

// ChangePassword checks the caller's current password with a login, then
// sets the new one.
func (s *Service) ChangePassword(ctx context.Context, c Caller, current, next string) error {
	if err := ValidatePassword("new_password", next, c.Username); err != nil {
		return err
	}
	if current == next {
		return invalid("new_password", "must differ from the current password")
	}
	// Per account: a stolen access token must not become a password oracle.
	if err := s.limit("password", c.ID, ""); err != nil {
		return err
	}
	t, err := s.d.IdP.Login(ctx, c.Username, current)
	switch {
	case errors.Is(err, ErrInvalidCredentials):
		// Not 401: the caller's token is fine, and a 401 would make a client
		// throw its session away.
		return invalid("current_password", "is not correct")
	case err != nil:
		return fmt.Errorf("change password: check current: %w", err)
	}
	// The check opened a session; close it so that it does not linger.
	if err := s.d.IdP.Logout(ctx, t.RefreshToken); err != nil {
		s.logger(ctx).Debug("change password: ending the check session failed", zap.Error(err))
	}
	if err := s.d.IdP.SetPassword(ctx, c.ID, next, false); err != nil {
		return fmt.Errorf("change password: %w", remapField(err, "new_password"))
	}
	s.logger(ctx).Info("password changed")
	return nil
}

// DeleteMe deletes the caller's user and, through an AccountDeleted event,
// their account. The event goes first: should the deletion in the identity
// provider then fail, the user can still log in and retry, whereas the
// other order could leave personal data behind with no one able to ask for
// its deletion again.
func (s *Service) DeleteMe(ctx context.Context, id string) error {
	if err := s.d.Events.Deleted(ctx, id); err != nil {
		return fmt.Errorf("delete me: %w", asUnavailable(err))
	}
	if err := s.d.IdP.DeleteUser(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete me: %w", err)
	}
	s.logger(ctx).Info("user deleted their account")
	return nil
}

// asUnavailable keeps errors that already carry a sentinel and marks the
// rest (a failed publish) as ErrUnavailable.
func asUnavailable(err error) error {
	for _, sentinel := range []error{ErrUnavailable, ErrInvalid, ErrNotFound, ErrAlreadyExists, ErrInvalidCredentials,
		ErrAccountDisabled, ErrAccountNotReady, ErrInvalidToken, ErrPrecondition, ErrRateLimited} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// remapField moves a provider's password-policy refusal onto field.
func remapField(err error, field string) error {
	var fe *FieldError
	if errors.As(err, &fe) && fe.Field != field {
		return &FieldError{Field: field, Reason: fe.Reason}
	}
	return err
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
