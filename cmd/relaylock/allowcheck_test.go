package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
)

// TestRemediateRefusesForeignConnector: --connector-name naming Exchange's
// Internet-facing Default Frontend (or any connector relaylock did not
// create) is refused by the plan: exit 1, the connector and the reason
// named, no exchange-write, the host unchanged; with --dry-run too.
func TestRemediateRefusesForeignConnector(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"Default Frontend EX1", []string{"--dry-run"}},
		{"Default Frontend EX1", []string{"--yes"}},
		{"Client Frontend EX1", []string{"--yes"}},
		{"App Relay", []string{"--yes"}},
	} {
		t.Run(tc.name+" "+tc.extra[0], func(t *testing.T) {
			host := lab.Exchange2016OpenCustomConnector()
			lr := startLab(t, host)
			before := stateOf(t, host)
			// --backup and --evidence in the test's directory: were the
			// refusal missing, the change's backup must not land in the tree.
			args := append([]string{"remediate", "--allow", "192.0.2.77", "--connector-name", tc.name, "--no-retest", "--restart", "never",
				"--backup", filepath.Join(lr.dir, "bk.json"), "--evidence", filepath.Join(lr.dir, "ev.json")}, tc.extra...)
			code, out, errOut := lr.run(labTestPassword, append(args, lr.winrmArgs()...)...)
			if code != exitError || !strings.Contains(errOut, `EX1\`+tc.name) || !strings.Contains(errOut, "relaylock did not create") {
				t.Errorf("exit %d, want %d naming the connector\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
			}
			for _, r := range lr.lab.WinRM.Runs() {
				if r.Script == remediate.ExchangeWriteScript {
					t.Errorf("exchange-write ran: %q", r.Params)
				}
			}
			if stateOf(t, host) != before {
				t.Error("the host changed")
			}
		})
	}
}

// TestStaticRefusalsBeforeConnecting: an invalid --connector-name, an
// allow entry with host bits set and allow lists whose union is too wide
// exit 2 before any probe or WinRM command, naming values as typed.
func TestStaticRefusalsBeforeConnecting(t *testing.T) {
	var all8 []string
	for i := 0; i < 256; i++ {
		all8 = append(all8, fmt.Sprintf("%d.0.0.0/8", i))
	}
	host := lab.Exchange2016OpenCustomConnector()
	lr := startLab(t, host)
	before := stateOf(t, host)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--allow", "192.0.2.77", "--connector-name", strings.Repeat("r", 65)}, "--connector-name"},
		{[]string{"--allow", "192.0.2.77", "--connector-name", `EX1\Default Frontend EX1`}, "backslash"},
		{[]string{"--allow", "192.0.2.77", "--connector-name", " Relay"}, "leading/trailing spaces"},
		{[]string{"--allow", "1.2.3.4/8"}, "--allow: 1.2.3.4/8 has host bits set; did you mean 1.0.0.0/8?"},
		{[]string{"--allow", "2001:db8::1/32"}, "2001:db8::1/32 has host bits set; did you mean 2001:db8::/32?"},
		{[]string{"--allow", strings.Join(all8, ",")}, "every IPv4 address"},
		{[]string{"--allow", "10.0.0.0/8", "--allow", "12.0.0.0/8"}, "10.0.0.0/8, 12.0.0.0/8 together cover 3355443"},
		{[]string{"--allow", "2001:db8::/33,2001:db8:8000::/33,2001:db9::/33"}, "--max-prefix6"},
	} {
		for _, cmd := range [][]string{
			append(append([]string{"remediate", "--yes", "--evidence", filepath.Join(lr.dir, "ev.json")}, lr.winrmArgs()...), lr.probeArgs()...),
			fixArgs(lr, "--yes"),
		} {
			code, _, errOut := lr.run(labTestPassword, append(cmd, tc.args...)...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("%s %q: exit %d, want %d with %q\n%s", cmd[0], tc.args, code, exitUsage, tc.want, errOut)
			}
		}
	}
	if runs := lr.lab.WinRM.Runs(); len(runs) != 0 {
		t.Errorf("%d WinRM commands ran", len(runs))
	}
	if logs := lr.logText(); logs != "" {
		t.Errorf("a refused run reached the lab:\n%s", logs)
	}
	if stateOf(t, host) != before {
		t.Error("the host changed")
	}
	// --force lifts the union limits, not the host-bits refusal.
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--allow", "10.0.0.0/8", "--allow", "12.0.0.0/8", "--force"}, true},
		{[]string{"--allow", "10.0.0.0/8", "--allow", "12.0.0.0/8", "--max-prefix", "7"}, true},
		{[]string{"--allow", "1.2.3.4/8", "--force"}, false},
	} {
		cmd := append(append([]string{"remediate", "--dry-run", "--no-retest"}, lr.winrmArgs()...), tc.args...)
		code, _, errOut := lr.run(labTestPassword, cmd...)
		if (code != exitUsage) != tc.ok {
			t.Errorf("%q: exit %d\n%s", tc.args, code, errOut)
		}
	}
}
