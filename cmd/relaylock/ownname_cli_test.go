package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
)

// TestCorrectFixReadsClosedByAddressAndHostName reproduces issue 13 item
// 1: after a correct fix (--no-loopback), the lab hosts accept any local
// part at every local name (IIS drops them into its Drop folder), and an
// audit by address or by host name, without --mail-domain, read that as
// relaying through R13/R18/R19/R28 at [127.0.0.1] and exited 3; remediate
// with --smtp-target ADDRESS exited 4 on a correct fix. Each own name now
// has its own accept-any-local control, so all of them read closed.
func TestCorrectFixReadsClosedByAddressAndHostName(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	for _, tc := range []struct {
		name string
		host func() lab.Host
	}{
		{"iis", func() lab.Host { return lab.NewIIS(lab.IISAllExceptEmpty) }},
		{"exchange2003", func() lab.Host {
			h := lab.NewExchange2003(lab.Ex2003Open)
			h.SetSyncDelay(50 * time.Millisecond)
			return h
		}},
		{"exchange2016", func() lab.Host { return lab.Exchange2016OpenCustomConnector() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lr := startLab(t, tc.host())
			_, port, _ := net.SplitHostPort(lr.lab.SMTPAddr)
			ev, bk := filepath.Join(lr.dir, "ev.json"), filepath.Join(lr.dir, "backup.json")
			// The re-test is by address only: no --mail-domain.
			args := append([]string{"remediate", "--allow", "127.0.0.2", "--no-loopback", "--yes", "--restart", "always",
				"--ds2mb-timeout", "10s", "--evidence", ev, "--backup", bk, "--smtp-target", lr.lab.SMTPAddr, "--timeout", "10s"}, lr.winrmArgs()...)
			code, out, errOut := lr.run(labTestPassword, args...)
			if code != exitOK || !strings.Contains(out, "after closed") {
				t.Fatalf("remediate --smtp-target %s: exit %d, want 0 and after closed\nstdout:\n%s\nstderr:\n%s", lr.lab.SMTPAddr, code, out, errOut)
			}
			if strings.Contains(errOut, "still relays") || strings.Contains(errOut, "restarting ") {
				t.Errorf("a correct fix restarted the service:\n%s", errOut)
			}
			for _, target := range []string{lr.lab.SMTPAddr, lr.lab.MXHost + ":" + port} {
				code, out, errOut := lr.run(labTestPassword, "audit", "--dns-server", lr.lab.DNSAddr, "--timeout", "10s", target)
				if code != exitOK || !strings.Contains(out, "overall: CLOSED") {
					t.Errorf("audit %s after the fix: exit %d, want 0 (closed)\nstdout:\n%s\nstderr:\n%s", target, code, out, errOut)
				}
			}
			// Rolled back, the same address-only re-test finds it open
			// again: the own-name controls do not hide a real relay.
			rb := append([]string{"rollback", "--backup", bk, "--evidence", ev, "--smtp-target", lr.lab.SMTPAddr, "--timeout", "10s"}, lr.winrmArgs()...)
			if code, out, errOut := lr.run(labTestPassword, rb...); code != exitOpen {
				t.Errorf("rollback --smtp-target %s: exit %d, want %d (open again)\nstdout:\n%s\nstderr:\n%s", lr.lab.SMTPAddr, code, exitOpen, out, errOut)
			}
		})
	}
}

// TestInconclusiveExitCode: an audit that finds nothing open but cannot
// test a target (NXDOMAIN, connection refused) exits 5, not 0 as a closed
// one does (issue 13 item 4).
func TestInconclusiveExitCode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	lr := startLab(t, lab.NewIIS(lab.IISAllExceptEmpty))
	for _, target := range []string{refused, "nonexistent.invalid"} {
		code, out, errOut := runCLI(t, "", "audit", "--dns-server", lr.lab.DNSAddr, "--timeout", "5s", target)
		if code != exitInconclusive || !strings.Contains(out, "INCONCLUSIVE") || !strings.Contains(errOut, "inconclusive") {
			t.Errorf("audit %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", target, code, exitInconclusive, out, errOut)
		}
	}
}

// TestFixInconclusiveExitCode: fix whose audit finds nothing open but
// could not test the domain exits 5, not 0.
func TestFixInconclusiveExitCode(t *testing.T) {
	lr := startLab(t, lab.NewIIS(lab.IISAllExceptEmpty))
	dir := t.TempDir()
	code, out, errOut := runCLI(t, labTestPassword, "fix", "nonexistent.invalid", "--allow", "127.0.0.2", "--yes",
		"--dns-server", lr.lab.DNSAddr, "--timeout", "5s",
		"--evidence", filepath.Join(dir, "ev.json"), "-o", filepath.Join(dir, "r.pdf"))
	if code != exitInconclusive {
		t.Errorf("fix nonexistent.invalid: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitInconclusive, out, errOut)
	}
}
