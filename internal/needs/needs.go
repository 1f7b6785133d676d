// Package needs lets tests that depend on a real component (an MTA,
// poppler, python3-winrm, a shell, a pseudo-terminal, ...) skip when it is
// missing, fail when it is missing in CI, and say at the end of the test
// binary, one line per component, what did not run, so that a newcomer
// running `go test ./...` knows.
//
// A package using it runs its tests through Main:
//
//	func TestMain(m *testing.M) { needs.Main(m) }
//
// `go test` hides the output of a package that passes (unless -v), so the
// summary also goes to the controlling terminal, when there is one.
package needs

import (
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"testing"

	"golang.org/x/term"
)

// envNoTTY, when set, keeps the summary off the terminal (for tests that
// run go test themselves).
const envNoTTY = "RELAYLOCK_NEEDS_NO_TTY"

var (
	mu      sync.Mutex
	missing = map[string]*entry{}
)

type entry struct {
	how   string
	tests []string
}

// Optional skips t for want of something that is opt-in by design (a
// live Windows host), also in CI, recording it for the summary.
func Optional(t testing.TB, component, how string) {
	t.Helper()
	record(t, component, how)
	t.Skipf("%s is not configured: %s", component, how)
}

func record(t testing.TB, component, how string) {
	mu.Lock()
	defer mu.Unlock()
	e := missing[component]
	if e == nil {
		e = &entry{how: how}
		missing[component] = e
	}
	e.tests = append(e.tests, t.Name())
}

// Missing skips t because component is missing (or, in CI, fails it: CI
// installs every component and must never skip one), recording it for the
// summary. how says how to get the component.
func Missing(t testing.TB, component, how string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing, and CI must run every test: %s", component, how)
	}
	record(t, component, how)
	t.Skipf("%s is missing: %s", component, how)
}

// Summary returns one line per missing component, sorted.
func Summary() []string {
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for c, e := range missing {
		out = append(out, fmt.Sprintf("not run: %d test(s) need %s (%s): %s", len(e.tests), c, e.tests[0], e.how))
	}
	sort.Strings(out)
	return out
}

// write prints the summary lines for pkg to w.
func write(w io.Writer, pkg string, lines []string) {
	for _, l := range lines {
		fmt.Fprintf(w, "%s: %s\n", pkg, l)
	}
}

// Main runs the tests, prints the summary on stderr (and on the terminal
// when stderr is not one), and exits with the tests' status.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit, for a TestMain with cleanup to do.
func Run(m *testing.M) int {
	code := m.Run()
	report(code)
	return code
}

func report(code int) {
	lines := Summary()
	if len(lines) == 0 {
		return
	}
	pkg := "skipped"
	if wd, err := os.Getwd(); err == nil {
		pkg = shortPkg(wd)
	}
	write(os.Stderr, pkg, lines)
	if term.IsTerminal(int(os.Stderr.Fd())) || code != 0 || os.Getenv(envNoTTY) != "" {
		return // the terminal, or go test (which shows a failed package's output), has it
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		write(tty, pkg, lines)
		tty.Close()
	}
}

// shortPkg names the package by its directory below the module root.
func shortPkg(dir string) string {
	for d := dir; ; {
		if _, err := os.Stat(d + string(os.PathSeparator) + "go.mod"); err == nil {
			if rel := dir[len(d):]; rel != "" {
				return "." + rel
			}
			return "."
		}
		parent := d[:max(0, lastSep(d))]
		if parent == "" || parent == d {
			return dir
		}
		d = parent
	}
}

func lastSep(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if os.IsPathSeparator(s[i]) {
			return i
		}
	}
	return -1
}
