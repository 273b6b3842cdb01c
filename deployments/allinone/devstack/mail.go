package devstack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"go.uber.org/zap"
)

// Mail limits: what a notification could need, far below what fills a disk.
const (
	mailMaxBytes      = 10 << 20
	mailMaxRecipients = 50
)

// Mail is the embedded SMTP server that stands in for the mail relay: it
// accepts every message for any recipient, without authentication, and
// keeps each as an .eml file in its directory (names sort oldest first),
// for a developer to open in a mail client. Nothing leaves the machine.
type Mail struct {
	server *smtp.Server
	l      net.Listener
	dir    string
	// Addr is host:port for SMTP_ADDR.
	Addr string
}

// StartMail listens on addr (port 0 picks a free one) and keeps messages
// under dir.
func StartMail(addr, dir string, log *zap.Logger) (*Mail, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mail: listen on %s: %w", addr, err)
	}
	s := smtp.NewServer(&mailBackend{dir: dir, log: log})
	s.Domain = "comfortech.local"
	s.ReadTimeout, s.WriteTimeout = time.Minute, time.Minute
	s.MaxMessageBytes, s.MaxRecipients = mailMaxBytes, mailMaxRecipients
	return &Mail{server: s, l: l, dir: dir, Addr: l.Addr().String()}, nil
}

// Run serves until ctx ends, then closes the server.
func (m *Mail) Run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- m.server.Serve(m.l) }()
	select {
	case err := <-done:
		return fmt.Errorf("mail: %w", err)
	case <-ctx.Done():
		_ = m.server.Close()
		// Serve may not have registered the listener with the server yet.
		_ = m.l.Close()
		<-done
		return nil
	}
}

// Check reports whether the server greets an SMTP client.
func (m *Mail) Check(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	defer func() { _ = conn.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	tp := textproto.NewConn(conn)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return fmt.Errorf("mail: greeting: %w", err)
	}
	_ = tp.PrintfLine("QUIT")
	return nil
}

// Messages returns the paths of the kept messages, oldest first.
func (m *Mail) Messages() ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(m.dir, "*.eml"))
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	sort.Strings(paths)
	return paths, nil
}

// mailBackend opens a session per SMTP connection.
type mailBackend struct {
	dir string
	log *zap.Logger
}

func (b *mailBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &mailSession{backend: b}, nil
}

// mailSession collects one message's envelope.
type mailSession struct {
	backend *mailBackend
	from    string
	to      []string
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

// Data writes the message to a file, the envelope first as headers; the
// file appears under its final name only once it is whole.
func (s *mailSession) Data(r io.Reader) error {
	var id [4]byte
	_, _ = rand.Read(id[:])
	name := time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(id[:]) + ".eml"
	path := filepath.Join(s.backend.dir, name)
	tmp, err := os.CreateTemp(s.backend.dir, ".incoming-*")
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	w := bufio.NewWriter(tmp)
	_, _ = fmt.Fprintf(w, "X-Envelope-From: <%s>\r\nX-Envelope-To: %s\r\n", s.from, envelopeTo(s.to))
	body := bufio.NewReader(r)
	subject := peekSubject(body)
	_, err = body.WriteTo(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = tmp.Close()
		return fmt.Errorf("mail: keep message: %w", err)
	}
	s.backend.log.Info("mail captured", zap.String("file", path), zap.Int("recipients", len(s.to)), zap.String("subject", subject))
	return nil
}

func (s *mailSession) Reset() { s.from, s.to = "", nil }

func (s *mailSession) Logout() error { return nil }

// envelopeTo lists recipients as one header value.
func envelopeTo(to []string) string {
	quoted := make([]string, len(to))
	for i, t := range to {
		quoted[i] = "<" + t + ">"
	}
	return strings.Join(quoted, ", ")
}

// peekSubject returns the decoded Subject of the message's header without
// consuming it; "" when the header does not parse (the message is kept all
// the same).
func peekSubject(r *bufio.Reader) string {
	head, _ := r.Peek(r.Size())
	msg, err := mail.ReadMessage(bytes.NewReader(head))
	if err != nil {
		return ""
	}
	raw := msg.Header.Get("Subject")
	if subject, err := new(mime.WordDecoder).DecodeHeader(raw); err == nil {
		return subject
	}
	return raw
}
