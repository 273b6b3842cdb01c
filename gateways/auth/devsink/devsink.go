// Package devsink is the auth gateway's stand-in for SMS delivery until the
// notify service sends one-time codes: it keeps the last codes sent to each
// phone in memory, where tests and the all-in-one development stack read
// them. Nothing is delivered and nothing is logged: the codes are secrets.
//
// It lives outside internal/ so that the all-in-one binary can pass a Sink
// in authgw.Config and show codes to a developer.
package devsink

import (
	"context"
	"sync"
	"time"
)

// DefaultKeep is how many messages a Sink keeps per phone.
const DefaultKeep = 5

// Message is one code "sent" to a phone.
type Message struct {
	Phone     string
	Code      string
	SentAt    time.Time
	ExpiresAt time.Time
}

// Sink records codes instead of sending them. It is safe for concurrent
// use and implements the gateway's code sender.
type Sink struct {
	keep int

	mu   sync.Mutex
	msgs map[string][]Message
}

// New returns a Sink that keeps the last keep messages per phone
// (DefaultKeep when keep <= 0).
func New(keep int) *Sink {
	if keep <= 0 {
		keep = DefaultKeep
	}
	return &Sink{keep: keep, msgs: make(map[string][]Message)}
}

// SendCode records code for phone.
func (s *Sink) SendCode(_ context.Context, phone, code string, ttl time.Duration) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	list := append(s.msgs[phone], Message{Phone: phone, Code: code, SentAt: now, ExpiresAt: now.Add(ttl)})
	if len(list) > s.keep {
		list = list[len(list)-s.keep:]
	}
	s.msgs[phone] = list
	return nil
}

// Last returns the last message sent to phone.
func (s *Sink) Last(phone string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.msgs[phone]
	if len(list) == 0 {
		return Message{}, false
	}
	return list[len(list)-1], true
}

// Messages returns the messages kept for phone, oldest first.
func (s *Sink) Messages(phone string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs[phone]...)
}
