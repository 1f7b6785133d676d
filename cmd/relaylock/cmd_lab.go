package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
)

func labCommand(e *env, run func(context.Context, *env, engagement.LabOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "lab",
		Usage: "run a simulated Windows mail host (an open relay) on loopback: DNS, SMTP and WinRM, for practice, training and scripting",
		UsageText: "relaylock lab [--platform iis|exchange2003|exchange2016|exchange2019|...] [--listen ADDR] [--smtp-port N] [--winrm-port N] [--dns-port N] [--domain D] [--http | --sealed-http] [--max-memory-per-shell-mb N]\n\n" +
			"Runs until interrupted (Ctrl-C). The lab listens on loopback only. The WinRM password is RELAYLOCK_WINRM_PASSWORD\n" +
			"when set, otherwise a generated one that is printed (it is a lab password). Services and example commands go to\n" +
			"stdout; every WinRM command run and every SMTP recipient decision is logged to stderr.\n\n" +
			"Exit codes: 0 stopped with Ctrl-C; 1 error; 2 usage.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "platform", Value: "iis", Usage: "simulated host `PLATFORM`: " + strings.Join(engagement.LabPlatforms(), ", ")},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1", Usage: "loopback `ADDR` to listen on (127.0.0.0/8 or ::1)"},
			&cli.IntFlag{Name: "smtp-port", Usage: "SMTP `PORT` (0: any free port)"},
			&cli.IntFlag{Name: "winrm-port", Usage: "WinRM `PORT` (0: any free port)"},
			&cli.IntFlag{Name: "dns-port", Usage: "DNS `PORT`, UDP and TCP (0: any free port)"},
			&cli.StringFlag{Name: "domain", Usage: "mail `DOMAIN` whose MX the simulated host is (default: the host's own domain, corp.example for the built-in platforms)"},
			&cli.BoolFlag{Name: "http", Usage: "serve WinRM over plain HTTP (as a host with AllowUnencrypted=true) instead of HTTPS"},
			&cli.BoolFlag{Name: "sealed-http", Usage: "serve WinRM as a default Windows listener does: plain HTTP that requires NTLM message encryption (AllowUnencrypted=false)"},
			&cli.IntFlag{Name: "max-memory-per-shell-mb", Usage: "the host's WinRS MaxMemoryPerShellMB `MB`, enforced on every script (the Exchange 2007/2010 shell under PowerShell 2.0 is charged ~200 MB, an unverified estimate); 0: WinRM's default for the platform, enforced too (150 before Windows Server 2012, else 1024: the Exchange 2007/2010 labs end the Exchange shell until raised)"},
			&cli.BoolFlag{Name: "kerberos", Usage: "also accept Kerberos for HTTP/<host>, with tickets from a throwaway MIT KDC on loopback (Debian krb5-kdc, krb5-admin-server)"},
			&cli.StringFlag{Name: "language", Value: "en-US", Usage: "`LANG` of the host's error messages: en-US or de-DE (relaylock classifies errors the same in both)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("lab takes no arguments")
			}
			return run(c.Context, e, engagement.LabOptions{Platform: c.String("platform"), Listen: c.String("listen"),
				SMTPPort: c.Int("smtp-port"), WinRMPort: c.Int("winrm-port"), DNSPort: c.Int("dns-port"), Domain: c.String("domain"),
				HTTP: c.Bool("http"), SealedHTTP: c.Bool("sealed-http"), MaxMemoryPerShellMB: c.Int("max-memory-per-shell-mb"), Kerberos: c.Bool("kerberos"),
				Language: c.String("language"), TryCommands: labTryCommands})
		},
	}
}

// labTryCommands are the commands the lab prints for its operator: they
// work as printed against the running lab.
func labTryCommands(a engagement.LabAccess) []string {
	// The transport flags of the commands below.
	transport := fmt.Sprintf(" --winrm-ca %s --winrm-server-name %s", a.CAFile, a.TLSServerName)
	switch {
	case a.HTTPS:
	case a.SealedHTTP:
		transport = " --winrm-http" // NTLM, sealed: relaylock's default over HTTP
	default:
		transport = " --winrm-http --winrm-allow-unencrypted"
	}
	// The Exchange labs' user is a domain account, CORP\Administrator:
	// quoted, so that the shell keeps the backslash.
	user := a.User
	if strings.ContainsAny(user, "\\ ") {
		user = "'" + user + "'"
	}
	winrm := fmt.Sprintf("--winrm-host %s --winrm-port %d --winrm-user %s", a.WinRMHost, a.WinRMPort, user) + transport
	var out []string
	if a.GeneratedPassword {
		out = append(out, fmt.Sprintf("export %s='%s'", engagement.EnvWinRMPassword, a.Password))
	}
	out = append(out,
		fmt.Sprintf("relaylock audit %s --dns-server %s --ports %s", a.Domain, a.DNSAddr, a.SMTPPort),
		"relaylock doctor "+winrm)
	if !a.ExchangeShellEnds { // the host's quota ends both before any read
		out = append(out, "relaylock inspect "+winrm,
			fmt.Sprintf("relaylock fix %s --dns-server %s --ports %s --winrm-host %s=%s --winrm-user %s",
				a.Domain, a.DNSAddr, a.SMTPPort, a.MXHost, net.JoinHostPort(a.WinRMHost, strconv.Itoa(a.WinRMPort)), user)+
				transport+" --allow 192.0.2.0/24 --no-loopback")
	}
	return append(out, fmt.Sprintf("dig @%s -p %s MX %s", a.WinRMHost, a.DNSPort, a.Domain))
}
