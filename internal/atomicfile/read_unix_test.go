//go:build unix

package atomicfile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadRefusesSpecialFiles: a FIFO, socket, directory or device given
// as a file to read is refused at once (a FIFO with no writer would block
// open(2) forever), naming what it is; a regular file, and a symbolic link
// to one, read as usual, and a missing file is fs.ErrNotExist.
func TestReadRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "ev.json")
	must(t, os.WriteFile(reg, []byte("{}"), 0o600))
	must(t, os.Symlink(reg, filepath.Join(dir, "link.json")))
	must(t, syscall.Mkfifo(filepath.Join(dir, "fifo.json"), 0o600))
	must(t, os.Symlink(filepath.Join(dir, "fifo.json"), filepath.Join(dir, "link-to-fifo.json")))
	must(t, os.Mkdir(filepath.Join(dir, "dir.json"), 0o700))
	l, err := net.Listen("unix", filepath.Join(dir, "sock.json"))
	must(t, err)
	defer l.Close()
	for _, tc := range []struct {
		name, want string // want: "" reads; else the kind named in the error
	}{
		{"ev.json", ""},
		{"link.json", ""},
		{"fifo.json", "a FIFO (named pipe)"},
		{"link-to-fifo.json", "a FIFO (named pipe)"},
		{"dir.json", "a directory"},
		{"sock.json", "a socket"},
		{"/dev/null", "a character device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.name
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			done := make(chan error, 1)
			go func() {
				data, err := ReadFile(p)
				if err == nil && string(data) != "{}" {
					err = errors.New("read " + string(data))
				}
				done <- err
			}()
			select {
			case err := <-done:
				if tc.want == "" {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
					t.Fatalf("err %v, want ErrNotRegular naming %s and %q", err, p, tc.want)
				}
				if err := CheckRegular(p); !errors.Is(err, ErrNotRegular) {
					t.Errorf("CheckRegular: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ReadFile blocked")
			}
		})
	}
	if _, err := ReadFile(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := CheckRegular(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CheckRegular of a missing file: %v", err)
	}
}
