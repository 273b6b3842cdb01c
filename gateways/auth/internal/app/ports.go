package app

import (
	"context"
	"time"
)

// Tokens are what a successful login, registration or refresh answers.
type Tokens struct {
	AccessToken      string
	RefreshToken     string
	ExpiresIn        int
	RefreshExpiresIn int
	TokenType        string
}

// User is an identity-provider user as the gateway shows it.
type User struct {
	ID            string
	Username      string
	FirstName     string
	LastName      string
	Email         string
	Enabled       bool
	PhoneVerified bool
	// Roles are the user's client roles on the application client.
	Roles     []string
	CreatedAt time.Time
}

// Name is the display name: first and last name joined.
func (u User) Name() string {
	switch {
	case u.FirstName == "":
		return u.LastName
	case u.LastName == "":
		return u.FirstName
	}
	return u.FirstName + " " + u.LastName
}

// NewUser describes a user to create.
type NewUser struct {
	Username  string
	FirstName string
	LastName  string
	Email     string
}

// UserQuery selects a page of users.
type UserQuery struct {
	// Search is a substring of username, name or e-mail; empty lists all.
	Search string
	// Enabled, when set, keeps only enabled (true) or disabled users.
	Enabled *bool
	// First is the offset of the page, Max its size.
	First, Max int
}

// AttrPhoneVerified is the identity-provider user attribute set to "true"
// once the phone number was verified by a one-time code.
const AttrPhoneVerified = "phone_verified"

// IdentityProvider is what the use cases need from Keycloak. Every error
// wraps one of the sentinel errors of this package, or is an internal
// error (a misconfiguration, an answer outside the contract).
type IdentityProvider interface {
	// Login runs the password grant for a user of the application client.
	// ErrInvalidCredentials, ErrAccountDisabled, ErrAccountNotReady.
	Login(ctx context.Context, username, password string) (Tokens, error)
	// Refresh exchanges a refresh token. ErrInvalidToken, ErrAccountDisabled.
	Refresh(ctx context.Context, refreshToken string) (Tokens, error)
	// Logout ends the session of a refresh token. ErrInvalidToken.
	Logout(ctx context.Context, refreshToken string) error

	// CreateUser creates an enabled user and returns its id. ErrAlreadyExists.
	CreateUser(ctx context.Context, u NewUser) (string, error)
	// SetPassword replaces the user's password; temporary makes the user
	// change it at the next interactive login. ErrNotFound, or a
	// *FieldError on "password" when the provider's policy refuses it.
	SetPassword(ctx context.Context, id, password string, temporary bool) error
	// User returns one user with its roles. ErrNotFound.
	User(ctx context.Context, id string) (User, error)
	// UserByUsername returns the user with exactly this username. ErrNotFound.
	UserByUsername(ctx context.Context, username string) (User, error)
	// Users returns one page of users, with their roles.
	Users(ctx context.Context, q UserQuery) ([]User, error)
	// SetEnabled enables or disables the user. ErrNotFound.
	SetEnabled(ctx context.Context, id string, enabled bool) error
	// SetAttribute sets one single-valued attribute, keeping the others.
	// ErrNotFound.
	SetAttribute(ctx context.Context, id, name, value string) error
	// DeleteUser deletes the user. ErrNotFound.
	DeleteUser(ctx context.Context, id string) error
	// GrantRole and RevokeRole change the user's client roles on the
	// application client; both are idempotent. ErrNotFound.
	GrantRole(ctx context.Context, id, role string) error
	RevokeRole(ctx context.Context, id, role string) error
	// EndSessions ends every session of the user, where the provider
	// supports it; it is best effort and may return an error that callers
	// only log.
	EndSessions(ctx context.Context, id string) error
}

// AccountEvents publishes the account life cycle to the account.events
// topic, keyed by account id. Errors wrap ErrUnavailable.
type AccountEvents interface {
	// Registered tells the data service to create the account.
	Registered(ctx context.Context, a RegisteredAccount) error
	// Deleted tells every service to delete the account's data.
	Deleted(ctx context.Context, accountID string) error
}

// RegisteredAccount is the content of an AccountRegistered event.
type RegisteredAccount struct {
	AccountID string
	Phone     string
	Name      string
	Email     string
	Locale    string
	Timezone  string
	Time      time.Time
}

// Limiter is a keyed rate limiter. Allow takes one token from key's bucket
// and reports true, or, when the bucket is empty, takes nothing and reports
// false with the wait until a token is available.
type Limiter interface {
	Allow(key string) (ok bool, retryAfter time.Duration)
}

// CodeSender delivers a one-time code to a phone (by SMS, through the notify
// service once it exists). Implementations must never log the code.
type CodeSender interface {
	SendCode(ctx context.Context, phone, code string, ttl time.Duration) error
}

// OTPRecord is the state of the one-time code of one phone. The code itself
// is never stored, only its keyed hash.
type OTPRecord struct {
	// Hash is HMAC-SHA256 of the code under the process's key.
	Hash []byte
	// SentAt is when the code was sent; another code may be requested
	// ResendInterval later.
	SentAt time.Time
	// ExpiresAt is when the code stops being accepted.
	ExpiresAt time.Time
	// AttemptsLeft counts the verifications still allowed; the code is
	// burnt when it reaches zero.
	AttemptsLeft int
}

// CodeStore keeps the OTP records. Update runs fn under the store's lock
// for phone: rec is nil when there is no record, and fn returns the record
// to keep (nil deletes it). The store may drop records after their
// ExpiresAt.
type CodeStore interface {
	Update(ctx context.Context, phone string, fn func(rec *OTPRecord) *OTPRecord) error
}
