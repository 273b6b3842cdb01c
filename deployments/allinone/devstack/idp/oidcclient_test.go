package idp_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
)

// TestOpenIDClient runs the npm openid-client library against the provider
// (testdata/oidc-client/check.mjs). It needs node and npm; without node it
// is skipped, except in CI (CI=true), where it fails.
func TestOpenIDClient(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is required in CI for the openid-client check")
		}
		t.Skip("node not installed")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "oidc-client"))
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, dir)

	srv := idptest.Start(t)
	user := srv.CreateUser(t, "+79110000001")
	const svc = "comfortech-auth-gateway"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.mjs", srv.Issuer(), appClient, user.Username, user.Password, svc, srv.ClientSecret(t, svc))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openid-client check failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// npmCI installs the pinned packages once per lockfile content: a stamp
// file in node_modules records the lockfile hash it was installed from.
func npmCI(t *testing.T, dir string) {
	t.Helper()
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	stamp := filepath.Join(dir, "node_modules", ".lock-sha256")
	if b, err := os.ReadFile(stamp); err == nil && string(b) == hex.EncodeToString(sum[:]) {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("node is installed but npm is not")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	if err := os.WriteFile(stamp, []byte(hex.EncodeToString(sum[:])), 0o600); err != nil {
		t.Fatal(err)
	}
}
