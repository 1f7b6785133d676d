//go:build unix

package engagement

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaylock/relaylock/remediate"
)

// TestFIFOInputsRefused: --targets, the WinRM password file and
// rollback's --backup refuse a FIFO at once instead of blocking in
// open(2) (tryout 4), naming what the file is.
func TestFIFOInputsRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "f")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func() error{
		"--targets":       func() error { _, err := readTargetsFile(fifo); return err },
		"password file":   func() error { _, _, err := readPasswordFile(fifo); return err },
		"rollback backup": func() error { _, _, err := remediate.LoadBackup(fifo); return err },
	} {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- read() }()
			select {
			case err := <-done:
				// --targets is a usage error (exit 2), which keeps only the text.
				if err == nil || !strings.Contains(err.Error(), fifo+" is a FIFO (named pipe), not a regular file") {
					t.Fatalf("err %v, want a refusal naming the FIFO", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("blocked on the FIFO")
			}
		})
	}
}

// TestFIFOKerberosFilesRefused: the Kerberos configuration and credential
// cache, which the Kerberos library reads, are checked first.
func TestFIFOKerberosFilesRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "f")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, c := range []remediate.WinRMConfig{
		{Host: "mail.example.com", Port: 5986, HTTPS: true, Auth: remediate.AuthKerberos, KrbCCache: fifo},
		{Host: "mail.example.com", Port: 5986, HTTPS: true, Auth: remediate.AuthKerberos, KrbConfig: fifo, User: "a@EXAMPLE.COM", Password: "x"},
	} {
		if _, err := c.Validate(); err == nil || !strings.Contains(err.Error(), "is a FIFO (named pipe)") {
			t.Errorf("config %d: %v", i, err)
		}
	}
}
