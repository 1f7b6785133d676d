//go:build !windows

package atomicfile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteRefusesSpecialFiles: a device node, FIFO or socket at the
// target (or a link to one) is never replaced, by either writer.
func TestWriteRefusesSpecialFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, p string)
	}{
		{"fifo", func(t *testing.T, p string) { must(t, syscall.Mkfifo(p, 0o600)) }},
		{"socket", func(t *testing.T, p string) {
			l, err := net.Listen("unix", p)
			must(t, err)
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			t.Cleanup(func() { l.Close() })
		}},
		{"link to /dev/null", func(t *testing.T, p string) { must(t, os.Symlink("/dev/null", p)) }},
		{"character device", func(t *testing.T, p string) {
			// mknod c 1 3 (what /dev/null is); needs root.
			if err := syscall.Mknod(p, syscall.S_IFCHR|0o600, 1<<8|3); err != nil {
				t.Skipf("mknod: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "report.pdf")
			tc.make(t, p)
			before, err := os.Lstat(p)
			must(t, err)
			err = WriteFile(p, []byte("%PDF-1.4"), 0o600)
			if !errors.Is(err, ErrNotRegular) {
				t.Fatalf("WriteFile over a %s: %v, want ErrNotRegular", tc.name, err)
			}
			if err := CreateFile(p, []byte("x"), 0o600); err == nil {
				t.Fatalf("CreateFile over a %s succeeded", tc.name)
			}
			after, err := os.Lstat(p)
			must(t, err)
			if !os.SameFile(before, after) || before.Mode() != after.Mode() {
				t.Errorf("the %s was replaced: %v -> %v", tc.name, before.Mode(), after.Mode())
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("temporary files left behind: %v", ents)
			}
		})
	}
}
