//go:build unix

package evidence

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/atomicfile"
)

// TestFIFOInputsRefused: every reader of a file the operator names refuses
// a FIFO at once (tryout 4: `mkfifo f.json; relaylock verify f.json` hung
// in open(2), and Ctrl-C could not end it), with atomicfile.ErrNotRegular.
func TestFIFOInputsRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "f.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.json")
	if err := Save(good, New(t0)); err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateKey(filepath.Join(dir, "k")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fifo, good+".sig.json"); err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func() error{
		"CheckFile":       func() error { _, _, err := CheckFile(fifo); return err },
		"LoadVerified":    func() error { _, _, err := LoadVerified(fifo); return err },
		"Load":            func() error { _, err := Load(fifo); return err },
		"Update":          func() error { return Update(context.Background(), fifo, func(*Bundle) error { return nil }) },
		"Preflight":       func() error { return Preflight(fifo) },
		"LoadPublicKey":   func() error { _, err := LoadPublicKey(fifo); return err },
		"LoadPrivateKey":  func() error { _, err := LoadPrivateKey(fifo); return err },
		"Sign evidence":   func() error { _, err := Sign(fifo, "", filepath.Join(dir, "k")); return err },
		"VerifySignature": func() error { _, err := VerifySignature(good, nil); return err },
		"SHA256File":      func() error { _, err := SHA256File(fifo); return err },
	} {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- read() }()
			select {
			case err := <-done:
				if !errors.Is(err, atomicfile.ErrNotRegular) {
					t.Fatalf("err %v, want ErrNotRegular", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("blocked on the FIFO")
			}
		})
	}
}
