package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/logging"
)

// OTPDigits is the length of a one-time code.
const OTPDigits = 6

// OTPSent tells the client how long the code lives and when it may ask for
// another.
type OTPSent struct {
	ExpiresIn   time.Duration
	ResendAfter time.Duration
}

// SendOTP sends a one-time code to phone to verify it.
//
// The answer is the same whether or not the phone belongs to a user, so
// that the endpoint cannot enumerate users; only registered phones get an
// SMS, so that it cannot be used to send SMS to arbitrary numbers. An
// unregistered phone still gets a record (a hash no code matches), so that
// resend limits and verification answers look the same for both.
func (s *Service) SendOTP(ctx context.Context, phone, clientIP string) (OTPSent, error) {
	if err := ValidatePhone("phone", phone); err != nil {
		return OTPSent{}, err
	}
	if err := s.limit("otp-send", phone, clientIP); err != nil {
		return OTPSent{}, err
	}
	registered := true
	if _, err := s.d.IdP.UserByUsername(ctx, phone); errors.Is(err, ErrNotFound) {
		registered = false
	} else if err != nil {
		return OTPSent{}, fmt.Errorf("send otp: %w", err)
	}
	code, err := newCode()
	if err != nil {
		return OTPSent{}, fmt.Errorf("send otp: %w", err)
	}
	hash := s.hashCode(code)
	if !registered {
		hash = make([]byte, sha256.Size)
		if _, err := rand.Read(hash); err != nil {
			return OTPSent{}, fmt.Errorf("send otp: %w", err)
		}
	}
	now := s.now()
	var wait time.Duration
	err = s.d.Codes.Update(ctx, phone, func(rec *OTPRecord) *OTPRecord {
		if rec != nil && now.Before(rec.ExpiresAt) {
			if next := rec.SentAt.Add(s.cfg.OTPResendInterval); now.Before(next) {
				wait = next.Sub(now)
				return rec
			}
		}
		return &OTPRecord{Hash: hash, SentAt: now, ExpiresAt: now.Add(s.cfg.OTPTTL), AttemptsLeft: s.cfg.OTPMaxAttempts}
	})
	if err != nil {
		return OTPSent{}, fmt.Errorf("send otp: %w", err)
	}
	if wait > 0 {
		return OTPSent{}, &RateLimitError{RetryAfter: wait}
	}
	if registered {
		if err := s.d.Sender.SendCode(ctx, phone, code, s.cfg.OTPTTL); err != nil {
			// Forget the code nobody received, so that the client may ask
			// again at once.
			_ = s.d.Codes.Update(ctx, phone, func(rec *OTPRecord) *OTPRecord {
				if rec != nil && hmac.Equal(rec.Hash, hash) {
					return nil
				}
				return rec
			})
			return OTPSent{}, fmt.Errorf("send otp: %w", asUnavailable(err))
		}
	}
	s.logger(ctx).Info("one-time code issued", logging.Phone("phone", phone), zap.Bool("sent", registered))
	return OTPSent{ExpiresIn: s.cfg.OTPTTL, ResendAfter: s.cfg.OTPResendInterval}, nil
}

// VerifyOTP checks code against the code sent to phone and marks the phone
// verified. A code is accepted once, before it expires, and within
// OTPMaxAttempts tries; every refusal is a *FieldError on "code".
func (s *Service) VerifyOTP(ctx context.Context, phone, code, clientIP string) error {
	if err := ValidatePhone("phone", phone); err != nil {
		return err
	}
	if err := s.limit("otp-verify", phone, clientIP); err != nil {
		return err
	}
	now := s.now()
	given := s.hashCode(code)
	var refusal error
	err := s.d.Codes.Update(ctx, phone, func(rec *OTPRecord) *OTPRecord {
		switch {
		case rec == nil:
			refusal = invalid("code", "is wrong or expired; request a new code")
			return nil
		case !now.Before(rec.ExpiresAt):
			refusal = invalid("code", "has expired; request a new code")
			return nil
		case hmac.Equal(rec.Hash, given):
			return nil // single use
		}
		rec.AttemptsLeft--
		if rec.AttemptsLeft <= 0 {
			refusal = invalid("code", "is wrong; too many attempts, request a new code")
			return nil // burnt
		}
		refusal = invalid("code", "is wrong")
		return rec
	})
	if err != nil {
		return fmt.Errorf("verify otp: %w", err)
	}
	if refusal != nil {
		return refusal
	}
	u, err := s.d.IdP.UserByUsername(ctx, phone)
	if errors.Is(err, ErrNotFound) {
		// Deleted since the code was sent.
		return invalid("code", "is wrong or expired; request a new code")
	}
	if err != nil {
		return fmt.Errorf("verify otp: %w", err)
	}
	if err := s.d.IdP.SetAttribute(ctx, u.ID, AttrPhoneVerified, "true"); err != nil {
		return fmt.Errorf("verify otp: %w", err)
	}
	s.logger(ctx).Info("phone verified", logging.AccountID(u.ID))
	return nil
}

// hashCode is the keyed hash under which a code is stored.
func (s *Service) hashCode(code string) []byte {
	m := hmac.New(sha256.New, s.otpKey)
	m.Write([]byte(code))
	return m.Sum(nil)
}

// newCode draws a uniformly random code of OTPDigits digits.
func newCode() (string, error) {
	limit := big.NewInt(1)
	for range OTPDigits {
		limit.Mul(limit, big.NewInt(10))
	}
	// rand.Int is uniform over [0, limit): no modulo bias.
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", fmt.Errorf("draw code: %w", err)
	}
	return fmt.Sprintf("%0*d", OTPDigits, n.Int64()), nil
}
