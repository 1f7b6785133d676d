package main

// Help and conventions (issue 15 items 9 and 12): static refusal of wide
// allow lists, one default per flag, placeholders, -o/--out/-v, --quiet and
// the RELAYLOCK_* environment defaults.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/audit/smtptest"
	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/internal/lab"
)

// TestAllowRefusedBeforeTouching: an allow list that covers everything or
// is too wide is refused (exit 2) before the probe and the WinRM read,
// named as typed.
func TestAllowRefusedBeforeTouching(t *testing.T) {
	h := lab.NewIIS(lab.IISAllExceptEmpty)
	lr := startLab(t, h)
	state0 := stateOf(t, h)
	for _, entry := range []string{"0.0.0.0/0", "::/0", "16.0.0.0/4", "0.0.0.0-255.255.255.255", "2001::/16", "192.0.2.1,10.0.0.0/7"} {
		for _, cmd := range [][]string{
			fixArgs(lr, "--allow", entry, "--yes"),
			append(append([]string{"remediate", "--allow", entry, "--yes"}, lr.winrmArgs()...), lr.probeArgs()...),
		} {
			code, _, errOut := lr.run(labTestPassword, cmd...)
			typed := entry[strings.LastIndex(entry, ",")+1:]
			if code != exitUsage || !strings.Contains(errOut, "allow entry "+typed+" ") {
				t.Errorf("%s --allow %s: exit %d, want %d naming %q\n%s", cmd[0], entry, code, exitUsage, typed, errOut)
			}
		}
	}
	if logs := lr.logText(); logs != "" {
		t.Errorf("a refused allow list reached the lab:\n%s", logs)
	}
	if stateOf(t, h) != state0 {
		t.Error("a refused allow list changed the lab host")
	}
	// The limits are the ones given, and --force lifts them.
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--allow", "16.0.0.0/4", "--max-prefix", "4"}, true},
		{[]string{"--allow", "16.0.0.0/4", "--force"}, true},
		{[]string{"--allow", "0.0.0.0/0", "--force"}, true},
		{[]string{"--allow", "2001:db8::/33"}, true},
		{[]string{"--allow", "192.0.2.0/24", "--max-prefix", "33"}, false},
	} {
		var err error
		cmd := &cli.Command{Name: "x", Flags: remediateFlags(), Action: func(c *cli.Context) error { _, err = requestFrom(c); return nil }}
		a := &cli.App{Name: "t", Commands: []*cli.Command{cmd}, Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{}}
		if rerr := a.Run(append([]string{"t", "x"}, tc.args...)); rerr != nil {
			t.Fatal(rerr)
		}
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.args, err, tc.ok)
		}
	}
}

// helpOf renders `relaylock help CMD`.
func helpOf(t *testing.T, name string) string {
	t.Helper()
	code, out, errOut := runCLI(t, "", "help", name)
	if code != 0 {
		t.Fatalf("help %s: exit %d %s", name, code, errOut)
	}
	return out
}

func TestHelpConventions(t *testing.T) {
	app := newApp(&env{})
	flagLine := regexp.MustCompile(`^\s+(-{1,2}[a-z0-9-]+)(, -{1,2}[a-z0-9-]+)*( (\S+))?`)
	oneDefault := regexp.MustCompile(`\(default: [^)]*\)`)
	for _, c := range app.Commands {
		if c.Name == "help" {
			continue
		}
		help := helpOf(t, c.Name)
		for _, line := range strings.Split(help, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(line), "-") {
				continue
			}
			// One default per flag, in one form.
			rest := oneDefault.ReplaceAllString(line, "")
			if strings.Count(line, "(default: ") > 1 || regexp.MustCompile(`\(default |default: |; default`).MatchString(rest) {
				t.Errorf("%s: flag with two defaults or a default in prose:\n%s", c.Name, line)
			}
			// Placeholders are words in capitals, never "value".
			if m := flagLine.FindStringSubmatch(line); m != nil && m[4] != "" && !strings.HasPrefix(m[4], "[") {
				if m[4] == "value" || m[4] != strings.ToUpper(m[4]) {
					t.Errorf("%s: placeholder %q is not a capitalised name:\n%s", c.Name, m[4], line)
				}
			}
		}
		for _, f := range c.Flags {
			names := f.Names()
			// -o is --output wherever it exists; --out only in demo, a DIR.
			if slicesContains(names, "o") && names[0] != "output" {
				t.Errorf("%s: -o is --%s, want --output", c.Name, names[0])
			}
			if slicesContains(names, "out") && c.Name != "demo" {
				t.Errorf("%s: --out means a file here and a folder in demo", c.Name)
			}
			if slicesContains(names, "v") && names[0] != "verbose" {
				t.Errorf("%s: -v is --%s", c.Name, names[0])
			}
		}
	}
	if code, out, _ := runCLI(t, "", "-V"); code != 0 || !strings.Contains(out, "version") {
		t.Errorf("-V: exit %d %q", code, out)
	}
	if code, out, _ := runCLI(t, "", "-v"); code != exitUsage || strings.Contains(out, "version") {
		t.Errorf("-v printed the version (exit %d): it is verbose in verify", code)
	}
	if h := helpOf(t, "audit"); regexp.MustCompile(`--ticket ID\s+[^\n]*every change`).MatchString(h) {
		t.Errorf("audit --ticket claims to be recorded with every change; audit changes nothing")
	}
	if code, _, errOut := runCLI(t, "", "completion"); code != exitUsage || !strings.Contains(errOut, "fish") {
		t.Errorf("completion without a shell: exit %d %q", code, errOut)
	}
	if code, out, _ := runCLI(t, "", "completion", "fish"); code != 0 || !strings.Contains(out, "complete -c relaylock") {
		t.Errorf("completion fish: exit %d %q", code, out)
	}
}

func slicesContains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestDemoAcceptsLabPlatforms: demo runs on every platform lab accepts.
func TestDemoAcceptsLabPlatforms(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	code, out, errOut := runCLI(t, "", "demo", "--platform", "exchange2019", "--out", t.TempDir())
	if code != exitOK || !strings.Contains(out, "simulated exchange2019 host") {
		t.Errorf("demo --platform exchange2019: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "", "demo", "--platform", "exchange1999"); code != exitUsage || !strings.Contains(errOut, "exchange2019") {
		t.Errorf("demo --platform exchange1999: exit %d %s", code, errOut)
	}
}

// TestQuiet: --quiet (before or after the command) drops progress lines
// and keeps the results.
func TestQuiet(t *testing.T) {
	lr := startLab(t, lab.NewIIS(lab.IISAllExceptEmpty))
	args := append(append([]string{"remediate", "--allow", "192.0.2.10", "--dry-run"}, lr.winrmArgs()...), lr.probeArgs()...)
	_, out, errOut := lr.run(labTestPassword, args...)
	if !strings.Contains(errOut, "relaylock: reading") || !strings.Contains(out, "Plan for") {
		t.Fatalf("without --quiet: no progress or no plan:\n%s\n%s", out, errOut)
	}
	for _, q := range [][]string{append([]string{"--quiet"}, args...), append(args[:1:1], append([]string{"-q"}, args[1:]...)...)} {
		_, qout, qerr := lr.run(labTestPassword, q...)
		if strings.Contains(qerr, "relaylock: reading") || strings.Contains(qerr, "probing") {
			t.Errorf("%q printed progress:\n%s", q[:2], qerr)
		}
		if !strings.Contains(qout, "Plan for") {
			t.Errorf("%q dropped the result:\n%s", q[:2], qout)
		}
	}
}

// TestEnvironmentDefaults: RELAYLOCK_PROBE_DOMAIN, RELAYLOCK_DNS_SERVER,
// RELAYLOCK_WINRM_USER and RELAYLOCK_WINRM_CA fill their flags; a flag
// given wins.
func TestEnvironmentDefaults(t *testing.T) {
	closed := smtptest.Serve(t, smtptest.Closed554())
	testResolver = &audit.MockResolver{Addrs: map[string][]netip.Addr{}}
	t.Cleanup(func() { testResolver = nil })
	t.Setenv(envProbeDomain, "audit.consultant.example")
	t.Setenv(envDNSServer, "127.0.0.1:5353,127.0.0.2:5353")
	audit1 := func(extra ...string) audit.OptionsSummary {
		var stdout, stderr bytes.Buffer
		e := &env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
		code := run(context.Background(), append([]string{"relaylock", "audit", "--format", "json", "--helo", "probe.example.net", "--mail-domain", "example.com", closed}, extra...), e)
		var r audit.Result
		if code != exitOK || json.Unmarshal(stdout.Bytes(), &r) != nil {
			t.Fatalf("audit: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
		}
		if strings.Contains(stderr.String(), "using probe domain example.net") {
			t.Errorf("RELAYLOCK_PROBE_DOMAIN set, but audit fell back to example.net")
		}
		return r.Options
	}
	o := audit1()
	if o.ProbeDomain != "audit.consultant.example" || strings.Join(o.DNSServers, ",") != "127.0.0.1:5353,127.0.0.2:5353" {
		t.Errorf("from the environment: probe domain %q, DNS %q", o.ProbeDomain, o.DNSServers)
	}
	if o := audit1("--probe-domain", "flag.example"); o.ProbeDomain != "flag.example" {
		t.Errorf("the flag did not win: %q", o.ProbeDomain)
	}
	ca := writeSecret(t, "not a PEM file, only its name matters here", 0o600)
	t.Setenv(engagement.EnvWinRMUser, "CORP\\auditor")
	t.Setenv(engagement.EnvWinRMCA, ca)
	e, _ := winrmEnv(map[string]string{engagement.EnvWinRMPassword: testPW})
	cfg, _, _ := parseWinRM(t, e, "--winrm-host", "mail.corp.example")
	if cfg.User != "CORP\\auditor" || cfg.CACertFile != ca {
		t.Errorf("from the environment: user %q, CA %q", cfg.User, cfg.CACertFile)
	}
	for _, name := range []string{envProbeDomain, envDNSServer, engagement.EnvWinRMUser, engagement.EnvWinRMCA} {
		if !strings.Contains(helpOf(t, "fix"), "$"+name) {
			t.Errorf("help fix does not show %s", name)
		}
	}
}
