package main

import (
	"crypto/x509"
	"errors"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
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

const winrmCategory = "WinRM"

// winrmHostFlag is --winrm-host of the commands that reach one host.
func winrmHostFlag() cli.Flag {
	return &cli.StringFlag{Category: winrmCategory, Name: "winrm-host", Usage: "Windows mail `HOST` to reach over WinRM"}
}

// winrmFlags are the WinRM flags, after the command's host flag
// (winrmHostFlag, or fix's MX=HOST mapping).
func winrmFlags(host cli.Flag) []cli.Flag {
	const cat = winrmCategory
	return []cli.Flag{
		host,
		&cli.IntFlag{Category: cat, Name: "winrm-port", DefaultText: "5986 with HTTPS, 5985 with --winrm-http", Usage: "WinRM `PORT`"},
		&cli.StringFlag{Category: cat, Name: "winrm-user", EnvVars: []string{engagement.EnvWinRMUser}, Usage: "WinRM `USER`: DOMAIN\\user, user@domain or a local user"},
		&cli.StringFlag{Category: cat, Name: "winrm-auth", Value: remediate.AuthNTLM, Usage: "authentication `MECH`: ntlm, basic, kerberos or certificate"},
		&cli.BoolFlag{Category: cat, Name: "winrm-https", Value: true, Usage: "use HTTPS and verify the host's certificate"},
		&cli.BoolFlag{Category: cat, Name: "winrm-http", Usage: "use plain HTTP (NTLM messages are then encrypted; basic/kerberos need --winrm-allow-unencrypted)"},
		&cli.StringFlag{Category: cat, Name: "winrm-ca", EnvVars: []string{engagement.EnvWinRMCA}, Usage: "PEM `FILE` of CA certificates to trust for the WinRM listener (for a self-signed one)"},
		&cli.BoolFlag{Category: cat, Name: "winrm-insecure", Usage: "do not verify the WinRM certificate (NOT recommended: anyone on the path can read the session)"},
		&cli.StringFlag{Category: cat, Name: "winrm-server-name", Usage: "`NAME` to verify the certificate against, when --winrm-host is an address"},
		&cli.BoolFlag{Category: cat, Name: "winrm-legacy-tls", Usage: "accept TLS 1.0/1.1 and the old cipher suites of Windows Server 2003/2008 listeners"},
		&cli.BoolFlag{Category: cat, Name: "winrm-allow-unencrypted", Usage: "allow plain HTTP without message encryption (credentials or commands in clear text)"},
		&cli.StringFlag{Category: cat, Name: "winrm-password-file", Usage: "read the WinRM password from the first line of `FILE` (mode 0600); else $" + engagement.EnvWinRMPassword + ", else a prompt"},
		&cli.StringFlag{Category: cat, Name: "krb5-conf", DefaultText: "$KRB5_CONFIG or /etc/krb5.conf", Usage: "krb5.conf `FILE` for --winrm-auth kerberos"},
		&cli.StringFlag{Category: cat, Name: "krb5-realm", DefaultText: "from --winrm-user user@REALM", Usage: "Kerberos `REALM`"},
		&cli.StringFlag{Category: cat, Name: "krb5-ccache", Usage: "Kerberos credential cache `FILE` to use instead of a password"},
		&cli.StringFlag{Category: cat, Name: "winrm-spn", DefaultText: "HTTP/<host>", Usage: "Kerberos service principal `NAME`"},
		&cli.StringFlag{Category: cat, Name: "winrm-cert", Usage: "client certificate PEM `FILE` for --winrm-auth certificate"},
		&cli.StringFlag{Category: cat, Name: "winrm-key", Usage: "client key PEM `FILE` for --winrm-auth certificate"},
		&cli.StringFlag{Category: cat, Name: "hop-user", DefaultText: "$" + engagement.EnvHopUser + ", else the WinRM user when it logs on with a password",
			Usage: "domain `USER` whose password the scripts pass explicitly to Active Directory and the Exchange shell (the second hop)"},
		&cli.StringFlag{Category: cat, Name: "hop-password-file", Usage: "read the --hop-user password from the first line of `FILE` (mode 0600); else $" + engagement.EnvHopPassword + ", else a prompt"},
		&cli.DurationFlag{Category: cat, Name: "winrm-timeout", Value: 30 * time.Second, Usage: "WS-Management operation `TIMEOUT` per request"},
		// Defined only to refuse it with an explanation (WinRMOptions.PasswordGiven).
		&cli.StringFlag{Name: "winrm-password", Hidden: true},
	}
}

// winrmOptions maps the WinRM flags.
func winrmOptions(c *cli.Context) engagement.WinRMOptions {
	return engagement.WinRMOptions{
		Host: c.String("winrm-host"), Port: c.Int("winrm-port"), User: c.String("winrm-user"), Auth: c.String("winrm-auth"),
		HTTPS: c.Bool("winrm-https"), HTTP: c.Bool("winrm-http"),
		HTTPContradicts:  c.IsSet("winrm-http") && c.IsSet("winrm-https") && c.Bool("winrm-http") == c.Bool("winrm-https"),
		CAFile:           c.String("winrm-ca"),
		Insecure:         c.Bool("winrm-insecure"),
		ServerName:       c.String("winrm-server-name"),
		LegacyTLS:        c.Bool("winrm-legacy-tls"),
		AllowUnencrypted: c.Bool("winrm-allow-unencrypted"),
		PasswordFile:     c.String("winrm-password-file"),
		PasswordGiven:    c.IsSet("winrm-password"),
		KrbConfig:        c.String("krb5-conf"), KrbRealm: c.String("krb5-realm"), KrbCCache: c.String("krb5-ccache"),
		SPN:        c.String("winrm-spn"),
		ClientCert: c.String("winrm-cert"), ClientKey: c.String("winrm-key"),
		HopUser: c.String("hop-user"), HopPasswordFile: c.String("hop-password-file"),
		Timeout: c.Duration("winrm-timeout"),
	}
}

// winrmHint returns advice for the WinRM runner's error kinds ("" when
// none applies); hintFor calls it.
func winrmHint(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var wrongName x509.HostnameError
	switch {
	case errors.Is(err, remediate.ErrConfig):
		return ""
	case errors.Is(err, remediate.ErrKerberosSPN):
		return "give the host's service principal with --winrm-spn HTTP/<its DNS name> (setspn -L <host> lists it)"
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
