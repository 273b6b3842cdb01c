package asyncapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// TestDocumentIsValid validates ../asyncapi.yaml with @asyncapi/parser and
// fails on any diagnostic of severity error. It installs the pinned parser
// with npm ci first; without node it skips, except in CI.
func TestDocumentIsValid(t *testing.T) {
	node, err := exec.LookPath("node")
	npm, errNPM := exec.LookPath("npm")
	if err != nil || errNPM != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node and npm are required in CI")
		}
		t.Skip("node or npm not installed")
	}
	install := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	validate := exec.Command(node, "validate.mjs", "../asyncapi.yaml")
	validate.Stdout, validate.Stderr = &stdout, &stderr
	runErr := validate.Run()
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
