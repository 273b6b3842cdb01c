package app_test

import (
	"errors"
	"testing"
	"time"

	"github.com/comfortech/platform/gateways/auth/internal/app"
)

func TestOTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.register(t, phone)
	ctx := t.Context()

	sent, err := h.svc.SendOTP(ctx, phone, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if sent.ExpiresIn != 5*time.Minute || sent.ResendAfter != 30*time.Second {
		t.Fatalf("answer: %+v", sent)
	}
	code := h.sms.last(phone)
	if len(code) != app.OTPDigits {
		t.Fatalf("code %q", code)
	}
	// A resend too early is refused with the wait.
	_, err = h.svc.SendOTP(ctx, phone, "192.0.2.1")
	var rl *app.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 30*time.Second {
		t.Fatalf("early resend: %v", err)
	}

	if err := h.svc.VerifyOTP(ctx, phone, wrongCode(code), "192.0.2.1"); fieldOf(err) != "code" {
		t.Fatalf("wrong code: %v", err)
	}
	if err := h.svc.VerifyOTP(ctx, phone, code, "192.0.2.1"); err != nil {
		t.Fatalf("right code: %v", err)
	}
	u, _ := h.idp.User(ctx, id)
	if !u.PhoneVerified {
		t.Fatal("phone not marked verified")
	}
	if err := h.svc.VerifyOTP(ctx, phone, code, "192.0.2.1"); fieldOf(err) != "code" {
		t.Fatalf("a code was accepted twice: %v", err)
	}
}

func TestOTPExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.register(t, phone)
	if _, err := h.svc.SendOTP(t.Context(), phone, ""); err != nil {
		t.Fatal(err)
	}
	code := h.sms.last(phone)
	h.clock.Advance(5*time.Minute + time.Second)
	if err := h.svc.VerifyOTP(t.Context(), phone, code, ""); fieldOf(err) != "code" {
		t.Fatalf("expired code: %v", err)
	}
	// An expired code does not hold back a new one.
	if _, err := h.svc.SendOTP(t.Context(), phone, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.VerifyOTP(t.Context(), phone, h.sms.last(phone), ""); err != nil {
		t.Fatal(err)
	}
}

func TestOTPAttemptsBurnTheCode(t *testing.T) {
	t.Parallel()
	h := newHarness(t) // 3 attempts
	h.register(t, phone)
	if _, err := h.svc.SendOTP(t.Context(), phone, ""); err != nil {
		t.Fatal(err)
	}
	code := h.sms.last(phone)
	for range 3 {
		if err := h.svc.VerifyOTP(t.Context(), phone, wrongCode(code), ""); fieldOf(err) != "code" {
			t.Fatalf("wrong code: %v", err)
		}
	}
	if err := h.svc.VerifyOTP(t.Context(), phone, code, ""); fieldOf(err) != "code" {
		t.Fatalf("the right code after the attempts ran out: %v", err)
	}
}

// TestOTPUnregistered checks that an unknown phone gets the same answers
// and no SMS.
func TestOTPUnregistered(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const stranger = "+79990001122"
	sent, err := h.svc.SendOTP(t.Context(), stranger, "")
	if err != nil || sent.ExpiresIn != 5*time.Minute {
		t.Fatalf("send: %+v %v", sent, err)
	}
	if h.sms.last(stranger) != "" {
		t.Fatal("an SMS went to an unregistered phone")
	}
	if _, err := h.svc.SendOTP(t.Context(), stranger, ""); !errors.Is(err, app.ErrRateLimited) {
		t.Fatalf("early resend to an unregistered phone: %v", err)
	}
	for _, c := range []string{"000000", "123456"} {
		if err := h.svc.VerifyOTP(t.Context(), stranger, c, ""); fieldOf(err) != "code" {
			t.Fatalf("verify: %v", err)
		}
	}
}

func TestOTPSendFailureForgetsTheCode(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.register(t, phone)
	h.sms.fail = errors.New("sms gateway down")
	if _, err := h.svc.SendOTP(t.Context(), phone, ""); !errors.Is(err, app.ErrUnavailable) {
		t.Fatalf("send: %v", err)
	}
	h.sms.fail = nil
	if _, err := h.svc.SendOTP(t.Context(), phone, ""); err != nil {
		t.Fatalf("retry at once: %v", err)
	}
}

func wrongCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}
