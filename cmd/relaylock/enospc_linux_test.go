package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestAuditResultSurvivesFullDisk: on a full file system (a small tmpfs)
// the evidence save fails with ENOSPC; the open relay still reaches
// stdout, the error stderr, exit 3; the old evidence is intact and no
// temporary file is left (issue 15 item 4). Needs root to mount.
func TestAuditResultSurvivesFullDisk(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "full")
	os.Mkdir(mnt, 0o700)
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=150k"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, 0) })
	data, err := os.ReadFile("../../report/testdata/fixture.evidence.json")
	if err != nil {
		t.Fatal(err)
	}
	ev := filepath.Join(mnt, "evidence.json")
	if err := os.WriteFile(ev, data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "", append(auditFixture(t, true), "--evidence", ev, "example.com")...)
	if code != exitOpen || !strings.Contains(out, "OPEN") || !strings.Contains(stderr, "NOT in the evidence file") || !strings.Contains(stderr, "no space left on device") {
		t.Fatalf("exit %d (want %d)\nstdout %s\nstderr %s", code, exitOpen, out, stderr)
	}
	if got, _ := os.ReadFile(ev); !bytes.Equal(got, data) {
		t.Error("the evidence changed")
	}
	if ents, _ := os.ReadDir(mnt); len(ents) != 1 {
		t.Errorf("files left on the full disk: %v", ents)
	}
}
