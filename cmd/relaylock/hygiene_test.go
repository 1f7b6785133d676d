package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/internal/needs"
)

// TestTestsCleanUp runs this package's tests in a child `go test` with its
// own TMPDIR (issue 15 item 13): the child builds the relaylock binary and
// skips for a missing component; afterwards TMPDIR must hold no relaylock
// binary, and the child's output must end with one line naming the
// component that was missing.
func TestTestsCleanUp(t *testing.T) {
	if os.Getenv("RELAYLOCK_HYGIENE_CHILD") != "" {
		relaylockBinary(t)
		needs.Missing(t, "frobnicator-for-the-hygiene-test", "nothing to install: the hygiene test's own skip")
		return
	}
	if testing.Short() {
		t.Skip("runs go test")
	}
	tmp := t.TempDir()
	cmd := exec.Command("go", "test", "-count=1", "-run", "^TestTestsCleanUp$") // local directory mode: output shown
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "RELAYLOCK_HYGIENE_CHILD=1", "CI=", "RELAYLOCK_NEEDS_NO_TTY=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child go test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "not run: 1 test(s) need frobnicator-for-the-hygiene-test (TestTestsCleanUp)") {
		t.Errorf("the child did not say which component was missing:\n%s", out)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "relaylock*"))
	if len(left) > 0 {
		t.Errorf("the tests left %q in TMPDIR", left)
	}
}
