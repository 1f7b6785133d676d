package remediate

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/internal/needs"
	"github.com/relaylock/relaylock/templates"
)

// The parse check: every embedded script must parse with the
// tree-sitter PowerShell grammar (no ERROR or MISSING node). It needs node
// and the npm packages that .ci/setup.d/30-powershell-parse.sh installs
// into $RELAYLOCK_PSPARSE. Without them it is skipped locally and fails in CI.

func psparseDir(t *testing.T) (node, dir string) {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		needs.Missing(t, "the tree-sitter PowerShell grammar ("+what+")", "run 'source .ci/setup.d/30-powershell-parse.sh' (sets RELAYLOCK_PSPARSE)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	dir = os.Getenv("RELAYLOCK_PSPARSE")
	if dir == "" {
		missing("RELAYLOCK_PSPARSE")
	}
	for _, f := range []string{"node_modules/web-tree-sitter/package.json", "node_modules/tree-sitter-powershell/tree-sitter-powershell.wasm"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			missing(filepath.Join(dir, f))
		}
	}
	return node, dir
}

// psparse runs parse.mjs over files; ok is true when all parsed cleanly.
func psparse(t *testing.T, node, dir string, files ...string) (out string, ok bool) {
	t.Helper()
	// --liftoff-only: without it V8 keeps optimizing the 1 MB grammar WASM in
	// the background and the process takes 10+ s to exit after its work.
	cmd := exec.Command(node, "--liftoff-only", filepath.Join("testdata", "psparse", "parse.mjs"), dir)
	cmd.Args = append(cmd.Args, files...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), true
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return stdout.String(), false
	}
	t.Fatalf("parse.mjs: %v\n%s%s", err, stdout.String(), stderr.String())
	return "", false
}

// TestScriptsParse parses every embedded script and the deliberately
// broken snippets of testdata/psparse/bad in one node process (loading the
// grammar's WASM costs seconds), then checks each file's verdict: embedded
// scripts clean, every bad snippet reported with its file and line.
func TestScriptsParse(t *testing.T) {
	node, dir := psparseDir(t)
	tmp := t.TempDir()
	var good []string
	for _, n := range append([]string{templates.PrologueName}, templates.ScriptNames()...) {
		src, err := templates.Script(n)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(tmp, n+".ps1")
		if err := os.WriteFile(f, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		good = append(good, f)
	}
	bad, err := filepath.Glob(filepath.Join("testdata", "psparse", "bad", "*.ps1"))
	if err != nil || len(bad) == 0 {
		t.Fatalf("no bad snippets in testdata/psparse/bad: %v", err)
	}
	out, _ := psparse(t, node, dir, append(append([]string{}, good...), bad...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	reported := func(f string) []string {
		var r []string
		for _, l := range lines {
			if strings.HasPrefix(l, f+":") {
				r = append(r, l)
			}
		}
		return r
	}
	for _, f := range good {
		name := "templates/powershell/" + filepath.Base(f)
		t.Run(filepath.Base(f), func(t *testing.T) {
			for _, l := range reported(f) {
				t.Errorf("tree-sitter-powershell: %s", strings.Replace(l, f, name, 1))
			}
		})
	}
	for _, f := range bad {
		t.Run("bad/"+filepath.Base(f), func(t *testing.T) {
			r := reported(f)
			if len(r) == 0 {
				t.Fatalf("parse check accepted the broken snippet %s", f)
			}
			if !strings.Contains(r[0], "ERROR") && !strings.Contains(r[0], "MISSING") {
				t.Errorf("report %q names no ERROR/MISSING node", r[0])
			}
		})
	}
}
