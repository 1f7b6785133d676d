//go:build unix

package main

// Data safety under SIGKILL (issue 9): `relaylock remediate`, killed at
// any point, leaves the evidence file either as it was or as the new
// version (never half-written), never changes a host without a backup on
// disk first, and any backup it left restores the host exactly with
// `relaylock rollback --backup`.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

func TestRemediateSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds relaylock and kills it repeatedly")
	}
	bin := relaylockBinary(t)
	const pw = "Kill-Test-Pw-5e"
	type point struct {
		name string
		// rule, when set, holds the run at a WinRM step; the process is
		// killed as soon as the rule fires. Else it is killed after wait.
		rule *lab.FaultRule
		wait time.Duration
	}
	hold := func(r lab.FaultRule) *lab.FaultRule {
		r.Kind, r.Delay, r.Times = lab.FaultDelay, time.Minute, 1
		return &r
	}
	points := []point{
		{name: "while reading the host", rule: hold(lab.FaultRule{Script: remediate.ExchangeReadScript})},
		{name: "before the change runs", rule: hold(lab.FaultRule{Script: remediate.ExchangeWriteScript})},
		{name: "after the change ran, before its result", rule: hold(lab.FaultRule{Script: remediate.ExchangeWriteScript, AfterRun: true})},
		{name: "while reading back", rule: hold(lab.FaultRule{Script: remediate.ExchangeReadScript, Nth: 2})},
	}
	for _, d := range []time.Duration{20, 60, 100, 140, 180, 220, 260, 320} {
		points = append(points, point{name: fmt.Sprintf("after %dms", d), wait: d * time.Millisecond})
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			host := lab.Exchange2016OpenCustomConnector()
			h := startLabWith(t, host, pw)
			original := stateOf(t, host)
			ev, bk := filepath.Join(h.dir, "evidence.json"), filepath.Join(h.dir, "backup.json")

			// An existing evidence file: the audit that found the relay.
			if code, out, errOut := runCLI(t, pw, "audit", h.lab.SMTPAddr, "--mail-domain", h.lab.Domain, "--timeout", "10s", "--evidence", ev); code != exitOpen {
				t.Fatalf("audit: exit %d\n%s\n%s", code, out, errOut)
			}
			old, err := os.ReadFile(ev)
			if err != nil {
				t.Fatal(err)
			}

			if p.rule != nil {
				h.lab.Faults.Add(*p.rule)
			}
			args := append(append([]string{"remediate", "--allow", "192.0.2.25", "--yes", "--restart", "never",
				"--evidence", ev, "--backup", bk}, h.winrmArgs()...), h.probeArgs()...)
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "RELAYLOCK_WINRM_PASSWORD="+pw)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			finished := false
			if p.rule != nil {
				deadline := time.After(60 * time.Second)
				for h.lab.Faults.Fired() == 0 && !finished {
					select {
					case err := <-exited:
						t.Fatalf("remediate ended (%v) before reaching the kill point\n%s", err, stderr.String())
					case <-deadline:
						cmd.Process.Kill()
						<-exited
						t.Fatalf("the kill point was never reached\n%s", stderr.String())
					case <-time.After(5 * time.Millisecond):
					}
				}
			} else {
				select {
				case err := <-exited:
					finished = true
					t.Logf("remediate finished (%v) before the kill", err)
				case <-time.After(p.wait):
				}
			}
			if !finished {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Logf("kill: %v", err)
				}
				<-exited
			}
			h.lab.Faults.Reset()
			t.Logf("killed=%v; output:\n%s", !finished, stderr.String())

			// The evidence is the old file or a complete new one.
			data, err := os.ReadFile(ev)
			if err != nil {
				t.Fatalf("evidence gone: %v", err)
			}
			if !bytes.Equal(data, old) {
				if _, err := evidence.Parse(data); err != nil {
					t.Fatalf("evidence is neither the old file nor a valid new one: %v", err)
				}
			}
			if _, res, err := evidence.CheckFile(ev); err != nil || len(res.Problems) > 0 {
				var probs []string
				if res != nil {
					probs = res.Problems
				}
				t.Fatalf("evidence does not verify: %v %v", err, probs)
			}
			if _, err := os.Stat(ev + ".lock"); err == nil {
				t.Logf("the kill left %s behind", filepath.Base(ev)+".lock")
			}
			// The next run can add to the evidence at once (a lock left by
			// the killed process does not hold it up).
			start := time.Now()
			if code, out, errOut := runCLI(t, pw, append([]string{"inspect", "--evidence", ev}, h.winrmArgs()...)...); code == exitError || code == exitUsage {
				t.Fatalf("inspect after the kill: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("inspect after the kill took %s (waiting for a dead process's lock?)", d)
			}

			// No change without a backup on disk first.
			if _, err := os.Stat(bk); err != nil {
				if got := stateOf(t, host); got != original {
					t.Fatalf("the host changed but no backup exists:\n got %s\nwant %s", got, original)
				}
				return
			}
			_, sum, err := remediate.LoadBackup(bk)
			if err != nil {
				t.Fatalf("backup does not load: %v", err)
			}
			// Killed after the backup was written but before the evidence
			// recorded it: no change was made (none is made before the
			// backup is recorded), and rollback --evidence refuses a backup
			// the evidence does not record.
			if b, err := evidence.Load(ev); err == nil && !slices.ContainsFunc(b.Backups, func(r evidence.BackupRef) bool { return r.SHA256 == sum }) {
				if got := stateOf(t, host); got != original {
					t.Fatalf("the host changed but the evidence records no backup:\n got %s\nwant %s", got, original)
				}
				code, out, errOut := runCLI(t, pw, append(append([]string{"rollback", "--backup", bk, "--evidence", ev}, h.winrmArgs()...), h.probeArgs()...)...)
				if code != exitError || !strings.Contains(errOut, "is not among") {
					t.Errorf("rollback of a backup the evidence does not record: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
				}
				return
			}
			// The backup restores the original state.
			code, out, errOut := runCLI(t, pw, append(append([]string{"rollback", "--backup", bk, "--evidence", ev}, h.winrmArgs()...), h.probeArgs()...)...)
			if code != exitOpen {
				t.Errorf("rollback: exit %d, want %d (open again)\nstdout:\n%s\nstderr:\n%s", code, exitOpen, out, errOut)
			}
			if got := stateOf(t, host); got != original {
				t.Errorf("after rollback the host differs from the original:\n got %s\nwant %s", got, original)
			}
			if _, res, err := evidence.CheckFile(ev); err != nil || len(res.Problems) > 0 {
				t.Errorf("evidence after rollback does not verify: %v %+v", err, res)
			}
			leftovers, _ := filepath.Glob(filepath.Join(h.dir, "*.tmp*"))
			for _, l := range leftovers {
				if !strings.HasSuffix(l, ".pem") {
					t.Logf("temporary file left by the kill: %s", filepath.Base(l))
				}
			}
		})
	}
}
