package main

// In-process CLI tests against the lab: inspect for each platform's
// findings and each kind of failure (issue 4), remediate and rollback end
// to end with failure injection (issue 5).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/krbtest"
	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/report/evidence"
)

const labTestPassword = "Lab-Test-Secret-7f3a9c"

// labRun is a lab plus an in-process CLI wired to it; every log line the
// lab writes is kept (the secrets test searches them).
type labRun struct {
	t    *testing.T
	lab  *lab.Lab
	ca   string
	dir  string
	mu   sync.Mutex
	logs bytes.Buffer
	// sealed: WinRM is plain HTTP with NTLM message encryption required
	// (lab.Config.SealedHTTP), the default Windows listener.
	sealed bool
	// krb is the KDC of a lab that accepts Kerberos (kerberos_cli_test.go):
	// winrmArgs then log on with Kerberos.
	krb *krbtest.KDC
}

func startLab(t *testing.T, host lab.Host) *labRun {
	t.Helper()
	return startLabWith(t, host, labTestPassword)
}

func startLabWith(t *testing.T, host lab.Host, password string) *labRun {
	t.Helper()
	return startLabConfig(t, lab.Config{Host: host, Password: password})
}

// startLabConfig starts a lab from cfg, logging into the labRun.
func startLabConfig(t *testing.T, cfg lab.Config) *labRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lr := &labRun{t: t, dir: t.TempDir(), sealed: cfg.SealedHTTP}
	cfg.Logf = func(format string, a ...any) {
		lr.mu.Lock()
		fmt.Fprintf(&lr.logs, format+"\n", a...)
		lr.mu.Unlock()
	}
	l, err := lab.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	lr.lab = l
	lr.ca = filepath.Join(lr.dir, "ca.pem")
	if err := os.WriteFile(lr.ca, l.CACertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return lr
}

// logText is everything the lab logged so far.
func (lr *labRun) logText() string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.logs.String()
}

// winrmArgs are the flags that reach the lab's WinRM face.
func (lr *labRun) winrmArgs() []string {
	args := []string{"--winrm-host", lr.lab.WinRMHost, "--winrm-port", fmt.Sprint(lr.lab.WinRMPort)}
	if lr.krb != nil {
		return append(args, lr.kerberosFlags()...)
	}
	args = append(args, "--winrm-user", lr.lab.User)
	if lr.sealed {
		return append(args, "--winrm-http")
	}
	return append(args, "--winrm-ca", lr.ca, "--winrm-server-name", lr.lab.TLSServerName)
}

// probeArgs point remediate's and rollback's probes at the lab's SMTP face.
func (lr *labRun) probeArgs() []string {
	return []string{"--smtp-target", lr.lab.SMTPAddr, "--mail-domain", lr.lab.Domain, "--timeout", "10s"}
}

// smtpTarget is the lab's SMTP face as an audit target.
func (lr *labRun) smtpTarget() string { return lr.lab.SMTPAddr }

// run runs relaylock in-process with password in the environment.
func (lr *labRun) run(password string, args ...string) (code int, stdout, stderr string) {
	lr.t.Helper()
	return runCLI(lr.t, password, args...)
}

// runCLI runs relaylock in-process; password is what the environment holds.
func runCLI(t *testing.T, password string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string {
			if k == "RELAYLOCK_WINRM_PASSWORD" {
				return password
			}
			return ""
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code = run(ctx, append([]string{"relaylock"}, args...), e)
	return code, out.String(), errb.String()
}

func TestInspectFindingsAgainstLab(t *testing.T) {
	tests := []struct {
		name     string
		host     func() lab.Host
		code     int
		want     []string // in stdout
		wantNone string   // finding that must not appear
	}{
		{"IIS all except the list below, empty", func() lab.Host { return lab.NewIIS(lab.IISAllExceptEmpty) }, exitOpen,
			[]string{"Platform:  iis-smtp", "IIS-RELAY-ALL-EXCEPT-EMPTY", "[explains what the probe saw]", "RelayIpList"}, ""},
		{"IIS grant list covering everyone", func() lab.Host { return lab.NewIIS(lab.IISGrantEveryone) }, exitOpen,
			[]string{"IIS-RELAY-GRANT-EVERYONE"}, ""},
		{"IIS closed", func() lab.Host { return lab.NewIIS(lab.IISClosed) }, exitOK,
			[]string{"IIS-RELAY-RESTRICTED"}, "HIGH"},
		{"Exchange 2003 AD and metabase disagree", func() lab.Host { return lab.NewExchange2003(lab.Ex2003MetabaseOpenADClosed) }, exitOpen,
			[]string{"Platform:  exchange2003", "EX2003-AD-METABASE-DISAGREE"}, ""},
		{"Exchange 2016 custom connector open to all, anonymous relay", func() lab.Host { return lab.Exchange2016OpenCustomConnector() }, exitOpen,
			[]string{"Exchange 2016", "EXCH-ANON-RELAY", "0.0.0.0/0"}, ""},
		{"Exchange 2016 ExternalAuthoritative", func() lab.Host { return lab.Exchange2016ExternalAuthoritative() }, exitOpen,
			[]string{"EXCH-EXTERNAL-AUTHORITATIVE"}, ""},
		{"Exchange 2016 wildcard accepted domain", func() lab.Host { return lab.Exchange2016WildcardAcceptedDomain() }, exitOpen,
			[]string{"EXCH-ACCEPTED-DOMAIN-WILDCARD"}, ""},
		{"Exchange 2019 closed", func() lab.Host { return lab.Exchange2019Closed() }, exitOK,
			[]string{"Exchange 2019"}, "HIGH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lr := startLab(t, tc.host())
			args := append([]string{"inspect", "--prober", "198.51.100.7"}, lr.winrmArgs()...)
			code, out, errOut := lr.run(labTestPassword, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if tc.wantNone != "" && strings.Contains(out, tc.wantNone) {
				t.Errorf("stdout has %q:\n%s", tc.wantNone, out)
			}
		})
	}
}

func TestInspectErrorsAreClear(t *testing.T) {
	// A port with nothing listening: bind and close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := l.Addr().(*net.TCPAddr).Port
	l.Close()

	tests := []struct {
		name     string
		host     func() lab.Host
		password string
		args     func(lr *labRun) []string
		want     string
	}{
		{"wrong password", func() lab.Host { return lab.NewIIS(lab.IISClosed) }, "not-the-password",
			func(lr *labRun) []string { return lr.winrmArgs() }, "authentication failed"},
		{"unreachable host", func() lab.Host { return lab.NewIIS(lab.IISClosed) }, labTestPassword,
			func(lr *labRun) []string {
				return []string{"--winrm-host", "127.0.0.1", "--winrm-port", fmt.Sprint(deadPort), "--winrm-user", "x", "--winrm-ca", lr.ca, "--winrm-timeout", "5s"}
			}, "cannot reach"},
		{"no Web-WMI", func() lab.Host { return lab.NewIIS(lab.IISNoWebWMI) }, labTestPassword,
			func(lr *labRun) []string { return lr.winrmArgs() }, "Web-WMI"},
		{"certificate not trusted", func() lab.Host { return lab.NewIIS(lab.IISClosed) }, labTestPassword,
			func(lr *labRun) []string {
				return []string{"--winrm-host", lr.lab.WinRMHost, "--winrm-port", fmt.Sprint(lr.lab.WinRMPort), "--winrm-user", lr.lab.User}
			}, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lr := startLab(t, tc.host())
			code, out, errOut := lr.run(tc.password, append([]string{"inspect"}, tc.args(lr)...)...)
			if code != exitError {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errOut)
			}
			if strings.Contains(out+errOut, labTestPassword) {
				t.Error("the password appears in the output")
			}
		})
	}
}

// stateOf returns a lab host's relay state as JSON, to compare before and
// after a change and its rollback.
func stateOf(t *testing.T, h lab.Host) string {
	t.Helper()
	var v any
	switch h := h.(type) {
	case *lab.IISHost:
		v = h.State()
	case *lab.Ex2003Host:
		v = []any{h.ADState(), h.MetabaseState()}
	case *lab.ExchangeHost:
		v = h.State()
	default:
		t.Fatalf("no state accessor for %T", h)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rcpt asks the lab's SMTP face to take mail for an external recipient,
// from a given local address (nil: the default) and optionally after
// AUTH PLAIN, and returns the RCPT reply code.
func rcpt(t *testing.T, smtpAddr string, from net.IP, user, pass string) int {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != nil {
		d.LocalAddr = &net.TCPAddr{IP: from}
	}
	conn, err := d.Dial("tcp", smtpAddr)
	if err != nil {
		t.Fatalf("dial %s from %v: %v", smtpAddr, from, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(conn)
	expect := func(code int) {
		t.Helper()
		if _, _, err := tp.ReadResponse(code); err != nil {
			t.Fatalf("SMTP: %v", err)
		}
	}
	expect(220)
	tp.PrintfLine("EHLO relaylock.test")
	expect(250)
	if user != "" {
		tok := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
		tp.PrintfLine("AUTH PLAIN %s", tok)
		expect(235)
	}
	tp.PrintfLine("MAIL FROM:<probe@example.net>")
	expect(250)
	tp.PrintfLine("RCPT TO:<victim@example.org>")
	code, _, _ := tp.ReadResponse(0)
	tp.PrintfLine("QUIT")
	return code
}

func TestRemediateAndRollbackAgainstLab(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	// 127.0.0.2 is the allowed client: on Linux every 127/8 address is
	// local; elsewhere only the stranger and AUTH checks run.
	allowed := net.ParseIP("127.0.0.2")
	canBind := runtime.GOOS == "linux"
	tests := []struct {
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
		// Exchange 2007 (snap-in behind a runas /netonly logon, -Custom)
		// and 2010 (remote shell with explicit credentials) cross the
		// second hop with the WinRM account's credential.
		{"exchange2007", func() lab.Host { return lab.Exchange2007OpenDefault() }},
		{"exchange2010", func() lab.Host { return lab.Exchange2010OpenDefault() }},
	}
	// Each over HTTPS and over the Windows default listener: plain HTTP
	// with NTLM message encryption required.
	type variant struct {
		name   string
		host   func() lab.Host
		sealed bool
	}
	var runs []variant
	for _, tc := range tests {
		runs = append(runs, variant{tc.name, tc.host, false}, variant{tc.name + "/sealed-http", tc.host, true})
	}
	for _, tc := range runs {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host()
			// Each host prepared as the README asks (on WinRM 2.0 the
			// shell memory quota raised: lab.HostPreparation).
			lr := startLabConfig(t, lab.Config{Host: host, Password: labTestPassword, SealedHTTP: tc.sealed, PrepareHost: true})
			if tc.sealed {
				t.Cleanup(func() {
					if soap, sealed, _ := lab.SealStats(lr.lab.WinRM.Calls()); soap == 0 || sealed != soap {
						t.Errorf("%d of %d WS-Man calls sealed on the SealedHTTP lab", sealed, soap)
					}
				})
			}
			original := stateOf(t, host)
			ev, bk := filepath.Join(lr.dir, "ev.json"), filepath.Join(lr.dir, "backup.json")
			probe := lr.probeArgs()
			remediate := append(append([]string{"remediate", "--allow", "127.0.0.2", "--no-loopback", "--yes", "--restart", "never",
				"--ds2mb-timeout", "10s", "--evidence", ev, "--backup", bk}, lr.winrmArgs()...), probe...)

			if code := rcpt(t, lr.smtpTarget(), nil, "", ""); code != 250 {
				t.Fatalf("before: stranger RCPT got %d, want 250 (the lab host should be open)", code)
			}
			code, out, errOut := lr.run(labTestPassword, remediate...)
			if strings.Contains(errOut, "inside the allowed list") {
				t.Errorf("warned about the inside view although 127.0.0.1 is not allowed:\n%s", errOut)
			}
			if code != exitOK {
				t.Fatalf("remediate exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			if !strings.Contains(out, "Verdict: before open, after closed") {
				t.Errorf("remediate output lacks the before/after verdict:\n%s", out)
			}
			// The re-test runs like an audit (one pipelined batch, spread over
			// at most --per-host connections when the DATA step needs more)
			// and says what it cost.
			if m := regexp.MustCompile(`relaylock: retest \S+: 1 endpoint in \S+: (\d+) connections?, (\d+) round trips`).FindStringSubmatch(errOut); m == nil {
				t.Errorf("the re-test does not report its round trips:\n%s", errOut)
			} else if conns, _ := strconv.Atoi(m[1]); conns < 1 || conns > 16 {
				t.Errorf("the re-test used %d connections; --per-host is 16", conns)
			}
			if code := rcpt(t, lr.smtpTarget(), nil, "", ""); code < 500 {
				t.Errorf("after: stranger RCPT got %d, want a refusal", code)
			}
			if code := rcpt(t, lr.smtpTarget(), nil, lr.lab.User, labTestPassword); code != 250 {
				t.Errorf("after: authenticated RCPT got %d, want 250", code)
			}
			if canBind {
				if code := rcpt(t, lr.smtpTarget(), allowed, "", ""); code != 250 {
					t.Errorf("after: RCPT from the allowed address got %d, want 250", code)
				}
			}
			fixed := stateOf(t, host)

			// A second run changes nothing and says so.
			code, out, errOut = lr.run(labTestPassword, append(remediate[:len(remediate):len(remediate)], "--backup", bk+".2")...)
			if code != exitOK || !strings.Contains(errOut, "no change needed") || strings.Contains(out, "rollback command") {
				t.Errorf("second remediate: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			if stateOf(t, host) != fixed {
				t.Error("the second run changed the host")
			}

			// Rollback restores exactly the old state, and the re-test is open.
			rb := append(append([]string{"rollback", "--backup", bk, "--evidence", ev}, lr.winrmArgs()...), probe...)
			code, out, errOut = lr.run(labTestPassword, rb...)
			if code != exitOpen {
				t.Fatalf("rollback exit %d, want %d (open again)\nstdout:\n%s\nstderr:\n%s", code, exitOpen, out, errOut)
			}
			if got := stateOf(t, host); got != original {
				t.Errorf("state after rollback differs from the original:\n got %s\nwant %s", got, original)
			}
			if code := rcpt(t, lr.smtpTarget(), nil, "", ""); code != 250 {
				t.Errorf("after rollback: stranger RCPT got %d, want 250 (open again)", code)
			}
			// Both change records carry their script runs (issue 15 item 3).
			b, vr, err := evidence.LoadVerified(ev)
			if err != nil {
				t.Fatal(err)
			}
			assertLinked(t, b, vr)
			if n := len(b.Audits); n < 2 || b.Audits[n-1].Purpose != evidence.PurposeRollbackRetest || b.Audits[n-1].Change != b.Changes[len(b.Changes)-1].ID {
				t.Errorf("the last audit is not the rollback's re-test naming the rollback: %d audits", n)
			}
			for _, ch := range b.Changes {
				if len(ch.Runs) == 0 || len(ch.Scripts) != len(ch.Runs) {
					t.Errorf("change %s (%s): %d runs, %d script hashes", ch.ID, ch.Kind, len(ch.Runs), len(ch.Scripts))
				}
			}
		})
	}
}

// TestRemediateFailures injects failures into the WinRM conversation and
// checks that the host ends in its old state, or that relaylock says
// exactly what to run.
func TestRemediateFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	tests := []struct {
		name     string
		host     func() lab.Host
		setup    func(lr *labRun, h lab.Host)
		want     string // in stderr
		restored bool   // the host ends in its original state without help
	}{
		{"connection drops in the middle of apply", func() lab.Host { return lab.NewIIS(lab.IISAllExceptEmpty) },
			func(lr *labRun, _ lab.Host) {
				lr.lab.Faults.Add(lab.FaultRule{Kind: lab.FaultDrop, Script: "iis-write", Times: 1})
			}, "back in its prior state", true},
		{"change applied but its answer lost", func() lab.Host { return lab.Exchange2016OpenCustomConnector() },
			func(lr *labRun, _ lab.Host) {
				lr.lab.Faults.Add(lab.FaultRule{Kind: lab.FaultDrop, Script: "exchange-write", AfterRun: true, Times: 1})
			}, "back in its prior state", true},
		{"access denied", func() lab.Host { return lab.Exchange2016OpenCustomConnector() },
			func(lr *labRun, _ lab.Host) {
				lr.lab.Faults.Add(lab.FaultRule{Kind: lab.FaultAccessDenied, Script: "exchange-write", Times: 1})
			}, "ccess", true},
		{"rollback fails too", func() lab.Host { return lab.NewIIS(lab.IISAllExceptEmpty) },
			func(lr *labRun, _ lab.Host) {
				lr.lab.Faults.Add(lab.FaultRule{Kind: lab.FaultDrop, Script: "iis-write"})
			}, "relaylock rollback --winrm-host", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host()
			lr := startLab(t, host)
			original := stateOf(t, host)
			tc.setup(lr, host)
			ev, bk := filepath.Join(lr.dir, "ev.json"), filepath.Join(lr.dir, "backup.json")
			args := append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--no-retest",
				"--ds2mb-timeout", "1s", "--evidence", ev, "--backup", bk}, lr.winrmArgs()...)
			code, out, errOut := lr.run(labTestPassword, args...)
			if code == exitOK {
				t.Fatalf("remediate succeeded despite the fault\nstdout:\n%s\nstderr:\n%s", out, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errOut)
			}
			// The backup was written before anything was tried, and the
			// evidence is whole.
			if _, err := os.Stat(bk); err != nil {
				t.Errorf("no backup: %v", err)
			}
			if _, err := evidence.Load(ev); err != nil {
				t.Errorf("evidence: %v", err)
			}
			if tc.restored {
				if got := stateOf(t, host); got != original {
					t.Errorf("host not in its original state:\n got %s\nwant %s", got, original)
				}
				return
			}
			// relaylock printed the command to run; once the host answers
			// again, it restores the saved state.
			lr.lab.Faults.Reset()
			code, out, errOut = lr.run(labTestPassword, append([]string{"rollback", "--backup", bk, "--no-retest"}, lr.winrmArgs()...)...)
			if code != exitOK {
				t.Fatalf("rollback: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			if got := stateOf(t, host); got != original {
				t.Errorf("rollback did not restore the original state:\n got %s\nwant %s", got, original)
			}
		})
	}
}

// The re-test from an allowed address shows the inside view: relaylock
// must say so plainly (IIS adds 127.0.0.1 unless --no-loopback).
func TestRemediateWarnsInsideView(t *testing.T) {
	lr := startLab(t, lab.NewIIS(lab.IISAllExceptEmpty))
	args := append([]string{"remediate", "--allow", "192.0.2.10", "--dry-run",
		"--smtp-target", lr.smtpTarget(), "--mail-domain", lr.lab.Domain}, lr.winrmArgs()...)
	code, out, errOut := lr.run(labTestPassword, args...)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "127.0.0.1 is inside the allowed list") {
		t.Errorf("no inside-view warning:\n%s", errOut)
	}
	if !strings.Contains(errOut, "dry run: nothing was changed") || !strings.Contains(out, "Plan for") {
		t.Errorf("dry run output:\n%s\n%s", out, errOut)
	}
}
