package asyncapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/comfortech/platform/proto/eventcatalog"
)

// TestDocumentIsValid validates ../asyncapi.yaml, the device protocol.
func TestDocumentIsValid(t *testing.T) {
	validate(t, "../asyncapi.yaml")
}

// TestEventCatalogIsValid validates the event catalog's document, as the
// admin gateway serves it at /v1/events/asyncapi.
func TestEventCatalogIsValid(t *testing.T) {
	c, err := eventcatalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := c.AsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "events.asyncapi.json")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	validate(t, path)
}

// npmCI installs the pinned parser once per test binary.
var npmCI = sync.OnceValues(func() ([]byte, error) {
	return exec.Command("npm", "ci", "--no-audit", "--no-fund").CombinedOutput()
})

// validate runs the official @asyncapi/parser (pinned by package-lock.json)
// on the document at path and fails on any diagnostic of severity error.
// It installs the parser with npm ci first; without node it skips, except
// in CI.
func validate(t *testing.T, path string) {
	t.Helper()
	node, err := exec.LookPath("node")
	_, errNPM := exec.LookPath("npm")
	if err != nil || errNPM != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node and npm are required in CI")
		}
		t.Skip("node or npm not installed")
	}
	if out, err := npmCI(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(node, "validate.mjs", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	errors := 0
	for sc := bufio.NewScanner(&stdout); sc.Scan(); {
		var d struct {
			Severity int    `json:"severity"`
			Code     string `json:"code"`
			Message  string `json:"message"`
			Path     []any  `json:"path"`
		}
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("validator output %q: %v", sc.Text(), err)
		}
		if d.Severity == 0 {
			errors++
			t.Errorf("%s at %v: %s", d.Code, d.Path, d.Message)
		} else {
			t.Logf("severity %d: %s at %v: %s", d.Severity, d.Code, d.Path, d.Message)
		}
	}
	if runErr != nil && errors == 0 {
		t.Fatalf("validate.mjs: %v\n%s", runErr, stderr.String())
	}
	t.Log(stderr.String())
}
