package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/krbtest"
	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/internal/needs"
)

// Kerberos without delegation, end to end (issue 14): relaylock's
// Kerberos client (--winrm-auth kerberos, masterzen/winrm over gokrb5)
// against the lab as a Kerberos acceptor, with tickets from a real MIT
// KDC (internal/krbtest). The password comes from the environment, as
// in every other lab test, never from argv.

// startKerberosLabCLI starts a lab for host that accepts Kerberos for
// HTTP/<lab host>, with a KDC whose realm (CORP.EXAMPLE) holds the lab
// account, CORP\Administrator, with password. winrmArgs then log on
// with Kerberos.
func startKerberosLabCLI(t *testing.T, host lab.Host, password string) *labRun {
	t.Helper()
	return startKerberosLabCLIConfig(t, lab.Config{Host: host, Password: password})
}

// startKerberosLabCLIConfig is startKerberosLabCLI for a lab.Config
// (Host and Password set; Kerberos is filled in).
func startKerberosLabCLIConfig(t *testing.T, cfg lab.Config) *labRun {
	t.Helper()
	// The host is prepared as the README asks (WinRM 2.0's 150 MB
	// quota raised), so the Exchange 2007/2010 shell loads.
	cfg.PrepareHost = true
	if err := krbtest.Available(); err != nil {
		needs.Missing(t, "MIT Kerberos KDC", err.Error())
	}
	kdc := krbtest.Serve(t, krbtest.Config{Domains: []string{lab.LabExchangeDomain}})
	ctx := context.Background()
	if err := kdc.AddUser(ctx, "Administrator", cfg.Password); err != nil {
		t.Fatal(err)
	}
	cfg.Kerberos = &lab.KerberosConfig{Realm: kdc.Realm, KeytabFor: func(spn string) ([]byte, error) { return kdc.ServiceKeytab(ctx, spn) }}
	lr := startLabConfig(t, cfg)
	lr.krb = kdc
	return lr
}

// kerberosUser is the lab account as a Kerberos principal.
func (lr *labRun) kerberosUser() string { return "Administrator@" + lr.krb.Realm }

// kerberosFlags are the Kerberos flags after --winrm-host/--winrm-port:
// the principal, the KDC's krb5.conf, the SPN (the host is addressed by
// IP, so the default HTTP/127.0.0.1 would name no service) and the CA
// (over plain HTTP: --winrm-http, and the test adds
// --winrm-allow-unencrypted where it wants it).
func (lr *labRun) kerberosFlags() []string {
	args := []string{"--winrm-user", lr.kerberosUser(), "--winrm-auth", "kerberos", "--krb5-conf", lr.krb.Krb5Conf, "--winrm-spn", lr.lab.KerberosSPN}
	if !lr.lab.HTTPS {
		return append(args, "--winrm-http")
	}
	return append(args, "--winrm-ca", lr.ca, "--winrm-server-name", lr.lab.TLSServerName)
}

// fixWinRMArgs point fix's --winrm-host mapping (MX name = lab address)
// at the lab, with the lab's authentication.
func (lr *labRun) fixWinRMArgs() []string {
	args := []string{"--winrm-host", lr.lab.MXHost + "=" + net.JoinHostPort(lr.lab.WinRMHost, fmt.Sprint(lr.lab.WinRMPort))}
	if lr.krb != nil {
		return append(args, lr.kerberosFlags()...)
	}
	return append(args, "--winrm-user", lr.lab.User, "--winrm-ca", lr.ca, "--winrm-server-name", lr.lab.TLSServerName)
}

// refusals lists the lab's 401 answers with their reason.
func refusals(lr *labRun) []string {
	var out []string
	for _, c := range lr.lab.WinRM.Calls() {
		if c.Status == 401 && c.Fault != "ntlm-challenge" {
			out = append(out, c.Time.Format("15:04:05.000000")+" "+c.Fault)
		}
	}
	return out
}

// assertKerberosOnly checks that every WinRM request came with Kerberos
// (no NTLM handshake, no refusal) and none asked for delegation.
func assertKerberosOnly(t *testing.T, lr *labRun) {
	t.Helper()
	logons := lr.lab.WinRM.KerberosLogons()
	if len(logons) == 0 {
		t.Fatal("no Kerberos logon: the test did not use Kerberos")
	}
	for _, lo := range logons {
		if lo.Delegated || lo.GSSFlags&1 != 0 || !strings.EqualFold(lo.Client, lr.kerberosUser()) {
			t.Errorf("Kerberos logon %+v", lo)
		}
	}
	for _, c := range lr.lab.WinRM.Calls() {
		if c.Fault == "ntlm-challenge" {
			t.Fatalf("an NTLM handshake: %+v", c)
		}
	}
}

// TestKerberosInspectRemediateRollbackFix runs inspect, remediate,
// rollback and fix over Kerberos on every lab platform, over HTTPS (the
// client does not encrypt Kerberos messages itself). The Exchange
// platforms cross the second hop with the password passed explicitly
// (the Kerberos logon has no network credentials).
func TestKerberosInspectRemediateRollbackFix(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	tests := []struct {
		name    string
		host    func() lab.Host
		finding string
		hop     bool
	}{
		{"iis", func() lab.Host { return lab.NewIIS(lab.IISAllExceptEmpty) }, "IIS-RELAY-ALL-EXCEPT-EMPTY", false},
		{"exchange2003", func() lab.Host {
			h := lab.NewExchange2003(lab.Ex2003Open)
			h.SetSyncDelay(50 * time.Millisecond)
			return h
		}, "", true},
		{"exchange2007", func() lab.Host { return lab.Exchange2007OpenDefault() }, "", true},
		{"exchange2010", func() lab.Host { return lab.Exchange2010OpenDefault() }, "", true},
		{"exchange2016", func() lab.Host { return lab.Exchange2016OpenCustomConnector() }, "", true},
		{"exchange2019", func() lab.Host { return lab.Exchange2019AnonDefaultFrontend() }, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host()
			lr := startKerberosLabCLI(t, host, labTestPassword)
			original := stateOf(t, host)
			ev, bk := filepath.Join(lr.dir, "ev.json"), filepath.Join(lr.dir, "backup.json")
			run := func(want int, args ...string) (string, string) {
				t.Helper()
				code, out, errOut := lr.run(labTestPassword, args...)
				if code != want {
					t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s\nrefused requests: %v", args[0], code, want, out, errOut, refusals(lr))
				}
				if strings.Contains(strings.Join(args, " "), labTestPassword) {
					t.Fatal("the password is in argv")
				}
				return out, errOut
			}

			out, _ := run(exitOpen, append([]string{"inspect", "--evidence", ev}, lr.winrmArgs()...)...)
			if tc.finding != "" && !strings.Contains(out, tc.finding) {
				t.Errorf("inspect lacks %s:\n%s", tc.finding, out)
			}
			if stateOf(t, host) != original {
				t.Fatal("inspect changed the host")
			}

			out, _ = run(exitOK, append(append([]string{"remediate", "--allow", "192.0.2.25", "--no-loopback", "--yes", "--restart", "never",
				"--ds2mb-timeout", "10s", "--evidence", ev, "--backup", bk}, lr.winrmArgs()...), lr.probeArgs()...)...)
			if !strings.Contains(out, "Verdict: before open, after closed") {
				t.Errorf("remediate output lacks the before/after verdict:\n%s", out)
			}
			if code := rcpt(t, lr.smtpTarget(), nil, "", ""); code < 500 {
				t.Errorf("after remediate: stranger RCPT got %d, want a refusal", code)
			}

			run(exitOpen, append(append([]string{"rollback", "--backup", bk, "--evidence", ev}, lr.winrmArgs()...), lr.probeArgs()...)...)
			if got := stateOf(t, host); got != original {
				t.Errorf("state after rollback differs from the original:\n got %s\nwant %s", got, original)
			}

			_, smtpPort, _ := net.SplitHostPort(lr.lab.SMTPAddr)
			run(exitOK, append([]string{"fix", lr.lab.Domain, "--dns-server", lr.lab.DNSAddr, "--ports", smtpPort, "--timeout", "10s",
				"--allow", "192.0.2.25", "--no-loopback", "--restart", "never", "--yes", "--ds2mb-timeout", "10s",
				"--evidence", filepath.Join(lr.dir, "fix.json"), "-o", filepath.Join(lr.dir, "fix.pdf")}, lr.fixWinRMArgs()...)...)
			if code := rcpt(t, lr.smtpTarget(), nil, "", ""); code < 500 {
				t.Errorf("after fix: stranger RCPT got %d, want a refusal", code)
			}

			assertKerberosOnly(t, lr)
			explicit := 0
			for _, r := range lr.lab.WinRM.Runs() {
				if r.ExplicitHop {
					explicit++
				}
			}
			if tc.hop && explicit == 0 {
				t.Error("no script crossed the second hop with the explicit credential")
			}
		})
	}
}

// Without a credential to pass explicitly (a Kerberos credential cache,
// no password, no --hop-user), the scripts reach the second hop with the
// Kerberos logon's own token, which holds no network credentials: the
// lab answers as Windows does, relaylock names the second hop with its
// fixes and changes nothing. With --hop-user it passes.
func TestKerberosSecondHopNeedsExplicitCredential(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	for _, tc := range []struct {
		name string
		host func() lab.Host
		want []string
	}{
		{"exchange2016", func() lab.Host { return lab.Exchange2016OpenCustomConnector() },
			[]string{"second hop", "the Exchange shell (http://ex1.corp.example/PowerShell/)", "0x8009030e", "--hop-user"}},
		{"exchange2003", func() lab.Host { return lab.NewExchange2003(lab.Ex2003Open) },
			[]string{"second hop", "Active Directory (LDAP)", "0x80072020", "--hop-user"}},
		{"exchange2007", func() lab.Host { return lab.Exchange2007OpenDefault() },
			[]string{"second hop", "Active Directory (LDAP, as the Exchange 2007 snap-in will)", "0x80072020", "--hop-user"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host()
			lr := startKerberosLabCLI(t, host, labTestPassword)
			before := stateOf(t, host)
			ccache := filepath.Join(t.TempDir(), "ccache")
			if err := lr.krb.Kinit(context.Background(), lr.kerberosUser(), labTestPassword, ccache); err != nil {
				t.Fatal(err)
			}
			args := append(append([]string{"inspect", "--evidence", filepath.Join(lr.dir, "ev.json")}, lr.winrmArgs()...), "--krb5-ccache", ccache)
			code, out, errOut := runCLIEnv(t, nil, args...)
			if code != exitError {
				t.Fatalf("inspect without a second-hop credential: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(strings.ToLower(out+errOut), strings.ToLower(w)) {
					t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", w, out, errOut)
				}
			}
			if stateOf(t, host) != before {
				t.Error("inspect changed the host")
			}
			assertKerberosOnly(t, lr)
			// The lab ran hop-check and refused it for want of network
			// credentials; no script carried one.
			hopRan := false
			for _, r := range lr.lab.WinRM.Runs() {
				hopRan = hopRan || r.Script == "hop-check"
				if r.ExplicitHop {
					t.Errorf("%s carried an explicit credential", r.Script)
				}
			}
			if !hopRan {
				t.Fatal("hop-check never ran: the refusal did not come from the lab")
			}

			// The same logon with --hop-user and its password passes.
			code, out, errOut = runCLIEnv(t, map[string]string{"RELAYLOCK_HOP_PASSWORD": labTestPassword},
				append(args, "--hop-user", lr.lab.User)...)
			if code != exitOpen {
				t.Fatalf("inspect with --hop-user: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitOpen, out, errOut)
			}
		})
	}
}

// TestLabCommandKerberos: `relaylock lab --kerberos` starts a KDC with
// the lab, prints its krb5.conf and an inspect command over Kerberos
// that works as printed, and removes the KDC's files when it stops.
func TestLabCommandKerberos(t *testing.T) {
	if err := krbtest.Available(); err != nil {
		needs.Missing(t, "MIT Kerberos KDC", err.Error())
	}
	const password = "Lab-Krb-Pw-93be"
	e, out, errb := labEnv(password)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	codec := make(chan int, 1)
	go func() {
		codec <- run(ctx, []string{"relaylock", "lab", "--platform", "exchange2016", "--kerberos"}, e)
	}()
	var cmdLine, conf string
	for deadline := time.Now().Add(15 * time.Second); cmdLine == ""; {
		for _, l := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "krb5.conf" {
				conf = f[1]
			}
			if strings.HasPrefix(l, "  relaylock inspect ") && strings.Contains(l, "--winrm-auth kerberos") {
				cmdLine = l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Kerberos command: stdout %q stderr %q", out.String(), errb.String())
		}
		select {
		case code := <-codec:
			t.Fatalf("lab exited %d: %s", code, errb.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if strings.Contains(out.String(), password) {
		t.Error("the lab printed the password it was given")
	}
	args := strings.Fields(cmdLine)[1:]
	for i, a := range args {
		if a == "--winrm-ca" {
			args[i+1] = regexp.MustCompile(`--winrm-ca (\S+)`).FindStringSubmatch(out.String())[1]
		}
	}
	code, stdout, stderr := runCLI(t, password, append(args, "--evidence", filepath.Join(t.TempDir(), "ev.json"))...)
	if code != exitOpen || !strings.Contains(stdout, "Platform:  exchange") {
		t.Fatalf("the printed Kerberos inspect: exit %d\nstdout:\n%s\nstderr:\n%s\nlab stderr:\n%s", code, stdout, stderr, errb.String())
	}
	cancel()
	if code := <-codec; code != exitOK {
		t.Errorf("lab exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(conf); conf == "" || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("krb5.conf %q left behind: %v", conf, err)
	}
}

// Kerberos over plain HTTP: relaylock's Kerberos does not encrypt
// messages, so it refuses plain HTTP unless --winrm-allow-unencrypted,
// a listener that requires encryption (the Windows default) refuses it
// with 401, and one with AllowUnencrypted=true accepts it. The second
// hop's password is never sent in clear text: Exchange hosts cannot be
// read that way.
func TestKerberosOverPlainHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	for _, tc := range []struct {
		name   string
		cfg    lab.Config
		allow  bool
		code   int
		stderr string
	}{
		{"relaylock refuses without --winrm-allow-unencrypted", lab.Config{Host: lab.NewIIS(lab.IISAllExceptEmpty), PlainHTTP: true}, false, exitUsage, "kerberos over plain HTTP is not encrypted"},
		{"listener requires encryption", lab.Config{Host: lab.NewIIS(lab.IISAllExceptEmpty), SealedHTTP: true}, true, exitError, "authentication failed"},
		{"AllowUnencrypted=true, IIS", lab.Config{Host: lab.NewIIS(lab.IISAllExceptEmpty), PlainHTTP: true}, true, exitOpen, "commands and output travel unencrypted"},
		{"AllowUnencrypted=true, Exchange: no password in clear text", lab.Config{Host: lab.Exchange2016OpenCustomConnector(), PlainHTTP: true}, true, exitError, "second hop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Password = labTestPassword
			lr := startKerberosLabCLIConfig(t, tc.cfg)
			args := append([]string{"inspect"}, lr.winrmArgs()...)
			if tc.allow {
				args = append(args, "--winrm-allow-unencrypted")
			}
			code, out, errOut := lr.run(labTestPassword, args...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s\nrefused requests: %v", code, tc.code, tc.stderr, out, errOut, refusals(lr))
			}
			for _, r := range lr.lab.WinRM.Runs() {
				if r.ExplicitHop {
					t.Errorf("%s carried the second-hop password over plain HTTP", r.Script)
				}
			}
		})
	}
}

// doctor over Kerberos: the host offers Kerberos, the login works, the
// session itself cannot read the domain (no network credentials, no
// delegation), and the second hop passes with the explicit credential.
func TestKerberosDoctor(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	lr := startKerberosLabCLI(t, lab.Exchange2016OpenCustomConnector(), labTestPassword)
	code, out, errOut := lr.run(labTestPassword, append([]string{"doctor"}, lr.winrmArgs()...)...)
	if code != exitOK {
		t.Fatalf("doctor: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, w := range []string{"kerberos auth as " + lr.kerberosUser(), "Kerberos", "relaylock uses kerberos",
		"PASS  second-hop", "cannot read the domain (HRESULT 0x80072020)", "it has no network credentials"} {
		if !strings.Contains(out, w) {
			t.Errorf("doctor output lacks %q:\n%s", w, out)
		}
	}
	assertKerberosOnly(t, lr)
}

// A service principal the KDC does not know is named as such, with the
// flag that fixes it.
func TestKerberosUnknownSPN(t *testing.T) {
	lr := startKerberosLabCLI(t, lab.NewIIS(lab.IISAllExceptEmpty), labTestPassword)
	args := append([]string{"inspect"}, lr.winrmArgs()...)
	for i, a := range args {
		if a == "--winrm-spn" {
			args[i+1] = "HTTP/unknown.corp.example"
		}
	}
	code, out, errOut := lr.run(labTestPassword, args...)
	if code != exitError || !strings.Contains(errOut, "knows no service principal HTTP/unknown.corp.example") ||
		!strings.Contains(errOut, "hint: give the host's service principal with --winrm-spn") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
