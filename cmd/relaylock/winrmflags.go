package main

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/relaylock/relaylock/remediate"
)

// The WinRM flags shared by inspect, remediate, rollback and fix, and the
// credential rules (README "WinRM credentials"):
//
//   - the password never comes from a flag value (argv is visible to every
//     local user through ps and /proc, and lands in shell history): only
//     from RELAYLOCK_WINRM_PASSWORD, from --winrm-password-file, or from a
//     no-echo prompt when stdin is a terminal;
//   - it only ever reaches remediate.WinRMConfig, never a script parameter,
//     a ScriptRun, the evidence or a log line.

// Environment variables read for WinRM.
const (
	envWinRMUser     = "RELAYLOCK_WINRM_USER"
	envWinRMPassword = "RELAYLOCK_WINRM_PASSWORD"
	envWinRMCA       = "RELAYLOCK_WINRM_CA"
)

// maxPasswordFile bounds what is read from --winrm-password-file.
const maxPasswordFile = 64 << 10

func readPasswordFromTerminal(e *env) ([]byte, error) {
	if e.ReadPassword != nil {
		return e.ReadPassword()
	}
	return term.ReadPassword(int(os.Stdin.Fd()))
}

func winrmFlags() []cli.Flag {
	const cat = "WinRM"
	return []cli.Flag{
		&cli.StringFlag{Category: cat, Name: "winrm-host", Usage: "Windows mail `HOST` to reach over WinRM"},
		&cli.IntFlag{Category: cat, Name: "winrm-port", DefaultText: "5986 with HTTPS, 5985 with --winrm-http", Usage: "WinRM `PORT`"},
		&cli.StringFlag{Category: cat, Name: "winrm-user", EnvVars: []string{envWinRMUser}, Usage: "WinRM `USER`: DOMAIN\\user, user@domain or a local user"},
		&cli.StringFlag{Category: cat, Name: "winrm-auth", Value: remediate.AuthNTLM, Usage: "authentication `MECH`: ntlm, basic, kerberos or certificate"},
		&cli.BoolFlag{Category: cat, Name: "winrm-https", Value: true, Usage: "use HTTPS and verify the host's certificate"},
		&cli.BoolFlag{Category: cat, Name: "winrm-http", Usage: "use plain HTTP (NTLM messages are then encrypted; basic/kerberos need --winrm-allow-unencrypted)"},
		&cli.StringFlag{Category: cat, Name: "winrm-ca", EnvVars: []string{envWinRMCA}, Usage: "PEM `FILE` of CA certificates to trust for the WinRM listener (for a self-signed one)"},
		&cli.BoolFlag{Category: cat, Name: "winrm-insecure", Usage: "do not verify the WinRM certificate (NOT recommended: anyone on the path can read the session)"},
		&cli.StringFlag{Category: cat, Name: "winrm-server-name", Usage: "`NAME` to verify the certificate against, when --winrm-host is an address"},
		&cli.BoolFlag{Category: cat, Name: "winrm-legacy-tls", Usage: "accept TLS 1.0/1.1 and the old cipher suites of Windows Server 2003/2008 listeners"},
		&cli.BoolFlag{Category: cat, Name: "winrm-allow-unencrypted", Usage: "allow plain HTTP without message encryption (credentials or commands in clear text)"},
		&cli.StringFlag{Category: cat, Name: "winrm-password-file", Usage: "read the WinRM password from the first line of `FILE` (mode 0600); else $" + envWinRMPassword + ", else a prompt"},
		&cli.StringFlag{Category: cat, Name: "krb5-conf", DefaultText: "$KRB5_CONFIG or /etc/krb5.conf", Usage: "krb5.conf `FILE` for --winrm-auth kerberos"},
		&cli.StringFlag{Category: cat, Name: "krb5-realm", DefaultText: "from --winrm-user user@REALM", Usage: "Kerberos `REALM`"},
		&cli.StringFlag{Category: cat, Name: "krb5-ccache", Usage: "Kerberos credential cache `FILE` to use instead of a password"},
		&cli.StringFlag{Category: cat, Name: "winrm-spn", DefaultText: "HTTP/<host>", Usage: "Kerberos service principal `NAME`"},
		&cli.StringFlag{Category: cat, Name: "winrm-cert", Usage: "client certificate PEM `FILE` for --winrm-auth certificate"},
		&cli.StringFlag{Category: cat, Name: "winrm-key", Usage: "client key PEM `FILE` for --winrm-auth certificate"},
		&cli.StringFlag{Category: cat, Name: "hop-user", DefaultText: "$" + envHopUser + ", else the WinRM user when it logs on with a password",
			Usage: "domain `USER` whose password the scripts pass explicitly to Active Directory and the Exchange shell (the second hop)"},
		&cli.StringFlag{Category: cat, Name: "hop-password-file", Usage: "read the --hop-user password from the first line of `FILE` (mode 0600); else $" + envHopPassword + ", else a prompt"},
		&cli.DurationFlag{Category: cat, Name: "winrm-timeout", Value: 30 * time.Second, Usage: "WS-Management operation `TIMEOUT` per request"},
		// Defined only to refuse it with an explanation (see winrmConfigFrom).
		&cli.StringFlag{Name: "winrm-password", Hidden: true},
	}
}

// winrmConfigFrom builds the WinRM configuration for host (or
// --winrm-host when host is empty) from the flags, the environment and, as
// a last resort, a terminal prompt. The warnings are about credentials
// (remediate.NewWinRMRunner returns the transport warnings itself). Flag
// mistakes are usage errors (exit code 2).
func winrmConfigFrom(c *cli.Context, e *env, host string) (remediate.WinRMConfig, []string, error) {
	var warnings []string
	if c.IsSet("winrm-password") {
		return remediate.WinRMConfig{}, nil, usagef("--winrm-password is not accepted: a password on the command line is visible to other users (ps, /proc) and stays in shell history.\n" +
			"Set " + envWinRMPassword + " in the environment, use --winrm-password-file FILE (mode 0600), or run on a terminal to be prompted")
	}
	if host == "" {
		host = c.String("winrm-host")
	}
	if host == "" {
		return remediate.WinRMConfig{}, nil, usagef("no WinRM host: give --winrm-host HOST")
	}
	if c.IsSet("winrm-http") && c.IsSet("winrm-https") && c.Bool("winrm-http") == c.Bool("winrm-https") {
		return remediate.WinRMConfig{}, nil, usagef("--winrm-http and --winrm-https contradict each other")
	}
	https := c.Bool("winrm-https") && !c.Bool("winrm-http")
	user := c.String("winrm-user")
	if user == "" {
		user = e.Getenv(envWinRMUser)
	}
	cfg := remediate.WinRMConfig{
		Host: host, Port: c.Int("winrm-port"), HTTPS: https,
		Insecure: c.Bool("winrm-insecure"), CACertFile: c.String("winrm-ca"), TLSServerName: c.String("winrm-server-name"),
		Auth: strings.ToLower(c.String("winrm-auth")), User: user,
		KrbConfig: c.String("krb5-conf"), KrbRealm: c.String("krb5-realm"), KrbCCache: c.String("krb5-ccache"), SPN: c.String("winrm-spn"),
		ClientCertFile: c.String("winrm-cert"), ClientKeyFile: c.String("winrm-key"),
		AllowUnencrypted: c.Bool("winrm-allow-unencrypted"),
		LegacyTLS:        c.Bool("winrm-legacy-tls"),
		OperationTimeout: c.Duration("winrm-timeout"),
	}
	if cfg.OperationTimeout < time.Second || cfg.OperationTimeout > time.Hour {
		return remediate.WinRMConfig{}, nil, usagef("--winrm-timeout %s: want between 1s and 1h", cfg.OperationTimeout)
	}
	needPassword := cfg.Auth == remediate.AuthNTLM || cfg.Auth == remediate.AuthBasic ||
		(cfg.Auth == remediate.AuthKerberos && cfg.KrbCCache == "")
	if cfg.Auth == remediate.AuthNTLM || cfg.Auth == remediate.AuthBasic || cfg.Auth == remediate.AuthKerberos {
		if cfg.User == "" && needPassword {
			return remediate.WinRMConfig{}, nil, usagef("no WinRM user: give --winrm-user USER or set %s", envWinRMUser)
		}
	}
	if needPassword {
		pw, w, err := winrmPassword(c, e, cfg.User, host)
		if err != nil {
			return remediate.WinRMConfig{}, nil, err
		}
		warnings = append(warnings, w...)
		cfg.Password = pw
	} else if c.String("winrm-password-file") != "" {
		warnings = append(warnings, "--winrm-password-file is not used with --winrm-auth "+cfg.Auth)
	}
	if err := hopCredential(c, e, &cfg, host); err != nil {
		return remediate.WinRMConfig{}, nil, err
	}
	// Configuration mistakes are usage errors; the transport warnings
	// come from NewWinRMRunner.
	if _, err := cfg.WithDefaults().Validate(); err != nil {
		return remediate.WinRMConfig{}, nil, usageError{Msg: err.Error()}
	}
	return cfg, warnings, nil
}

// The second-hop account (remediate/hop.go), when it is not the WinRM one.
const (
	envHopUser     = "RELAYLOCK_HOP_USER"
	envHopPassword = "RELAYLOCK_HOP_PASSWORD"
)

// hopCredential fills cfg.HopUser and HopPassword from --hop-user (or
// $RELAYLOCK_HOP_USER) and --hop-password-file, $RELAYLOCK_HOP_PASSWORD or a
// prompt. Without --hop-user the WinRM credential is used (WinRMConfig.Hop).
func hopCredential(c *cli.Context, e *env, cfg *remediate.WinRMConfig, host string) error {
	user := c.String("hop-user")
	if user == "" {
		user = e.Getenv(envHopUser)
	}
	if user == "" {
		if c.String("hop-password-file") != "" {
			return usagef("--hop-password-file needs --hop-user")
		}
		return nil
	}
	cfg.HopUser = user
	if f := c.String("hop-password-file"); f != "" {
		pw, _, err := readPasswordFile(f)
		if err != nil {
			return err
		}
		cfg.HopPassword = pw
		return nil
	}
	if pw := e.Getenv(envHopPassword); pw != "" {
		cfg.HopPassword = pw
		return nil
	}
	if strings.EqualFold(user, cfg.User) && cfg.Password != "" {
		cfg.HopPassword = cfg.Password
		return nil
	}
	if !e.StdinIsTerminal {
		return usagef("no password for --hop-user %s: set %s, use --hop-password-file FILE, or run on a terminal to be prompted", user, envHopPassword)
	}
	fmt.Fprintf(e.Stderr, "Password of %s (for Active Directory and the Exchange shell on %s): ", user, host)
	b, err := readPasswordFromTerminal(e)
	fmt.Fprintln(e.Stderr)
	if err != nil {
		return fmt.Errorf("read password from the terminal: %w", err)
	}
	if len(b) == 0 {
		return errors.New("empty --hop-user password")
	}
	cfg.HopPassword = string(b)
	return nil
}

// winrmPassword finds the password: --winrm-password-file, then
// $RELAYLOCK_WINRM_PASSWORD, then a no-echo prompt on a terminal.
func winrmPassword(c *cli.Context, e *env, user, host string) (string, []string, error) {
	var warnings []string
	envPW := e.Getenv(envWinRMPassword)
	if f := c.String("winrm-password-file"); f != "" {
		if envPW != "" {
			warnings = append(warnings, envWinRMPassword+" is ignored because --winrm-password-file is given")
		}
		pw, w, err := readPasswordFile(f)
		return pw, append(warnings, w...), err
	}
	if envPW != "" {
		return envPW, nil, nil
	}
	if !e.StdinIsTerminal {
		return "", nil, usagef("no WinRM password for %s: set %s, use --winrm-password-file FILE, or run on a terminal to be prompted", user, envWinRMPassword)
	}
	fmt.Fprintf(e.Stderr, "WinRM password for %s at %s: ", user, host)
	b, err := readPasswordFromTerminal(e)
	fmt.Fprintln(e.Stderr)
	if err != nil {
		return "", nil, fmt.Errorf("read password from the terminal: %w", err)
	}
	if len(b) == 0 {
		return "", nil, errors.New("empty WinRM password")
	}
	return string(b), nil, nil
}

// readPasswordFile returns the first line of f, without its line ending
// and without a UTF-8 byte order mark (Notepad writes one); other spaces
// are kept as part of the password. A file other users can read is
// refused, one the group can read gets a warning (unix only).
func readPasswordFile(f string) (string, []string, error) {
	fh, err := os.Open(f)
	if err != nil {
		return "", nil, fmt.Errorf("password file: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return "", nil, fmt.Errorf("password file: %w", err)
	}
	if fi.IsDir() {
		return "", nil, usagef("password file %s is a directory", f)
	}
	var warnings []string
	if w, err := checkSecretFileMode(f, fi); err != nil {
		return "", nil, err
	} else if w != "" {
		warnings = append(warnings, w)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxPasswordFile))
	if err != nil {
		return "", nil, fmt.Errorf("password file %s: %w", f, err)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	line, _, _ := bytes.Cut(b, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return "", nil, usagef("password file %s: the first line is empty", f)
	}
	return string(line), warnings, nil
}

// winrmHint returns advice for the WinRM runner's error kinds ("" when
// none applies); hintFor calls it.
func winrmHint(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var wrongName x509.HostnameError
	switch {
	case errors.Is(err, remediate.ErrConfig):
		return ""
	case errors.Is(err, remediate.ErrAuth):
		return "check --winrm-user (DOMAIN\\user, user@domain or a local user) and the password; the host must allow the mechanism (winrm get winrm/config/service/auth); a local administrator other than the built-in one needs LocalAccountTokenFilterPolicy=1"
	case errors.Is(err, remediate.ErrTLS):
		switch {
		case errors.As(err, &unknownCA):
			return "pass the CA that issued the WinRM listener's certificate with --winrm-ca FILE (or, not recommended, --winrm-insecure)"
		case errors.As(err, &wrongName):
			return "the certificate names another host: give that name with --winrm-server-name NAME"
		case errors.Is(err, remediate.ErrTLSVersion):
			return "old Windows (2003/2008) listeners speak only TLS 1.0 and old ciphers: add --winrm-legacy-tls"
		case errors.Is(err, remediate.ErrSchemeMismatch):
			return "port 5986 is HTTPS (default), 5985 plain HTTP (--winrm-http)"
		}
		return "check the WinRM listener's certificate (winrm enumerate winrm/config/listener on the host)"
	case errors.Is(err, remediate.ErrUnreachable):
		if errors.Is(err, remediate.ErrKDCUnreachable) {
			return "check the realm's kdc in --krb5-conf (the KDC must be reachable on port 88), or use NTLM (--winrm-auth ntlm)"
		}
		if errors.Is(err, remediate.ErrOutcomeUnknown) {
			return "run 'relaylock inspect' to see the host's current settings before trying again"
		}
		return "is a WinRM listener running and reachable? on the host: winrm enumerate winrm/config/listener (an HTTPS listener: winrm quickconfig -transport:https); check the firewall for 5986/5985"
	case errors.Is(err, remediate.ErrAccessDenied):
		return "the WinRM user must be a local administrator (on Exchange also an organization administrator)"
	case errors.Is(err, remediate.ErrWebWMIMissing):
		return "install the IIS 6 WMI Compatibility role service on the host: Install-WindowsFeature Web-WMI (Windows Server 2008 R2: Add-WindowsFeature Web-WMI)"
	case errors.Is(err, remediate.ErrFeatureMissing):
		return "run relaylock against a server with the Exchange management tools installed"
	case errors.Is(err, remediate.ErrNoSMTPService):
		return "relaylock fixes the IIS SMTP service and Exchange 2000-SE; other MTAs are not supported"
	}
	return ""
}
