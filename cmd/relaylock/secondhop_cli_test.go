package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// The second hop over WinRM (issue 14 §1), through the real client:
// a local account reaches the local metabase (IIS SMTP) but not Active
// Directory, over Basic and NTLM alike; a refused --hop-user account is
// named as a second-hop failure with its fixes, and nothing is read or
// changed.
func TestSecondHopOverWinRM(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	tests := []struct {
		name   string
		host   func() lab.Host
		user   string // lab account ("" = the lab's default)
		extra  []string
		code   int
		want   []string // in stderr (failures) or stdout
		sealed bool
		// prepared: the host's administrator ran what the README asks
		// (lab.HostPreparation: WinRM 2.0's memory quota raised).
		prepared bool
	}{
		{"IIS, Basic, local account", func() lab.Host { return lab.NewIIS(lab.IISAllExceptEmpty) }, "Administrator",
			[]string{"--winrm-auth", "basic"}, exitOpen, []string{"IIS-RELAY-ALL-EXCEPT-EMPTY"}, false, false},
		{"Exchange 2003, Basic, local account", func() lab.Host { return lab.NewExchange2003(lab.Ex2003Open) }, "Administrator",
			[]string{"--winrm-auth", "basic"}, exitError,
			[]string{"second hop", "Active Directory (LDAP)", "0x8007052E", "were refused", "--hop-user"}, false, false},
		{"Exchange 2016, NTLM sealed HTTP, local account", func() lab.Host { return lab.Exchange2016OpenCustomConnector() }, "Administrator",
			nil, exitError, []string{"second hop", "the Exchange shell (http://ex1.corp.example/PowerShell/)", "Access is denied"}, true, false},
		{"Exchange 2007, NTLM, domain account", func() lab.Host { return lab.Exchange2007OpenDefault() }, "",
			nil, exitOpen, []string{"Platform:  exchange (Exchange 2007"}, false, true},
		// Unprepared, WinRM 2.0's 150 MB default ends the hop check.
		{"Exchange 2007, NTLM, WinRM 2.0's default quota", func() lab.Host { return lab.Exchange2007OpenDefault() }, "",
			nil, exitError, []string{"MaxMemoryPerShellMB", "150 MB", `winrm set winrm/config/winrs @{MaxMemoryPerShellMB="1024"}`, "nothing was read or changed"}, false, false},
		{"Exchange 2019, refused --hop-user", func() lab.Host { return lab.Exchange2019AnonDefaultFrontend() }, "",
			[]string{"--hop-user", `CORP\someone-else`}, exitError, []string{"second hop", "refused", "Ways to fix it"}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host()
			lr := startLabConfig(t, lab.Config{Host: host, User: tc.user, Password: labTestPassword, SealedHTTP: tc.sealed, PrepareHost: tc.prepared})
			before := stateOf(t, host)
			ev := filepath.Join(lr.dir, "ev.json")
			args := append(append([]string{"inspect", "--evidence", ev}, lr.winrmArgs()...), tc.extra...)
			code, out, errOut := runCLIEnv(t, map[string]string{"RELAYLOCK_WINRM_PASSWORD": labTestPassword, "RELAYLOCK_HOP_PASSWORD": "Other-Account-Pw-1"}, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", w, out, errOut)
				}
			}
			if stateOf(t, host) != before {
				t.Error("inspect changed the host")
			}
			if tc.code != exitError {
				return
			}
			// The evidence holds the failed check, without a secret.
			raw, err := os.ReadFile(ev)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw), labTestPassword) || strings.Contains(string(raw), "Other-Account-Pw-1") {
				t.Error("a password is in the evidence")
			}
			var b evidence.Bundle
			if err := json.Unmarshal(raw, &b); err != nil {
				t.Fatal(err)
			}
			if len(b.Inspections) != 1 || len(b.Inspections[0].Runs) != 2 || b.Inspections[0].Runs[1].Script != remediate.HopCheckScript {
				t.Fatalf("evidence does not record detect + hop-check: %+v", b.Inspections)
			}
			if hop := b.Inspections[0].Runs[1].Hop; !strings.HasPrefix(hop, "explicit credential of ") {
				t.Errorf("the hop-check run records second_hop %q", hop)
			}
		})
	}
}

// runCLIEnv runs relaylock in-process with the given environment.
func runCLIEnv(t *testing.T, environ map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return environ[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code = run(ctx, append([]string{"relaylock"}, args...), e)
	return code, out.String(), errb.String()
}

// fix, end to end over WinRM, on the Exchange versions the demo does not
// cover: each crosses the second hop with the WinRM account.
func TestFixAcrossTheSecondHop(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	for name, mk := range map[string]func() lab.Host{
		"exchange2007": func() lab.Host { return lab.Exchange2007OpenDefault() },
		"exchange2010": func() lab.Host { return lab.Exchange2010OpenDefault() },
		"exchange2019": func() lab.Host { return lab.Exchange2019AnonDefaultFrontend() },
	} {
		t.Run(name, func(t *testing.T) {
			// Prepared as the README asks (WinRM 2.0's quota raised).
			lr := startLabConfig(t, lab.Config{Host: mk(), Password: labTestPassword, PrepareHost: true})
			_, smtpPort, _ := net.SplitHostPort(lr.lab.SMTPAddr)
			ev := filepath.Join(lr.dir, "ev.json")
			args := []string{"fix", lr.lab.Domain, "--dns-server", lr.lab.DNSAddr, "--ports", smtpPort, "--timeout", "10s",
				"--allow", "192.0.2.25", "--restart", "never", "--yes", "--evidence", ev, "-o", filepath.Join(lr.dir, "r.pdf")}
			args = append(args, lr.fixWinRMArgs()...)
			code, out, errOut := lr.run(labTestPassword, args...)
			if code != exitOK {
				t.Fatalf("fix: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			explicit := 0
			for _, r := range lr.lab.WinRM.Runs() {
				if r.ExplicitHop {
					explicit++
				}
			}
			if explicit == 0 {
				t.Error("no script crossed the second hop")
			}
		})
	}
}
