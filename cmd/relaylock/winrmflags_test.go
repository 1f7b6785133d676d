package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/remediate"
)

const testPW = "Sup3r-S3cret-PW"

// parseWinRM maps args to WinRMOptions and builds the configuration through a throw-away command.
func parseWinRM(t *testing.T, e *env, args ...string) (remediate.WinRMConfig, []string, error) {
	t.Helper()
	var cfg remediate.WinRMConfig
	var warns []string
	var cerr error
	app := &cli.App{
		Name: "t", Writer: e.Stdout, ErrWriter: e.Stderr,
		Commands: []*cli.Command{{
			Name: "x", Flags: winrmFlags(winrmHostFlag()),
			Action: func(c *cli.Context) error {
				cfg, warns, cerr = winrmOptions(c).Config(e, "")
				return nil
			},
		}},
	}
	if err := app.Run(append([]string{"t", "x"}, args...)); err != nil {
		t.Fatalf("app: %v", err)
	}
	return cfg, warns, cerr
}

func winrmEnv(vars map[string]string) (*env, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return vars[k] }}, &errb
}

func writeSecret(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pw.txt")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, mode); err != nil {
		t.Fatal(err)
	}
	return f
}

type credCase struct {
	name     string
	env      map[string]string
	args     func(t *testing.T) []string
	wantPW   string
	wantUser string
	usage    string // substring of a usage error
	warn     string
}

func TestWinRMCredentialRules(t *testing.T) {
	pwEnv := map[string]string{engagement.EnvWinRMPassword: testPW, engagement.EnvWinRMUser: "CORP\\admin"}
	tests := []credCase{
		{"env password and user", pwEnv, func(*testing.T) []string { return []string{"--winrm-host", "mail"} }, testPW, "CORP\\admin", "", ""},
		{"flag user beats env", pwEnv, func(*testing.T) []string { return []string{"--winrm-host", "mail", "--winrm-user", "bob"} }, testPW, "bob", "", ""},
		{"password flag refused", pwEnv, func(*testing.T) []string { return []string{"--winrm-host", "mail", "--winrm-password", "hunter2"} }, "", "", "--winrm-password is not accepted", ""},
		{"password file", nil, func(t *testing.T) []string {
			return []string{"--winrm-host", "mail", "--winrm-user", "u", "--winrm-password-file", writeSecret(t, "\xef\xbb\xbf"+testPW+"\r\nsecond line\n", 0o600)}
		}, testPW, "u", "", ""},
		{"password file keeps inner spaces", nil, func(t *testing.T) []string {
			return []string{"--winrm-host", "mail", "--winrm-user", "u", "--winrm-password-file", writeSecret(t, " a b \n", 0o600)}
		}, " a b ", "u", "", ""},
		{"file beats env with a warning", pwEnv, func(t *testing.T) []string {
			return []string{"--winrm-host", "mail", "--winrm-password-file", writeSecret(t, "fromfile\n", 0o600)}
		}, "fromfile", "CORP\\admin", "", "is ignored"},
		{"empty password file", nil, func(t *testing.T) []string {
			return []string{"--winrm-host", "mail", "--winrm-user", "u", "--winrm-password-file", writeSecret(t, "\n", 0o600)}
		}, "", "", "first line is empty", ""},
		{"no password and no terminal", map[string]string{engagement.EnvWinRMUser: "u"}, func(*testing.T) []string { return []string{"--winrm-host", "mail"} }, "", "", "no WinRM password for u", ""},
		{"no user", map[string]string{engagement.EnvWinRMPassword: testPW}, func(*testing.T) []string { return []string{"--winrm-host", "mail"} }, "", "", "no WinRM user", ""},
		{"no host", pwEnv, func(*testing.T) []string { return nil }, "", "", "no WinRM host", ""},
		{"basic over http refused", pwEnv, func(*testing.T) []string {
			return []string{"--winrm-host", "mail", "--winrm-http", "--winrm-auth", "basic"}
		}, "", "", "clear text", ""},
		{"http and https", pwEnv, func(*testing.T) []string { return []string{"--winrm-host", "mail", "--winrm-http", "--winrm-https"} }, "", "", "contradict", ""},
		{"certificate needs no password", nil, func(*testing.T) []string {
			return []string{"--winrm-host", "mail", "--winrm-auth", "certificate", "--winrm-cert", "c.pem", "--winrm-key", "k.pem"}
		}, "", "", "", ""},
		{"kerberos ccache needs no password", nil, func(*testing.T) []string {
			return []string{"--winrm-host", "mail", "--winrm-auth", "kerberos", "--krb5-ccache", "/tmp/cc"}
		}, "", "", "", ""},
		{"legacy tls needs https", pwEnv, func(*testing.T) []string {
			return []string{"--winrm-host", "mail", "--winrm-http", "--winrm-legacy-tls"}
		}, "", "", "need HTTPS", ""},
		{"timeout bounds", pwEnv, func(*testing.T) []string { return []string{"--winrm-host", "mail", "--winrm-timeout", "10ms"} }, "", "", "--winrm-timeout", ""},
	}
	if runtime.GOOS != "windows" {
		tests = append(tests,
			credCase{"world-readable file refused", nil, func(t *testing.T) []string {
				return []string{"--winrm-host", "mail", "--winrm-user", "u", "--winrm-password-file", writeSecret(t, testPW, 0o644)}
			}, "", "", "chmod 600", ""},
			credCase{"group-readable file warns", nil, func(t *testing.T) []string {
				return []string{"--winrm-host", "mail", "--winrm-user", "u", "--winrm-password-file", writeSecret(t, testPW, 0o640)}
			}, testPW, "u", "", "readable by its group"},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, stderr := winrmEnv(tt.env)
			cfg, warns, err := parseWinRM(t, e, tt.args(t)...)
			if tt.usage != "" {
				var ue usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.usage) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tt.usage)
				}
				for _, secret := range []string{testPW, "hunter2"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error repeats the password: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Config: %v", err)
			}
			if cfg.Password != tt.wantPW || cfg.User != tt.wantUser || cfg.Host != "mail" {
				t.Errorf("cfg = host %q user %q password %q; want user %q password %q", cfg.Host, cfg.User, cfg.Password, tt.wantUser, tt.wantPW)
			}
			joined := strings.Join(warns, "\n")
			if (tt.warn == "") != (joined == "") || !strings.Contains(joined, tt.warn) {
				t.Errorf("warnings %q, want %q", warns, tt.warn)
			}
			if strings.Contains(joined+stderr.String(), testPW) {
				t.Errorf("password printed: %q %q", joined, stderr.String())
			}
		})
	}
}

func TestWinRMPasswordPrompt(t *testing.T) {
	prompted := 0
	e, stderr := winrmEnv(nil)
	e.ReadPassword = func() ([]byte, error) { prompted++; return []byte(testPW), nil }
	e.StdinIsTerminal = true
	cfg, _, err := parseWinRM(t, e, "--winrm-host", "mail", "--winrm-user", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if prompted != 1 || cfg.Password != testPW {
		t.Errorf("prompted %d times, password %q", prompted, cfg.Password)
	}
	if !strings.Contains(stderr.String(), "WinRM password for admin at mail: ") || strings.Contains(stderr.String(), testPW) {
		t.Errorf("prompt = %q", stderr.String())
	}
	// With the password in the environment there is no prompt.
	e2, _ := winrmEnv(map[string]string{engagement.EnvWinRMPassword: "x"})
	e2.ReadPassword = e.ReadPassword
	e2.StdinIsTerminal = true
	if _, _, err := parseWinRM(t, e2, "--winrm-host", "mail", "--winrm-user", "admin"); err != nil || prompted != 1 {
		t.Errorf("prompted although the environment had the password (err %v)", err)
	}
}

// TestWinRMPasswordNeverPrinted runs the real inspect command against a
// closed port and a refusing fake with the password in the environment:
// neither stdout nor stderr may contain it, and argv never does.
func TestWinRMPasswordNeverPrinted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var out, errb bytes.Buffer
	e := &env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return map[string]string{engagement.EnvWinRMPassword: testPW}[k] }}
	args := []string{"relaylock", "inspect", "--winrm-host", "127.0.0.1", "--winrm-port", strconv.Itoa(port), "--winrm-user", "admin", "--winrm-insecure"}
	code := run(context.Background(), args, e)
	if code == exitOK {
		t.Fatalf("inspect against a closed port succeeded")
	}
	for _, a := range args {
		if strings.Contains(a, testPW) {
			t.Fatal("password in argv")
		}
	}
	if strings.Contains(out.String()+errb.String(), testPW) {
		t.Errorf("password printed:\nstdout %s\nstderr %s", out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "cannot reach 127.0.0.1:"+strconv.Itoa(port)) {
		t.Errorf("stderr = %q, want the unreachable error", errb.String())
	}
}

func TestWinRMHint(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("x: %w", remediate.ErrAuth), "LocalAccountTokenFilterPolicy"},
		// Classified by type and sentinel, not by text: the messages below
		// say nothing that would match the old text checks.
		{fmt.Errorf("tls to h: %w: %w", remediate.ErrTLS, x509.UnknownAuthorityError{}), "--winrm-ca"},
		{fmt.Errorf("tls to h: %w: %w", remediate.ErrTLS, x509.HostnameError{Host: "b", Certificate: &x509.Certificate{DNSNames: []string{"a"}}}), "--winrm-server-name"},
		{fmt.Errorf("tls to h: %w: %w", remediate.ErrTLS, x509.HostnameError{Host: "192.0.2.1", Certificate: &x509.Certificate{}}), "--winrm-server-name"},
		{fmt.Errorf("tls to h: %w (%w)", remediate.ErrTLS, remediate.ErrTLSVersion), "--winrm-legacy-tls"},
		{fmt.Errorf("h: %w (%w)", remediate.ErrTLS, remediate.ErrSchemeMismatch), "--winrm-http"},
		{fmt.Errorf("x509: certificate signed by unknown authority: %w", remediate.ErrTLS), "winrm enumerate winrm/config/listener on the host"},
		{fmt.Errorf("cannot reach h:5986: %w", remediate.ErrUnreachable), "winrm enumerate"},
		{fmt.Errorf("lost h: %w (%w)", remediate.ErrUnreachable, remediate.ErrOutcomeUnknown), "relaylock inspect"},
		{fmt.Errorf("the script's outcome on the host is unknown: %w", remediate.ErrUnreachable), "winrm enumerate"},
		{fmt.Errorf("not installed: %w (%w)", remediate.ErrFeatureMissing, remediate.ErrWebWMIMissing), "Install-WindowsFeature Web-WMI"},
		{fmt.Errorf("Web-WMI is not installed: %w", remediate.ErrFeatureMissing), "Exchange management tools"},
		{fmt.Errorf("x: %w", remediate.ErrAccessDenied), "local administrator"},
		{fmt.Errorf("no KDC for a@B: %w (%w)", remediate.ErrUnreachable, remediate.ErrKDCUnreachable), "--krb5-conf"},
		{fmt.Errorf("x: %w", remediate.ErrNoSMTPService), "not supported"},
		{errors.New("other"), ""},
	}
	for _, tt := range tests {
		got := winrmHint(tt.err)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("winrmHint(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
