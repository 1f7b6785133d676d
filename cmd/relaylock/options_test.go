package main

// Flag parsing, in gh's runF style: every command's job is replaced by one
// that captures its Options, and a table per command checks that the
// arguments map to the expected Options (defaults, RELAYLOCK_* environment
// defaults, flags after the arguments) and that bad flags are usage errors
// (exit 2) that never reach the job.

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report"
)

// optionCase is one command line and what it maps to: want when it
// reaches the job, or a usage error naming usage.
type optionCase[T any] struct {
	name  string
	args  []string
	env   map[string]string // process environment (the flags' EnvVars)
	want  T
	usage string
}

// checkOptions runs each case with the job hook set by replace and compares
// the captured Options with want (after fix, when given, adjusts them).
func checkOptions[T any](t *testing.T, cmd string, replace func(r *runners, job func(context.Context, *env, T) error), cases []optionCase[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var got *T
			r := defaultRunners()
			replace(&r, func(_ context.Context, _ *env, o T) error { got = &o; return nil })
			var stdout, stderr strings.Builder
			e := &env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
			args := append([]string{"relaylock", cmd}, tc.args...)
			code := exitCode(context.Background(), &stderr, runAppWith(context.Background(), e, args, r))
			if tc.usage != "" {
				if code != exitUsage || got != nil || !strings.Contains(stderr.String(), tc.usage) {
					t.Fatalf("%q: exit %d (job run: %v), want %d with %q\n%s", args, code, got != nil, exitUsage, tc.usage, stderr.String())
				}
				return
			}
			if code != exitOK || got == nil {
				t.Fatalf("%q: exit %d, job run: %v\n%s", args, code, got != nil, stderr.String())
			}
			if !reflect.DeepEqual(tc.want, *got) {
				t.Errorf("%q: options\n got %+v\nwant %+v", args, *got, tc.want)
			}
		})
	}
}

// defaultProbe is what the probe flags map to when none is given.
func defaultProbe() engagement.ProbeOptions {
	return engagement.ProbeOptions{Ports: "25", Depth: "data", PerHost: 16, GreylistRetry: audit.DefaultGreylistRetry}
}

func TestAuditOptions(t *testing.T) {
	def := func(f func(o *engagement.AuditOptions)) engagement.AuditOptions {
		o := engagement.AuditOptions{Targets: []string{"example.com"}, Format: "text", Probe: defaultProbe(),
			Catch: engagement.CatchOptions{Listen: audit.DefaultCatchListen, Wait: engagement.DefaultCatchWait}}
		if f != nil {
			f(&o)
		}
		return o
	}
	checkOptions(t, "audit", func(r *runners, job func(context.Context, *env, engagement.AuditOptions) error) { r.audit = job },
		[]optionCase[engagement.AuditOptions]{
			{name: "defaults", args: []string{"example.com"}, want: def(nil)},
			{name: "environment", args: []string{"example.com"},
				env: map[string]string{"RELAYLOCK_PROBE_DOMAIN": "probe.example.org", "RELAYLOCK_DNS_SERVER": "192.0.2.53,192.0.2.54:5353"},
				want: def(func(o *engagement.AuditOptions) {
					o.Probe.ProbeDomain = "probe.example.org"
					o.Probe.DNSServers = []string{"192.0.2.53", "192.0.2.54:5353"}
				})},
			{name: "a flag wins over the environment", args: []string{"--probe-domain", "mine.example", "example.com"},
				env:  map[string]string{"RELAYLOCK_PROBE_DOMAIN": "probe.example.org"},
				want: def(func(o *engagement.AuditOptions) { o.Probe.ProbeDomain = "mine.example" })},
			{name: "flags after the targets", args: []string{"example.com", "mx.example.org:587", "--format", "json", "--depth", "rcpt",
				"--ports", "25,465", "--concurrency", "4", "--per-host", "2", "--rate", "1.5", "--timeout", "5s", "--connect-timeout", "2s",
				"--deadline", "1m", "--greylist-retry", "0", "--all-tests", "--helo-variants", "--auth-tests", "--from", "a@example.net",
				"--to", "b@example.net", "--mail-domain", "example.com", "--helo", "probe.example.net", "--contact", "ops"},
				want: def(func(o *engagement.AuditOptions) {
					o.Targets = []string{"example.com", "mx.example.org:587"}
					o.Format = "json"
					o.Probe = engagement.ProbeOptions{Ports: "25,465", From: "a@example.net", To: "b@example.net", ToGiven: true, MailDomain: "example.com",
						Helo: "probe.example.net", Depth: "rcpt", DepthGiven: true, Contact: "ops", Concurrency: 4, PerHost: 2, Rate: 1.5, Timeout: 5 * time.Second,
						ConnectTimeout: 2 * time.Second, Deadline: time.Minute, AllTests: true, HeloVariants: true, AuthTests: true}
				})},
			{name: "deliver", args: []string{"--deliver", "--to", "me@example.net", "example.com"},
				want: def(func(o *engagement.AuditOptions) {
					o.Probe.Deliver, o.Probe.To, o.Probe.ToGiven = true, "me@example.net", true
				})},
			{name: "targets file, resume and evidence", args: []string{"--targets", "t.csv", "--resume", "--evidence", "ev.json",
				"--client", "Acme", "--authorization", "AUTH-1", "--ticket", "ENG-7"},
				want: def(func(o *engagement.AuditOptions) {
					o.Targets, o.TargetsFile, o.Resume = []string{}, "t.csv", true
					o.Evidence = engagement.EvidenceOptions{Path: "ev.json", Client: "Acme", Authorization: "AUTH-1", Ticket: "ENG-7"}
				})},
			{name: "catch mode", args: []string{"--catch-domain", "catch.example.org", "--catch-listen", ":2525", "--catch-wait", "5s", "example.com"},
				want: def(func(o *engagement.AuditOptions) {
					o.Catch = engagement.CatchOptions{Domain: "catch.example.org", Listen: ":2525", Wait: 5 * time.Second, ListenGiven: true, WaitGiven: true}
				})},
			{name: "a default given explicitly is given", args: []string{"--catch-wait", "60s", "--depth", "data", "example.com"},
				want: def(func(o *engagement.AuditOptions) { o.Catch.WaitGiven, o.Probe.DepthGiven = true, true })},
			{name: "quiet", args: []string{"-q", "example.com"}, want: def(nil)},
			{name: "unknown flag", args: []string{"--nope", "example.com"}, usage: "flag provided but not defined: -nope"},
			{name: "not a number", args: []string{"--per-host", "many", "example.com"}, usage: "invalid value \"many\" for flag -per-host"},
			{name: "not a duration", args: []string{"--timeout", "soon", "example.com"}, usage: "invalid value \"soon\" for flag -timeout"},
			{name: "a control character", args: []string{"--ticket", "CHG\x1b[2J", "example.com"}, usage: "--ticket: a control character (U+001B)"},
		})
}

func TestReportOptions(t *testing.T) {
	checkOptions(t, "report", func(r *runners, job func(context.Context, *env, engagement.ReportOptions) error) { r.report = job },
		[]optionCase[engagement.ReportOptions]{
			{name: "required only", args: []string{"--evidence", "ev.json", "-o", "r.pdf"},
				want: engagement.ReportOptions{Evidence: "ev.json", Output: "r.pdf"}},
			{name: "every flag", args: []string{"--evidence", "ev.json", "--output", "r.pdf", "--template", "tpl", "--logo", "l.png",
				"--client", "Acme", "--sign-key", "k", "--accept-modified"},
				want: engagement.ReportOptions{Evidence: "ev.json", Output: "r.pdf", SignKey: "k", Accept: true,
					Render: report.Options{TemplateDir: "tpl", LogoPNG: "l.png", Client: "Acme"}}},
			{name: "nothing given reaches the job, which refuses it", args: nil, want: engagement.ReportOptions{}},
			{name: "an argument", args: []string{"ev.json"}, usage: "report: unexpected argument \"ev.json\""},
		})
}

func TestVerifyOptions(t *testing.T) {
	checkOptions(t, "verify", func(r *runners, job func(context.Context, *env, engagement.VerifyOptions) error) { r.verify = job },
		[]optionCase[engagement.VerifyOptions]{
			{name: "defaults", args: []string{"ev.json"}, want: engagement.VerifyOptions{Path: "ev.json", Format: "text"}},
			{name: "flags after the file", args: []string{"ev.json", "-v", "--pubkey", "k.pub", "--format", "json"},
				want: engagement.VerifyOptions{Path: "ev.json", PubKey: "k.pub", Verbose: true, Format: "json"}},
			{name: "no file", args: nil, usage: "verify: want one evidence FILE"},
			{name: "two files", args: []string{"a.json", "b.json"}, usage: "verify: want one evidence FILE"},
		})
}

func TestKeygenOptions(t *testing.T) {
	checkOptions(t, "keygen", func(r *runners, job func(context.Context, *env, engagement.KeygenOptions) error) { r.keygen = job },
		[]optionCase[engagement.KeygenOptions]{
			{name: "-o", args: []string{"-o", "key"}, want: engagement.KeygenOptions{Output: "key"}},
			{name: "--output", args: []string{"--output", "key"}, want: engagement.KeygenOptions{Output: "key"}},
			{name: "no key file", args: nil, usage: "keygen: -o KEY is required"},
			{name: "stdout", args: []string{"-o", "-"}, usage: "the private key is never written to stdout"},
			{name: "an argument", args: []string{"-o", "key", "extra"}, usage: "keygen: unexpected argument \"extra\""},
		})
}

// defaultWinRM is what the WinRM flags map to with --winrm-host mail only.
func defaultWinRM() engagement.WinRMOptions {
	return engagement.WinRMOptions{Host: "mail", Auth: "ntlm", HTTPS: true, Timeout: 30 * time.Second}
}

func TestInspectOptions(t *testing.T) {
	def := func(f func(o *engagement.InspectOptions)) engagement.InspectOptions {
		o := engagement.InspectOptions{WinRM: defaultWinRM(), Format: "text"}
		if f != nil {
			f(&o)
		}
		return o
	}
	checkOptions(t, "inspect", func(r *runners, job func(context.Context, *env, engagement.InspectOptions) error) { r.inspect = job },
		[]optionCase[engagement.InspectOptions]{
			{name: "defaults", args: []string{"--winrm-host", "mail"}, want: def(nil)},
			{name: "environment", args: []string{"--winrm-host", "mail"},
				env: map[string]string{"RELAYLOCK_WINRM_USER": "CORP\\admin", "RELAYLOCK_WINRM_CA": "ca.pem",
					"RELAYLOCK_WINRM_PASSWORD": "not an option"},
				want: def(func(o *engagement.InspectOptions) { o.WinRM.User, o.WinRM.CAFile = "CORP\\admin", "ca.pem" })},
			{name: "every WinRM flag", args: []string{"--winrm-host", "mail", "--winrm-port", "5985", "--winrm-user", "u@corp.example",
				"--winrm-auth", "kerberos", "--winrm-http", "--winrm-ca", "ca.pem", "--winrm-insecure", "--winrm-server-name", "mail.corp.example",
				"--winrm-legacy-tls", "--winrm-allow-unencrypted", "--winrm-password-file", "pw", "--krb5-conf", "k.conf", "--krb5-realm", "CORP.EXAMPLE",
				"--krb5-ccache", "cc", "--winrm-spn", "HTTP/mail", "--winrm-cert", "c.pem", "--winrm-key", "k.pem", "--hop-user", "CORP\\hop",
				"--hop-password-file", "hpw", "--winrm-timeout", "1m"},
				want: def(func(o *engagement.InspectOptions) {
					o.WinRM = engagement.WinRMOptions{Host: "mail", Port: 5985, User: "u@corp.example", Auth: "kerberos", HTTPS: true, HTTP: true,
						CAFile: "ca.pem", Insecure: true, ServerName: "mail.corp.example", LegacyTLS: true, AllowUnencrypted: true, PasswordFile: "pw",
						KrbConfig: "k.conf", KrbRealm: "CORP.EXAMPLE", KrbCCache: "cc", SPN: "HTTP/mail", ClientCert: "c.pem", ClientKey: "k.pem",
						HopUser: "CORP\\hop", HopPasswordFile: "hpw", Timeout: time.Minute}
				})},
			{name: "http and https contradict", args: []string{"--winrm-host", "mail", "--winrm-http", "--winrm-https"},
				want: def(func(o *engagement.InspectOptions) { o.WinRM.HTTP, o.WinRM.HTTPContradicts = true, true })},
			{name: "https off", args: []string{"--winrm-host", "mail", "--winrm-https=false"},
				want: def(func(o *engagement.InspectOptions) { o.WinRM.HTTPS = false })},
			{name: "a password flag is mapped to be refused, never its value", args: []string{"--winrm-host", "mail", "--winrm-password", "x"},
				want: def(func(o *engagement.InspectOptions) { o.WinRM.PasswordGiven = true })},
			{name: "probers, dc, format and evidence", args: []string{"--winrm-host", "mail", "--prober", "192.0.2.1,192.0.2.2", "--prober", "2001:db8::1",
				"--dc", "dc1.corp.example", "--format", "json", "--evidence", "ev.json", "--ticket", "T-1"},
				want: def(func(o *engagement.InspectOptions) {
					o.Probers = []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"} // urfave/cli splits at commas
					o.DC, o.Format = "dc1.corp.example", "json"
					o.Evidence = engagement.EvidenceOptions{Path: "ev.json", Ticket: "T-1"}
				})},
			{name: "an argument", args: []string{"mail"}, usage: "inspect takes no arguments"},
			{name: "not a port", args: []string{"--winrm-host", "mail", "--winrm-port", "https"}, usage: "invalid value \"https\" for flag -winrm-port"},
		})
}

func TestDoctorOptions(t *testing.T) {
	checkOptions(t, "doctor", func(r *runners, job func(context.Context, *env, engagement.DoctorOptions) error) { r.doctor = job },
		[]optionCase[engagement.DoctorOptions]{
			{name: "defaults", args: []string{"--winrm-host", "mail"}, want: engagement.DoctorOptions{WinRM: defaultWinRM(), Format: "text"}},
			{name: "json and evidence", args: []string{"--winrm-host", "mail", "--format", "json", "--evidence", "ev.json"},
				want: engagement.DoctorOptions{WinRM: defaultWinRM(), Format: "json", Evidence: engagement.EvidenceOptions{Path: "ev.json"}}},
			{name: "an argument", args: []string{"mail"}, usage: "doctor takes no arguments"},
		})
}

// defaultChange is what the change flags map to when none is given.
func defaultChange() engagement.ChangeOptions {
	return engagement.ChangeOptions{Restart: "ask", MaxPrefixV4: 8, MaxPrefixV6: 32}
}

// defaultRequest is the request of --allow 192.0.2.10 and no other flag.
func defaultRequest() remediate.Request {
	return remediate.Request{Allow: []remediate.AddrRange{mustAllow("192.0.2.10")}, AllowAuthenticated: true,
		ConnectorName: "relaylock Relay", SyncTimeout: 5 * time.Minute}
}

// noRollbackLine drops the rollback command renderer, which the
// comparison cannot see into; TestRollbackLineOptions checks it.
func noRollbackLine[T any](o *T, l *func(engagement.RollbackLine) string, t *testing.T) {
	t.Helper()
	if *l == nil {
		t.Error("no rollback command renderer")
	}
	*l = nil
}

func TestRemediateOptions(t *testing.T) {
	def := func(f func(o *engagement.RemediateOptions)) engagement.RemediateOptions {
		o := engagement.RemediateOptions{WinRM: defaultWinRM(), Request: defaultRequest(), Change: defaultChange(), Probe: defaultProbe()}
		if f != nil {
			f(&o)
		}
		return o
	}
	cases := []optionCase[engagement.RemediateOptions]{
		{name: "defaults", args: []string{"--winrm-host", "mail", "--allow", "192.0.2.10"}, want: def(nil)},
		{name: "every change flag", args: []string{"--winrm-host", "mail", "--allow", "192.0.2.10,198.51.100.0/24", "--allow", "2001:db8::/64",
			"--allow-authenticated=false", "--no-loopback", "--fix-domains", "--connector-name", "Relay for printers", "--dry-run", "-y",
			"--backup", "b.json", "--no-auto-rollback", "--restart", "always", "--force", "--max-prefix", "16", "--max-prefix6", "48",
			"--ds2mb-timeout", "1m", "--smtp-target", "192.0.2.25:25", "--no-retest", "--dc", "dc1", "--ports", "25,587", "--mail-domain", "corp.example",
			"--evidence", "ev.json", "--ticket", "CHG-9"},
			want: def(func(o *engagement.RemediateOptions) {
				o.Request = remediate.Request{Allow: []remediate.AddrRange{mustAllow("192.0.2.10"),
					mustAllow("198.51.100.0/24"), mustAllow("2001:db8::/64")},
					NoLoopback: true, FixDomains: true, ConnectorName: "Relay for printers", Force: true, SyncTimeout: time.Minute}
				o.Change = engagement.ChangeOptions{DryRun: true, Yes: true, Backup: "b.json", NoAutoRollback: true, Restart: "always",
					MaxPrefixV4: 16, MaxPrefixV6: 48, NoRetest: true}
				o.SMTPTargets, o.DC = []string{"192.0.2.25:25"}, "dc1"
				o.Probe.Ports, o.Probe.MailDomain = "25,587", "corp.example"
				o.Evidence = engagement.EvidenceOptions{Path: "ev.json", Ticket: "CHG-9"}
			})},
		{name: "environment", args: []string{"--winrm-host", "mail", "--allow", "192.0.2.10"},
			env: map[string]string{"RELAYLOCK_WINRM_USER": "admin", "RELAYLOCK_DNS_SERVER": "192.0.2.53"},
			want: def(func(o *engagement.RemediateOptions) {
				o.WinRM.User, o.Probe.DNSServers = "admin", []string{"192.0.2.53"}
			})},
		{name: "an argument", args: []string{"mail"}, usage: "remediate takes no arguments"},
		{name: "no host", args: []string{"--allow", "192.0.2.10"}, usage: "remediate: --winrm-host is required"},
		{name: "no allow list", args: []string{"--winrm-host", "mail"}, usage: "name the clients allowed to relay with --allow"},
		{name: "everyone", args: []string{"--winrm-host", "mail", "--allow", "0.0.0.0/0"}, usage: "pass --force only if you really mean it"},
		{name: "too wide", args: []string{"--winrm-host", "mail", "--allow", "10.0.0.0/7"}, usage: "raise the limit with --max-prefix"},
		{name: "bad restart policy", args: []string{"--winrm-host", "mail", "--allow", "192.0.2.10", "--restart", "sometimes"}, usage: "--restart must be ask, never or always"},
		{name: "bad connector name", args: []string{"--winrm-host", "mail", "--allow", "192.0.2.10", "--connector-name", "Relay\x01"}, usage: "--connector-name:"},
	}
	checkOptions(t, "remediate", func(r *runners, job func(context.Context, *env, engagement.RemediateOptions) error) {
		r.remediate = func(ctx context.Context, e *env, o engagement.RemediateOptions) error {
			noRollbackLine(&o, &o.RollbackCommand, t)
			return job(ctx, e, o)
		}
	}, cases)
}

func TestRollbackOptions(t *testing.T) {
	def := func(f func(o *engagement.RollbackOptions)) engagement.RollbackOptions {
		o := engagement.RollbackOptions{WinRM: defaultWinRM(), Backup: "b.json", Probe: defaultProbe()}
		o.WinRM.Host = ""
		if f != nil {
			f(&o)
		}
		return o
	}
	checkOptions(t, "rollback", func(r *runners, job func(context.Context, *env, engagement.RollbackOptions) error) { r.rollback = job },
		[]optionCase[engagement.RollbackOptions]{
			{name: "the backup names the host", args: []string{"--backup", "b.json"}, want: def(nil)},
			{name: "every flag", args: []string{"--backup", "b.json", "--winrm-host", "mail", "--smtp-target", "192.0.2.25:25", "--no-retest",
				"--dc", "dc1", "--ports", "2525", "--evidence", "ev.json"},
				want: def(func(o *engagement.RollbackOptions) {
					o.WinRM.Host, o.SMTPTargets, o.NoRetest, o.DC, o.Probe.Ports = "mail", []string{"192.0.2.25:25"}, true, "dc1", "2525"
					o.Evidence.Path = "ev.json"
				})},
			{name: "an argument", args: []string{"--backup", "b.json", "mail"}, usage: "rollback takes no arguments"},
		})
}

func TestFixOptions(t *testing.T) {
	def := func(f func(o *engagement.FixOptions)) engagement.FixOptions {
		o := engagement.FixOptions{Domain: "corp.example", WinRM: defaultWinRM(), Hosts: map[string]string{}, Request: defaultRequest(),
			Change: defaultChange(), Probe: defaultProbe()}
		o.WinRM.Host = ""
		if f != nil {
			f(&o)
		}
		return o
	}
	checkOptions(t, "fix", func(r *runners, job func(context.Context, *env, engagement.FixOptions) error) {
		r.fix = func(ctx context.Context, e *env, o engagement.FixOptions) error {
			noRollbackLine(&o, &o.RollbackCommand, t)
			return job(ctx, e, o)
		}
	}, []optionCase[engagement.FixOptions]{
		{name: "defaults", args: []string{"corp.example", "--allow", "192.0.2.10"}, want: def(nil)},
		{name: "host mappings", args: []string{"corp.example", "--allow", "192.0.2.10", "--winrm-host", "Mail.Corp.Example.=192.0.2.25:15986",
			"--winrm-map", "mx2.corp.example=exch02,mx3.corp.example=exch03", "--winrm-port", "5985", "-o", "r.pdf", "--sign-key", "k",
			"--evidence", "ev.json", "--client", "Corp"},
			want: def(func(o *engagement.FixOptions) {
				o.Hosts = map[string]string{"mail.corp.example": "192.0.2.25:15986", "mx2.corp.example": "exch02", "mx3.corp.example": "exch03"}
				o.WinRM.Port, o.Output, o.SignKey = 5985, "r.pdf", "k"
				o.Evidence = engagement.EvidenceOptions{Path: "ev.json", Client: "Corp"}
			})},
		{name: "no domain", args: []string{"--allow", "192.0.2.10"}, usage: "fix takes exactly one DOMAIN"},
		{name: "two domains", args: []string{"a.example", "b.example", "--allow", "192.0.2.10"}, usage: "fix takes exactly one DOMAIN"},
		{name: "a plain host", args: []string{"corp.example", "--allow", "192.0.2.10", "--winrm-host", "mail"}, usage: "--winrm-host \"mail\": want MX=HOST[:PORT]"},
	})
}

// The rollback command a run prints repeats its flags as typed, with the
// values the run chose per host (RollbackLine) in their places.
func TestRollbackLineOptions(t *testing.T) {
	var line string
	r := defaultRunners()
	r.fix = func(_ context.Context, _ *env, o engagement.FixOptions) error {
		line = o.RollbackCommand(engagement.RollbackLine{Host: "192.0.2.25", Backup: "b.json", Endpoints: []string{"192.0.2.25:25"},
			Evidence: "relaylock-evidence-corp.example.json", WinRMPort: 15986, ServerName: "mail.corp.example", MailDomain: "corp.example"})
		return nil
	}
	var stderr strings.Builder
	e := &env{Stdin: strings.NewReader(""), Stdout: &stderr, Stderr: &stderr, Getenv: func(string) string { return "" }}
	err := runAppWith(context.Background(), e, []string{"relaylock", "fix", "corp.example", "--allow", "192.0.2.10", "--winrm-user", `CORP\admin`,
		"--winrm-ca", "ca.pem", "--ticket", "CHG-1", "--timeout", "5s", "--yes"}, r)
	if err != nil {
		t.Fatal(err, stderr.String())
	}
	want := `relaylock rollback --winrm-host 192.0.2.25 --backup b.json --winrm-port 15986 --winrm-user 'CORP\admin' --winrm-ca ca.pem ` +
		`--winrm-server-name mail.corp.example --evidence relaylock-evidence-corp.example.json --ticket CHG-1 --smtp-target 192.0.2.25:25 ` +
		`--mail-domain corp.example --timeout 5s`
	if line != want {
		t.Errorf("rollback command\n got %s\nwant %s", line, want)
	}
}

func mustAllow(s string) remediate.AddrRange {
	r, err := remediate.ParseAllowEntry(s)
	if err != nil {
		panic(err)
	}
	return r
}

func TestLabOptions(t *testing.T) {
	def := func(f func(o *engagement.LabOptions)) engagement.LabOptions {
		o := engagement.LabOptions{Platform: "iis", Listen: "127.0.0.1", Language: "en-US"}
		if f != nil {
			f(&o)
		}
		return o
	}
	checkOptions(t, "lab", func(r *runners, job func(context.Context, *env, engagement.LabOptions) error) {
		r.lab = func(ctx context.Context, e *env, o engagement.LabOptions) error {
			if o.TryCommands == nil {
				t.Error("no commands to print for the lab")
			}
			o.TryCommands = nil
			return job(ctx, e, o)
		}
	}, []optionCase[engagement.LabOptions]{
		{name: "defaults", want: def(nil)},
		{name: "every flag", args: []string{"--platform", "Exchange2003", "--listen", "::1", "--smtp-port", "2525", "--winrm-port", "5985",
			"--dns-port", "5353", "--domain", "example.org", "--http", "--max-memory-per-shell-mb", "150", "--language", "de-DE"},
			want: engagement.LabOptions{Platform: "Exchange2003", Listen: "::1", SMTPPort: 2525, WinRMPort: 5985, DNSPort: 5353,
				Domain: "example.org", HTTP: true, MaxMemoryPerShellMB: 150, Language: "de-DE"}},
		{name: "sealed", args: []string{"--sealed-http"}, want: def(func(o *engagement.LabOptions) { o.SealedHTTP = true })},
		{name: "an argument", args: []string{"iis"}, usage: "lab takes no arguments"},
	})
}

func TestDemoOptions(t *testing.T) {
	checkOptions(t, "demo", func(r *runners, job func(context.Context, *env, engagement.DemoOptions) error) {
		r.demo = func(ctx context.Context, e *env, o engagement.DemoOptions) error {
			if o.Fix == nil {
				t.Error("no fix to run")
			}
			o.Fix = nil
			return job(ctx, e, o)
		}
	}, []optionCase[engagement.DemoOptions]{
		{name: "defaults", want: engagement.DemoOptions{Platform: "iis", Out: "relaylock-demo"}},
		{name: "platform and folder", args: []string{"--platform", "exchange2019", "--out", "d"},
			want: engagement.DemoOptions{Platform: "exchange2019", Out: "d"}},
		{name: "an argument", args: []string{"iis"}, usage: "demo takes no arguments"},
	})
}
