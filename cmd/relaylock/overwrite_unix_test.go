//go:build !windows

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOutputsNeverReplaceSpecialFiles (tryout finding 8): a device node,
// a FIFO or a link to a device at an output path (report -o, keygen -o,
// remediate --backup, --evidence) is refused with a clear error and left
// as it is. Before the fix, report -o turned a device node into a PDF and
// a FIFO at --evidence hung the run.
func TestOutputsNeverReplaceSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	ev := copyFixture(t, dir)
	specials := map[string]func(p string) error{
		"fifo":              func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"link to /dev/null": func(p string) error { return os.Symlink("/dev/null", p) },
	}
	if os.Geteuid() == 0 {
		// mknod mynull c 1 3, the tryout's case; needs root.
		specials["character device"] = func(p string) error { return syscall.Mknod(p, syscall.S_IFCHR|0o600, 1<<8|3) }
	}
	for name, mk := range specials {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.NewReplacer(" ", "-", "/", "_").Replace(name))
			if err := mk(p); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(p)
			for _, args := range [][]string{
				{"report", "--evidence", ev, "-o", p},
				{"keygen", "-o", p},
				{"remediate", "--winrm-host", "127.0.0.1", "--winrm-port", "1", "--allow", "192.0.2.10", "--yes", "--no-retest", "--backup", p},
				{"audit", "--evidence", p, "127.0.0.1:1"},
			} {
				code, out, errOut := runCLI(t, "", args...)
				if code != exitError || !(strings.Contains(errOut, "not a regular file") || strings.Contains(errOut, "already exists")) {
					t.Errorf("%s onto a %s: exit %d, want %d with a clear error\nstdout:\n%s\nstderr:\n%s", args[0], name, code, exitError, out, errOut)
				}
			}
			after, err := os.Lstat(p)
			if err != nil || !os.SameFile(before, after) || before.Mode() != after.Mode() {
				t.Errorf("the %s was replaced: %v -> %v (%v)", name, before.Mode(), after.Mode(), err)
			}
			if st, err := os.Stat("/dev/null"); err != nil || st.Mode()&os.ModeCharDevice == 0 {
				t.Fatalf("/dev/null is no longer a character device: %v %v", st, err)
			}
		})
	}
}
