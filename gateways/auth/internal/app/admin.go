package app

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// RoleAdmin is the client role of platform administrators.
const RoleAdmin = "admin"

// Page sizes of ListUsers.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// UserFilter selects users for ListUsers.
type UserFilter struct {
	Search    string
	Enabled   *bool
	PageSize  int
	PageToken string
}

// UserPage is one page of users.
type UserPage struct {
	Users         []User
	NextPageToken string
}

// ListUsers returns one page of users matching f.
func (s *Service) ListUsers(ctx context.Context, f UserFilter) (UserPage, error) {
	size := f.PageSize
	switch {
	case size <= 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	first, err := decodePageToken(f.PageToken)
	if err != nil {
		return UserPage{}, err
	}
	// One more than asked tells whether another page follows.
	users, err := s.d.IdP.Users(ctx, UserQuery{Search: f.Search, Enabled: f.Enabled, First: first, Max: size + 1})
	if err != nil {
		return UserPage{}, fmt.Errorf("list users: %w", err)
	}
	page := UserPage{Users: users}
	if len(users) > size {
		page.Users = users[:size]
		page.NextPageToken = encodePageToken(first + size)
	}
	return page, nil
}

// pageTokenPrefix versions the page token format.
const pageTokenPrefix = "o1:"

// encodePageToken makes an opaque token of an offset. Offsets are what the
// identity provider pages by; the token hides that so it can change.
func encodePageToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + strconv.Itoa(offset)))
}

func decodePageToken(tok string) (int, error) {
	if tok == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil && strings.HasPrefix(string(b), pageTokenPrefix) {
		if n, err := strconv.Atoi(strings.TrimPrefix(string(b), pageTokenPrefix)); err == nil && n >= 0 {
			return n, nil
		}
	}
	return 0, invalid("page_token", "is not a token from a previous answer")
}

// GetUser returns one user.
func (s *Service) GetUser(ctx context.Context, id string) (User, error) {
	u, err := s.d.IdP.User(ctx, id)
	if err != nil {
		return User{}, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// SetUserEnabled enables or disables a user on behalf of the admin actorID.
// Disabling also ends the user's sessions where the identity provider
// allows it; in any case the provider refuses the user's refresh tokens
// from then on, so their access ends when the current access token expires.
func (s *Service) SetUserEnabled(ctx context.Context, actorID, id string, enabled bool, reason string) (User, error) {
	if !enabled && actorID == id {
		return User{}, &PreconditionError{Reason: "an admin cannot disable their own account"}
	}
	log := s.logger(ctx).With(zap.String("user_id", id), zap.String("actor_id", actorID))
	if err := s.setEnabled(ctx, log, id, enabled); err != nil {
		return User{}, err
	}
	if !enabled {
		// The reason is free text an admin typed; its length is enough to
		// tell that one was given.
		log.Info("user disabled", zap.Int("reason_len", len(reason)))
	} else {
		log.Info("user enabled")
	}
	return s.GetUser(ctx, id)
}

// setEnabled enables or disables a user; disabling also ends the user's
// sessions where the identity provider allows it (failures only logged).
func (s *Service) setEnabled(ctx context.Context, log *zap.Logger, id string, enabled bool) error {
	if err := s.d.IdP.SetEnabled(ctx, id, enabled); err != nil {
		return fmt.Errorf("set enabled: %w", err)
	}
	if !enabled {
		if err := s.d.IdP.EndSessions(ctx, id); err != nil {
			log.Info("disable user: sessions not ended, they end at their next refresh", zap.Error(err))
		}
	}
	return nil
}

// SetSuspended applies an operator's suspension (suspended true) or
// reinstatement of an account, which the data service announces on
// account.events: the account's user is disabled, its sessions ended, or
// enabled again. A user that no longer exists has nothing to apply, so
// the call is idempotent and may be repeated.
func (s *Service) SetSuspended(ctx context.Context, accountID string, suspended bool) error {
	log := s.logger(ctx).With(zap.String("user_id", accountID))
	err := s.setEnabled(ctx, log, accountID, !suspended)
	switch {
	case errors.Is(err, ErrNotFound):
		log.Info("suspension of an account without a user ignored", zap.Bool("suspended", suspended))
		return nil
	case err != nil:
		return err
	case suspended:
		log.Info("user disabled: account suspended")
	default:
		log.Info("user enabled: account reinstated")
	}
	return nil
}

// DeleteUser deletes a user and their account on behalf of actorID; see
// DeleteMe for the order of the two.
func (s *Service) DeleteUser(ctx context.Context, actorID, id string) error {
	if actorID == id {
		return &PreconditionError{Reason: "an admin cannot delete their own account here; use DELETE /v1/auth/me"}
	}
	if _, err := s.d.IdP.User(ctx, id); err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	if err := s.d.Events.Deleted(ctx, id); err != nil {
		return fmt.Errorf("delete user: %w", asUnavailable(err))
	}
	if err := s.d.IdP.DeleteUser(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete user: %w", err)
	}
	s.logger(ctx).Info("user deleted", zap.String("user_id", id), zap.String("actor_id", actorID))
	return nil
}

// ResetPassword sets a user's password; temporary makes them change it at
// their next interactive login.
func (s *Service) ResetPassword(ctx context.Context, actorID, id, password string, temporary bool) error {
	u, err := s.d.IdP.User(ctx, id)
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	if err := ValidatePassword("new_password", password, u.Username); err != nil {
		return err
	}
	if err := s.d.IdP.SetPassword(ctx, id, password, temporary); err != nil {
		return fmt.Errorf("reset password: %w", remapField(err, "new_password"))
	}
	s.logger(ctx).Info("password reset", zap.String("user_id", id), zap.String("actor_id", actorID),
		zap.Bool("temporary", temporary))
	return nil
}

// ChangeRole grants (grant true) or revokes a client role. An admin cannot
// revoke their own admin role, so the platform never locks its last admin
// out by accident.
func (s *Service) ChangeRole(ctx context.Context, actorID, id, role string, grant bool) (User, error) {
	if role != RoleUser && role != RoleAdmin {
		return User{}, invalid("role", "must be user or admin")
	}
	if !grant && role == RoleAdmin && actorID == id {
		return User{}, &PreconditionError{Reason: "an admin cannot revoke their own admin role"}
	}
	change := s.d.IdP.GrantRole
	if !grant {
		change = s.d.IdP.RevokeRole
	}
	if err := change(ctx, id, role); err != nil {
		return User{}, fmt.Errorf("change role: %w", err)
	}
	s.logger(ctx).Info("role changed", zap.String("user_id", id), zap.String("actor_id", actorID),
		zap.String("role", role), zap.Bool("granted", grant))
	return s.GetUser(ctx, id)
}
