package devstack_test

import (
	"context"
	"net/smtp"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/comfortech/platform/deployments/allinone/devstack"
)

// TestMail: the embedded SMTP server keeps every message it accepts, whole
// and with its envelope, and answers readiness checks.
func TestMail(t *testing.T) {
	dir := t.TempDir()
	m, err := devstack.StartMail("127.0.0.1:0", dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if err := m.Check(t.Context()); err != nil {
		t.Fatalf("check: %v", err)
	}

	body := "From: Comfortech <no-reply@comfortech.local>\r\nTo: anna@example.com\r\n" +
		"Subject: =?UTF-8?q?Filter_change_=E2=80=94_Living_room?=\r\n\r\nChange the filter.\r\n"
	for range 2 {
		if err := smtp.SendMail(m.Addr, nil, "no-reply@comfortech.local",
			[]string{"anna@example.com", "boris@example.com"}, []byte(body)); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	paths, err := m.Messages()
	if err != nil || len(paths) != 2 {
		t.Fatalf("messages: %v %v, want 2", paths, err)
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"X-Envelope-From: <no-reply@comfortech.local>\r\n",
		"X-Envelope-To: <anna@example.com>, <boris@example.com>\r\n",
		"Subject: =?UTF-8?q?Filter_change_=E2=80=94_Living_room?=\r\n",
		"\r\n\r\nChange the filter.\r\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("kept message lacks %q:\n%s", want, got)
		}
	}
	if leftovers, _ := os.ReadDir(dir); len(leftovers) != 2 {
		t.Errorf("mail directory holds %d entries, want the 2 messages only", len(leftovers))
	}
}
