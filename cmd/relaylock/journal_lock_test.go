package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit/smtptest"
	"github.com/relaylock/relaylock/report/evidence"
)

// TestJournalLockAndKeep: a second run on a live journal fails at once,
// naming the running one, and probes nothing; when the evidence cannot
// take the merged run, every result is printed and the journal is kept,
// so that --resume writes it without probing again (issue 15 items 4, 5).
func TestJournalLockAndKeep(t *testing.T) {
	srvs := []*smtptest.Server{smtptest.Start(t, smtptest.Open()), smtptest.Start(t, smtptest.Closed554())}
	dir := t.TempDir()
	tf, ev := filepath.Join(dir, "targets.txt"), filepath.Join(dir, "ev.json")
	os.WriteFile(tf, []byte(srvs[0].Addr()+"\n"+srvs[1].Addr()+"\n"), 0o600)
	jp := ev + ".journal"
	runCmd := func(extra ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		e := &env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
		args := []string{"relaylock", "audit", "--targets", tf, "--evidence", ev, "--mail-domain", "example.com", "--helo", "probe.example.net"}
		code := run(context.Background(), append(args, extra...), e)
		return code, stdout.String(), stderr.String()
	}
	sessions := func() int { return len(srvs[0].Sessions()) + len(srvs[1].Sessions()) }

	// A live run holds the journal (this test's parent process stands in).
	host, _ := os.Hostname()
	os.WriteFile(jp, []byte("not touched\n"), 0o600)
	os.WriteFile(jp+".lock", []byte(fmt.Sprintf("pid %d host %s since 2026-01-01T00:00:00Z\n", os.Getppid(), host)), 0o600)
	for _, extra := range [][]string{nil, {"--resume"}} {
		code, out, stderr := runCmd(extra...)
		if code != exitError || out != "" || !strings.Contains(stderr, fmt.Sprintf(" %d ", os.Getppid())) || !strings.Contains(stderr, host) || strings.Contains(stderr, "remove the file") {
			t.Fatalf("run %v on a live journal: exit %d\nstdout %s\nstderr %s", extra, code, out, stderr)
		}
	}
	if got, _ := os.ReadFile(jp); string(got) != "not touched\n" || sessions() != 0 {
		t.Fatalf("the live journal was touched (%q) or targets probed (%d sessions)", got, sessions())
	}
	os.Remove(jp)
	os.Remove(jp + ".lock")

	// The evidence lock is taken by another host as the run ends.
	old := evidence.LockWait
	evidence.LockWait = 100 * time.Millisecond
	defer func() { evidence.LockWait = old }()
	beforeEvidenceWrite = func(p string) {
		os.WriteFile(p+".lock", []byte("pid 4242 host other-host.example since 2026-01-01T00:00:00Z\n"), 0o600)
	}
	code, out, stderr := runCmd()
	beforeEvidenceWrite = nil
	if code != exitOpen || !strings.Contains(out, "OPEN") || !strings.Contains(stderr, "NOT in the evidence file") || !strings.Contains(stderr, "--resume") {
		t.Fatalf("run whose evidence is locked: exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	if _, err := os.Stat(jp); err != nil {
		t.Fatalf("journal not kept: %v", err)
	}
	probed := sessions()
	os.Remove(ev + ".lock")
	code, out, stderr = runCmd("--resume")
	if code != exitOpen || sessions() != probed {
		t.Fatalf("--resume: exit %d, %d new sessions\nstdout %s\nstderr %s", code, sessions()-probed, out, stderr)
	}
	b, _, err := evidence.LoadVerified(ev)
	if err != nil || len(b.Audits) != 1 || len(b.Audits[0].Result.Targets) != 2 {
		t.Fatalf("evidence after --resume: %v", err)
	}
	if _, err := os.Stat(jp); err == nil {
		t.Error("journal left after the merge")
	}
}
