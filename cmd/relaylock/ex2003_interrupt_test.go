package main

// Ctrl-C while Exchange 2003 waits for DS2MB (tryout finding 16): the
// message says what was written where (Active Directory, on which DC),
// what is pending (the metabase, DS2MB) and how to go on; exit 130; the
// change record says pending.

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
)

// runCLICtx runs relaylock in-process under ctx (cancel it for Ctrl-C).
func runCLICtx(ctx context.Context, password string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	e := &env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string {
			if k == "RELAYLOCK_WINRM_PASSWORD" {
				return password
			}
			return ""
		}}
	code = run(ctx, append([]string{"relaylock"}, args...), e)
	return code, out.String(), errb.String()
}

// cancelInDS2MBWait cancels once the host has taken an AD write and been
// polled for the metabase after it: relaylock is in the DS2MB wait.
func cancelInDS2MBWait(t *testing.T, h *lab.Ex2003Host, cancel context.CancelFunc) {
	t.Helper()
	start := len(h.Calls())
	go func() {
		defer cancel()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			wrote := false
			for _, c := range h.Calls()[start:] {
				if c.Script == remediate.ScriptEx2003WriteAD {
					wrote = true
				} else if wrote && c.Script == remediate.ScriptIISRead {
					return
				}
			}
		}
		t.Error("relaylock never reached the DS2MB wait")
	}()
}

func TestEx2003InterruptInDS2MBWait(t *testing.T) {
	h := lab.NewExchange2003(lab.Ex2003Open)
	lr := startLab(t, h)
	ev, bk := filepath.Join(lr.dir, "ev.json"), filepath.Join(lr.dir, "backup.json")

	// remediate: Ctrl-C after AD was written, before DS2MB copied it.
	h.SetSyncDelay(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancelInDS2MBWait(t, h, cancel)
	code, out, errOut := runCLICtx(ctx, labTestPassword, append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes",
		"--restart", "never", "--no-retest", "--ds2mb-timeout", "2m", "--evidence", ev, "--backup", bk}, lr.winrmArgs()...)...)
	if code != exitCancelled {
		t.Fatalf("remediate interrupted in the DS2MB wait: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitCancelled, out, errOut)
	}
	for _, w := range []string{"interrupted", "pending (DS2MB)", "written to Active Directory on " + lab.Ex2003ConfigDC,
		"has not copied it into the metabase", "SmtpSvc/1", "nothing was rolled back", "relaylock inspect", "relaylock rollback --winrm-host"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("remediate stderr lacks %q:\n%s", w, errOut)
		}
	}
	t.Logf("remediate stderr:\n%s", errOut)
	// The rollback command printed has the flags this run used (the
	// lab's WinRM port and CA), so it works as printed.
	if !strings.Contains(errOut, "--winrm-port "+fmt.Sprint(lr.lab.WinRMPort)) {
		t.Errorf("the printed rollback command lacks --winrm-port:\n%s", errOut)
	}
	if rec := lastChange(t, ev); rec.Kind != "remediate" || rec.Result != "pending" || len(rec.Applied) == 0 {
		t.Errorf("change record: kind %q result %q, %d applied; want a pending remediate with the AD change", rec.Kind, rec.Result, len(rec.Applied))
	}
	if !h.RelayAllowed(netipStranger, false, "elsewhere.example") {
		t.Fatal("the metabase changed although DS2MB has not run")
	}
	h.SyncNow()
	if h.RelayAllowed(netipStranger, false, "elsewhere.example") {
		t.Fatal("the AD change was undone: DS2MB did not close the relay")
	}

	// rollback: Ctrl-C after the saved values went back into AD.
	ctx, cancel = context.WithCancel(context.Background())
	cancelInDS2MBWait(t, h, cancel)
	code, out, errOut = runCLICtx(ctx, labTestPassword, append([]string{"rollback", "--backup", bk, "--no-retest", "--evidence", ev}, lr.winrmArgs()...)...)
	if code != exitCancelled {
		t.Fatalf("rollback interrupted in the DS2MB wait: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitCancelled, out, errOut)
	}
	for _, w := range []string{"interrupted", "pending (DS2MB)", "the saved values were written to Active Directory on " + lab.Ex2003ConfigDC,
		"has not copied it into the metabase", "SmtpSvc/1", "the restore stands", "relaylock inspect"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("rollback stderr lacks %q:\n%s", w, errOut)
		}
	}
	t.Logf("rollback stderr:\n%s", errOut)
	if strings.Count(errOut, "context canceled") > 1 {
		t.Errorf("the cause is repeated:\n%s", errOut)
	}
	if rec := lastChange(t, ev); rec.Kind != "rollback" || rec.Result != "pending" {
		t.Errorf("rollback change record: kind %q result %q, want a pending rollback", rec.Kind, rec.Result)
	}
	if h.RelayAllowed(netipStranger, false, "elsewhere.example") {
		t.Fatal("the metabase changed although DS2MB has not run")
	}
	h.SyncNow() // the restore stands: DS2MB brings the old (open) state back
	if !h.RelayAllowed(netipStranger, false, "elsewhere.example") {
		t.Fatal("AD does not hold the restored values")
	}
}

// TestRollbackInterruptedDuringWrite: Ctrl-C while the restore's write is
// on the host (it ran, its result never came back): exit 130, and the
// message says that what the host has is unknown and that running the
// same rollback again is safe, which it then does.
func TestRollbackInterruptedDuringWrite(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		host         func() lab.Host
	}{
		{"IIS", remediate.ScriptIISWrite, func() lab.Host { return lab.NewIIS(lab.IISAllExceptEmpty) }},
		{"Exchange 2003", remediate.ScriptEx2003WriteAD, func() lab.Host { return lab.NewExchange2003(lab.Ex2003Open) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lr := startLab(t, tc.host())
			ev, bk := filepath.Join(lr.dir, "ev.json"), filepath.Join(lr.dir, "backup.json")
			code, out, errOut := lr.run(labTestPassword, append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes",
				"--restart", "never", "--no-retest", "--evidence", ev, "--backup", bk}, lr.winrmArgs()...)...)
			if code != exitOK {
				t.Fatalf("remediate: exit %d\n%s\n%s", code, out, errOut)
			}
			lr.lab.Faults.Add(lab.FaultRule{Kind: lab.FaultDelay, Delay: time.Minute, Times: 1, Script: tc.script, AfterRun: true})
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				defer cancel()
				for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && lr.lab.Faults.Fired() == 0; {
					time.Sleep(20 * time.Millisecond)
				}
				time.Sleep(100 * time.Millisecond)
			}()
			rollback := append([]string{"rollback", "--backup", bk, "--no-retest", "--evidence", ev}, lr.winrmArgs()...)
			code, out, errOut = runCLICtx(ctx, labTestPassword, rollback...)
			t.Logf("rollback stderr:\n%s", errOut)
			if code != exitCancelled {
				t.Fatalf("rollback interrupted during the write: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitCancelled, out, errOut)
			}
			for _, w := range []string{"interrupted", "may or may not", "run the same rollback again", "relaylock inspect"} {
				if !strings.Contains(errOut, w) {
					t.Errorf("rollback stderr lacks %q", w)
				}
			}
			if rec := lastChange(t, ev); rec.Kind != "rollback" || rec.Result != "interrupted" {
				t.Errorf("rollback change record: kind %q result %q, want an interrupted rollback", rec.Kind, rec.Result)
			}
			// The same command again restores the saved state.
			if code, out, errOut := lr.run(labTestPassword, rollback...); code != exitOK {
				t.Fatalf("rollback again: exit %d\n%s\n%s", code, out, errOut)
			}
		})
	}
}
