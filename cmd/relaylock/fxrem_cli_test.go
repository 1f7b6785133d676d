package main

// Tryout findings 5 (the inside view), 8 (evidence from another run) and
// 14 (Ctrl-C at the confirmation prompt), against the lab.

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/report/evidence"
)

// restartCalls counts the service restarts the lab host was asked for.
func restartCalls(calls []lab.ScriptCall) int {
	n := 0
	for _, c := range calls {
		if c.Script == "service-restart" {
			n++
		}
	}
	return n
}

// Finding 5: 127.0.0.1 is added to the IIS allow list by default, and the
// re-test comes from 127.0.0.1: it sees the inside view. No restart, not
// "still relays" (exit 4) but not verified (exit 5), the caveat in the
// evidence and the PDF.
func TestRemediateInsideViewNotVerified(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	for _, restart := range []string{"always", "ask"} {
		t.Run("restart="+restart, func(t *testing.T) {
			h := lab.NewIIS(lab.IISAllExceptEmpty)
			lr := startLab(t, h)
			ev, bk := filepath.Join(lr.dir, "ev.json"), filepath.Join(lr.dir, "backup.json")
			args := append(append([]string{"remediate", "--allow", "192.0.2.10", "--yes", "--restart", restart,
				"--evidence", ev, "--backup", bk}, lr.winrmArgs()...), lr.probeArgs()...)
			code, out, errOut := lr.run(labTestPassword, args...)
			if code != exitInconclusive {
				t.Fatalf("exit %d, want %d (not verified)\nstdout:\n%s\nstderr:\n%s", code, exitInconclusive, out, errOut)
			}
			for _, w := range []string{"not verified (inside view)", "127.0.0.1", "--no-loopback", "outside the allowed list"} {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if !strings.Contains(out, "NOT VERIFIED (inside view)") {
				t.Errorf("stdout does not say the re-test is not verified:\n%s", out)
			}
			if strings.Contains(errOut, "still relays") || strings.Contains(errOut, "Restart ") || strings.Contains(errOut, "--restart=always") {
				t.Errorf("stderr claims a relay or offers a restart:\n%s", errOut)
			}
			if n := restartCalls(h.Calls()); n != 0 {
				t.Errorf("the mail service was restarted %d time(s) for an inside view", n)
			}
			b, _, err := evidence.LoadVerified(ev)
			if err != nil {
				t.Fatal(err)
			}
			last := b.Audits[len(b.Audits)-1]
			if last.Purpose != evidence.PurposeRetest || len(last.InsideView) != 1 {
				t.Fatalf("the re-test records no inside view: %+v", last.InsideView)
			}
			iv := last.InsideView[0]
			if iv.Prober != "127.0.0.1" || iv.Allowed != "127.0.0.1" || !iv.Loopback || !slices.Contains(iv.Endpoints, lr.lab.SMTPAddr) {
				t.Errorf("inside view %+v, want prober and entry 127.0.0.1 (loopback) for %s", iv, lr.lab.SMTPAddr)
			}
			if restart != "always" {
				return
			}
			// The PDF says so where the re-test is shown, and does not
			// call the relay not fixed.
			needTool(t, "pdftotext")
			pdf := filepath.Join(lr.dir, "r.pdf")
			if code, out, errOut := lr.run("", "report", "--evidence", ev, "-o", pdf); code != exitOK {
				t.Fatalf("report: exit %d\n%s\n%s", code, out, errOut)
			}
			text := strings.Join(strings.Fields(pdfText(t, pdf)), " ")
			for _, w := range []string{"not verified (inside view)", "Inside view"} {
				if !strings.Contains(text, w) {
					t.Errorf("the PDF lacks %q", w)
				}
			}
			if strings.Contains(text, "the problem is not fixed") || strings.Contains(text, "still open on re-test") {
				t.Errorf("the PDF calls an inside view not fixed:\n%s", text)
			}
		})
	}
}

// otherMachineEvidence is an evidence file in which an Exchange 2003 lab
// at 127.0.0.1 (computer MAIL03) was inspected: another machine than the
// IIS lab (SMTP01) the tests then start at the same address.
func otherMachineEvidence(t *testing.T) string {
	t.Helper()
	ex := startLab(t, lab.NewExchange2003(lab.Ex2003Open))
	ev := filepath.Join(ex.dir, "ev.json")
	if code, out, errOut := ex.run(labTestPassword, append([]string{"inspect", "--evidence", ev}, ex.winrmArgs()...)...); code != exitOpen {
		t.Fatalf("inspect the Exchange 2003 lab: exit %d\n%s\n%s", code, out, errOut)
	}
	if ex.lab.WinRMHost != "127.0.0.1" {
		t.Skipf("the labs are not on one address (%s)", ex.lab.WinRMHost)
	}
	return ev
}

// Finding 8: an evidence file that recorded another machine under the
// same address is refused before anything is recorded or changed.
func TestRemediateRefusesEvidenceOfAnotherMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	ev := otherMachineEvidence(t)
	h := lab.NewIIS(lab.IISAllExceptEmpty)
	iis := startLab(t, h)
	original := stateOf(t, h)
	recorded, err := os.ReadFile(ev)
	if err != nil {
		t.Fatal(err)
	}
	bk := filepath.Join(iis.dir, "b.json")
	for _, extra := range [][]string{{"--yes"}, {"--dry-run"}} {
		args := append(append(append([]string{"remediate", "--allow", "192.0.2.10", "--evidence", ev, "--backup", bk}, extra...), iis.winrmArgs()...), iis.probeArgs()...)
		code, out, errOut := iis.run(labTestPassword, args...)
		if code != exitError {
			t.Fatalf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", extra, code, exitError, out, errOut)
		}
		for _, w := range []string{"SMTP01", "MAIL03", "iis", "exchange2003", "another machine", "fresh --evidence"} {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", extra, w, errOut)
			}
		}
		if stateOf(t, h) != original {
			t.Fatalf("%v: the IIS host was changed", extra)
		}
		if _, err := os.Stat(bk); err == nil {
			t.Errorf("%v: a backup was written", extra)
		}
		// Nothing of the other machine is recorded: not its probe, not
		// its inspection, not a plan.
		if now, _ := os.ReadFile(ev); !bytes.Equal(now, recorded) {
			t.Errorf("%v: the evidence file was changed", extra)
		}
	}
}

// Finding 8, fix: the same refusal, no report, and nothing of the run
// (not even its audit) added to the other machine's evidence.
func TestFixRefusesEvidenceOfAnotherMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	ev := otherMachineEvidence(t)
	h := lab.NewIIS(lab.IISAllExceptEmpty)
	lr := startLab(t, h)
	original := stateOf(t, h)
	recorded, _ := os.ReadFile(ev)
	_, smtpPort, _ := net.SplitHostPort(lr.lab.SMTPAddr)
	pdf := filepath.Join(lr.dir, "r.pdf")
	args := append([]string{"fix", lr.lab.Domain, "--dns-server", lr.lab.DNSAddr, "--ports", smtpPort}, lr.fixWinRMArgs()...)
	code, out, errOut := lr.run(labTestPassword, append(args,
		"--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never", "--timeout", "10s", "--evidence", ev, "-o", pdf)...)
	if code != exitError {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
	}
	for _, w := range []string{"SMTP01", "MAIL03", "another machine", "fresh --evidence", "no report written"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	if stateOf(t, h) != original {
		t.Error("the IIS host was changed")
	}
	if now, _ := os.ReadFile(ev); !bytes.Equal(now, recorded) {
		t.Error("the evidence file was changed")
	}
	if _, err := os.Stat(pdf); err == nil {
		t.Error("a report was written")
	}
}

// Finding 8: every endpoint unreachable before the change (here: the
// endpoints of another run's audit, whose lab is gone).
func TestRemediateUntestedBefore(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	// An audit, recorded, of a lab that then stops.
	gone := startLab(t, lab.NewIIS(lab.IISAllExceptEmpty))
	ev := filepath.Join(gone.dir, "ev.json")
	if code, out, errOut := gone.run("", "audit", gone.smtpTarget(), "--evidence", ev, "--timeout", "5s", "-q"); code != exitOpen {
		t.Fatalf("audit: exit %d\n%s\n%s", code, out, errOut)
	}
	gone.lab.Close()

	h := lab.NewIIS(lab.IISAllExceptEmpty)
	lr := startLab(t, h)
	original := stateOf(t, h)
	bk := filepath.Join(lr.dir, "b.json")
	base := append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never",
		"--evidence", ev, "--backup", bk, "--mail-domain", lr.lab.Domain, "--timeout", "5s"}, lr.winrmArgs()...)
	code, out, errOut := lr.run(labTestPassword, base...)
	if code != exitError {
		t.Fatalf("--yes with endpoints from the evidence, all unreachable: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
	}
	for _, w := range []string{"could not test any of " + gone.smtpTarget(), "--smtp-target", "nothing was changed"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	if stateOf(t, h) != original {
		t.Fatal("the host was changed")
	}
	if _, err := os.Stat(bk); err == nil {
		t.Error("a backup was written")
	}

	// Named by the operator, the same endpoint is their choice: applied,
	// and the unverifiable re-test exits 5.
	code, out, errOut = lr.run(labTestPassword, append(base, "--smtp-target", gone.smtpTarget())...)
	if code != exitInconclusive || stateOf(t, h) == original {
		t.Fatalf("--smtp-target given: exit %d, want %d, changed %v\nstdout:\n%s\nstderr:\n%s", code, exitInconclusive, stateOf(t, h) != original, out, errOut)
	}
	if !strings.Contains(errOut, "could not test any of") {
		t.Errorf("no warning that nothing could be tested before:\n%s", errOut)
	}
}

// Finding 8, interactive: the confirmation says that nothing could be
// tested before the change.
func TestRemediateUntestedBeforeSaidAtPrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	h := lab.NewIIS(lab.IISAllExceptEmpty)
	lr := startLab(t, h)
	original := stateOf(t, h)
	pr, pw := io.Pipe()
	defer pw.Close()
	var errb syncBuffer
	e := &env{Stdin: pr, Stdout: io.Discard, Stderr: &errb, StdinIsTerminal: true,
		Getenv: func(k string) string {
			if k == "RELAYLOCK_WINRM_PASSWORD" {
				return labTestPassword
			}
			return ""
		}}
	go func() {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if strings.Contains(errb.String(), "[y/N]") {
				pw.Write([]byte("n\n"))
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, append([]string{"relaylock", "remediate", "--allow", "192.0.2.10", "--no-loopback", "--smtp-target", dead,
		"--mail-domain", lr.lab.Domain, "--timeout", "5s", "--backup", filepath.Join(lr.dir, "b.json")}, lr.winrmArgs()...), e)
	text := errb.String()
	i := strings.Index(text, "[y/N]")
	if i < 0 {
		t.Fatalf("no prompt (exit %d):\n%s", code, text)
	}
	if !strings.Contains(text[:i], "NOTE: the probe before the change could not test any of "+dead) {
		t.Errorf("the confirmation does not say nothing could be tested before:\n%s", text)
	}
	if stateOf(t, h) != original {
		t.Error("declined, but the host was changed")
	}
}

// Finding 14: Ctrl-C at the confirmation prompt, through a terminal, is
// an interruption: exit 130, nothing changed.
func TestCtrlCAtConfirmationPrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs relaylock")
	}
	bin := relaylockBinary(t)
	h := lab.NewIIS(lab.IISAllExceptEmpty)
	lr := startLab(t, h)
	original := stateOf(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append(append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--restart", "never",
		"--backup", filepath.Join(lr.dir, "b.json")}, lr.winrmArgs()...), lr.probeArgs()...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "RELAYLOCK_WINRM_PASSWORD="+labTestPassword)
	term, err := startPTY(cmd)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer term.Close()
	var transcript syncBuffer
	prompted := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		closed := false
		for {
			n, err := term.Read(buf)
			transcript.Write(buf[:n])
			if !closed && strings.Contains(transcript.String(), "[y/N]") {
				closed = true
				close(prompted)
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-prompted:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("no confirmation prompt; terminal said:\n%s", transcript.String())
	}
	term.Write([]byte{3}) // ^C: the terminal sends SIGINT
	werr := cmd.Wait()
	select { // the terminal's last output, read to its end
	case <-done:
	case <-time.After(10 * time.Second):
	}
	code := cmd.ProcessState.ExitCode()
	if code != exitCancelled {
		t.Fatalf("exit %d (%v), want %d\nterminal:\n%s", code, werr, exitCancelled, transcript.String())
	}
	if out := transcript.String(); !strings.Contains(out, "interrupted") || strings.Contains(out, "not confirmed") {
		t.Errorf("terminal:\n%s", out)
	}
	if stateOf(t, h) != original {
		t.Error("the host was changed")
	}
}
