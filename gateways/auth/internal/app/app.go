// Package app holds the auth gateway's use cases: registration, login and
// tokens, password changes, phone verification by one-time code, and user
// administration. It depends only on the interfaces declared here
// (IdentityProvider, AccountEvents, Limiter, CodeStore, CodeSender); the
// adapters that implement them live in sibling packages, and grpcapi turns
// the sentinel errors of this package into gRPC status codes.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/logging"
)

// Config holds the use cases' tunables.
type Config struct {
	// OTPTTL is how long a one-time code is accepted; default 5 minutes.
	OTPTTL time.Duration
	// OTPMaxAttempts is how many verifications one code allows before it is
	// burnt; default 5.
	OTPMaxAttempts int
	// OTPResendInterval is the least time between two codes for one phone;
	// default 30 seconds.
	OTPResendInterval time.Duration
	// DefaultLocale and DefaultTimezone fill a registration that names
	// none; defaults "en" and "UTC".
	DefaultLocale, DefaultTimezone string
}

// Deps are the adapters the use cases run on.
type Deps struct {
	IdP    IdentityProvider
	Events AccountEvents
	// PerPhone and PerIP limit attempts per phone (or username, or account)
	// and per client IP; the key also names the action, so each action has
	// its own budget.
	PerPhone, PerIP Limiter
	Codes           CodeStore
	Sender          CodeSender
	Log             *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service implements every use case of the gateway. It is safe for
// concurrent use.
type Service struct {
	d      Deps
	cfg    Config
	log    *zap.Logger
	now    func() time.Time
	otpKey []byte
}

// New returns a Service. The key that hashes one-time codes is drawn here,
// per process: codes never outlive the process that sent them anyway,
// since the code store is in memory.
func New(d Deps, cfg Config) (*Service, error) {
	if d.IdP == nil || d.Events == nil || d.PerPhone == nil || d.PerIP == nil || d.Codes == nil || d.Sender == nil {
		return nil, errors.New("app: every dependency is required")
	}
	if cfg.OTPTTL <= 0 {
		cfg.OTPTTL = 5 * time.Minute
	}
	if cfg.OTPMaxAttempts <= 0 {
		cfg.OTPMaxAttempts = 5
	}
	if cfg.OTPResendInterval < 0 {
		cfg.OTPResendInterval = 0
	} else if cfg.OTPResendInterval == 0 {
		cfg.OTPResendInterval = 30 * time.Second
	}
	if cfg.DefaultLocale == "" {
		cfg.DefaultLocale = "en"
	}
	if cfg.DefaultTimezone == "" {
		cfg.DefaultTimezone = "UTC"
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("app: OTP key: %w", err)
	}
	return &Service{d: d, cfg: cfg, log: d.Log, now: now, otpKey: key}, nil
}

// Config returns the configuration in effect, defaults applied.
func (s *Service) Config() Config { return s.cfg }

// limit charges one attempt at action to the client IP and to subject (a
// phone, username or account id), and refuses with a *RateLimitError when
// either budget is spent.
func (s *Service) limit(action, subject, clientIP string) error {
	if clientIP != "" {
		if ok, wait := s.d.PerIP.Allow(action + "|ip|" + clientIP); !ok {
			return &RateLimitError{RetryAfter: wait}
		}
	}
	if subject != "" {
		if ok, wait := s.d.PerPhone.Allow(action + "|sub|" + subject); !ok {
			return &RateLimitError{RetryAfter: wait}
		}
	}
	return nil
}

// logger returns the logger with the call's fields.
func (s *Service) logger(ctx context.Context) *zap.Logger { return logging.For(ctx, s.log) }
