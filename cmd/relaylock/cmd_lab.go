package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/lab"
)

// labPlatforms are the platforms issue #4 item 7 names, listed first in
// the help; any other registered platform (exchange2010, ...) works too.
var labPlatforms = []string{"iis", "exchange2003", "exchange2016", "exchange2019"}

// labPlatformNames lists the registered platforms, the first.
func labPlatformNames() []string {
	names := available(labPlatforms, lab.Platforms())
	for _, p := range lab.Platforms() {
		if !slices.Contains(names, p) {
			names = append(names, p)
		}
	}
	return names
}

func labCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "lab",
		Usage: "run a simulated Windows mail host (an open relay) on loopback: DNS, SMTP and WinRM, for practice, training and scripting",
		UsageText: "relaylock lab [--platform iis|exchange2003|exchange2016|exchange2019|...] [--listen ADDR] [--smtp-port N] [--winrm-port N] [--dns-port N] [--domain D] [--http | --sealed-http] [--max-memory-per-shell-mb N]\n\n" +
			"Runs until interrupted (Ctrl-C). The lab listens on loopback only. The WinRM password is RELAYLOCK_WINRM_PASSWORD\n" +
			"when set, otherwise a generated one that is printed (it is a lab password). Services and example commands go to\n" +
			"stdout; every WinRM command run and every SMTP recipient decision is logged to stderr.\n\n" +
			"Exit codes: 0 stopped with Ctrl-C; 1 error; 2 usage.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "platform", Value: "iis", Usage: "simulated host `PLATFORM`: " + strings.Join(labPlatformNames(), ", ")},
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
			platform := strings.ToLower(c.String("platform"))
			if !slices.Contains(lab.Platforms(), platform) {
				return usagef("--platform must be one of %s", strings.Join(labPlatformNames(), ", "))
			}
			listen := c.String("listen")
			ip, err := netip.ParseAddr(strings.Trim(listen, "[]"))
			if err != nil || !ip.IsLoopback() {
				return usagef("--listen %q: the lab is an open relay by design and listens on loopback only (127.0.0.0/8 or ::1)", listen)
			}
			if c.Bool("http") && c.Bool("sealed-http") {
				return usagef("--http and --sealed-http exclude each other")
			}
			if lang := c.String("language"); lang != "en-US" && lang != "de-DE" {
				return usagef("--language %q: want en-US or de-DE", lang)
			}
			if mb := c.Int("max-memory-per-shell-mb"); mb < 0 {
				return usagef("--max-memory-per-shell-mb %d: want 0 (WinRM's default) or more", mb)
			}
			for _, f := range []string{"smtp-port", "winrm-port", "dns-port"} {
				if p := c.Int(f); p < 0 || p > 65535 {
					return usagef("--%s %d: not a port", f, p)
				}
			}
			var logMu sync.Mutex
			password := e.Getenv("RELAYLOCK_WINRM_PASSWORD")
			generated := password == ""
			if generated {
				password = lab.RandomPassword()
			}
			var krb *lab.KerberosRealm
			if c.Bool("kerberos") {
				if krb, err = lab.StartKerberosRealm(c.Context, password); err != nil {
					return fmt.Errorf("start the lab's KDC: %w", err)
				}
				defer krb.Close()
			}
			l, err := lab.Start(c.Context, lab.Config{
				Kerberos:   krb.Config(),
				Platform:   platform,
				Listen:     ip.String(),
				SMTPPort:   c.Int("smtp-port"),
				WinRMPort:  c.Int("winrm-port"),
				DNSPort:    c.Int("dns-port"),
				Domain:     c.String("domain"),
				Password:   password,
				PlainHTTP:  c.Bool("http"),
				SealedHTTP: c.Bool("sealed-http"),
				WinRM: lab.WSManConfig{Language: c.String("language"),
					Conditions: lab.HostConditions{MaxMemoryPerShellMB: c.Int("max-memory-per-shell-mb")}},
				Logf: func(format string, args ...any) {
					logMu.Lock()
					defer logMu.Unlock()
					fmt.Fprintf(e.Stderr, "relaylock: lab: "+format+"\n", args...)
				},
			})
			if err != nil {
				return fmt.Errorf("start the lab: %w", err)
			}
			defer l.Close()
			caFile := ""
			if l.HTTPS {
				if caFile, err = writeLabCA(l.CACertPEM); err != nil {
					return err
				}
				defer os.Remove(caFile)
			}
			printLab(e, l, platform, caFile, generated, c.Bool("sealed-http"))
			krb.Print(e.Stdout, l, caFile, c.Bool("sealed-http"))
			<-c.Context.Done()
			fmt.Fprintln(e.Stderr, "relaylock: lab: stopping")
			return l.Close()
		},
	}
}

// writeLabCA writes the lab CA to a new 0600 temporary file.
func writeLabCA(pem []byte) (string, error) {
	f, err := os.CreateTemp("", "relaylock-lab-ca-*.pem") // created 0600
	if err != nil {
		return "", fmt.Errorf("write the lab CA: %w", err)
	}
	if _, err := f.Write(pem); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("write the lab CA: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write the lab CA: %w", err)
	}
	return f.Name(), nil
}

func printLab(e *env, l *lab.Lab, platform, caFile string, generated, sealed bool) {
	info := l.Host.HostInfo()
	_, smtpPort, _ := net.SplitHostPort(l.SMTPAddr)
	_, dnsPort, _ := net.SplitHostPort(l.DNSAddr)
	out := e.Stdout
	fmt.Fprintf(out, "relaylock lab: simulated %s host %s (%s), an open relay until you fix it\n", platform, info.ComputerName, info.OSCaption)
	fmt.Fprintf(out, "  DNS    %s  (UDP and TCP: MX %s -> %s -> %s)\n", l.DNSAddr, l.Domain, l.MXHost, l.WinRMHost)
	fmt.Fprintf(out, "  SMTP   %s  (%s)\n", l.SMTPAddr, l.MXHost)
	if l.HTTPS {
		fmt.Fprintf(out, "  WinRM  %s  (certificate for %s and %s)\n", l.WinRMURL, l.TLSServerName, l.WinRMHost)
		fmt.Fprintf(out, "  CA     %s  (the lab CA; deleted when the lab stops)\n", caFile)
	} else if sealed {
		fmt.Fprintf(out, "  WinRM  %s  (plain HTTP, AllowUnencrypted=false: NTLM message encryption required, as on a default Windows listener)\n", l.WinRMURL)
	} else {
		fmt.Fprintf(out, "  WinRM  %s  (plain HTTP, AllowUnencrypted=true)\n", l.WinRMURL)
	}
	if strings.Contains(l.User, `\`) {
		// WinRM Basic takes local accounts only, as on Windows: the
		// printed commands use relaylock's default, NTLM.
		fmt.Fprintf(out, "  user   %s  (NTLM, not Basic: Windows takes only local accounts over Basic; also SMTP AUTH)\n", l.User)
		fmt.Fprintln(out, "         a domain account: the scripts pass it explicitly to Active Directory and the Exchange shell (the second hop)")
	} else {
		fmt.Fprintf(out, "  user   %s  (a local account: NTLM or Basic; also SMTP AUTH)\n", l.User)
	}
	if generated {
		fmt.Fprintf(out, "  password %s  (generated lab password; set RELAYLOCK_WINRM_PASSWORD to choose one)\n", l.Password)
	} else {
		fmt.Fprintln(out, "  password from RELAYLOCK_WINRM_PASSWORD")
	}
	// The transport flags of the commands below.
	transport := fmt.Sprintf(" --winrm-ca %s --winrm-server-name %s", caFile, l.TLSServerName)
	switch {
	case l.HTTPS:
	case sealed:
		transport = " --winrm-http" // NTLM, sealed: relaylock's default over HTTP
	default:
		transport = " --winrm-http --winrm-allow-unencrypted"
	}
	// The Exchange labs' user is a domain account, CORP\Administrator:
	// quoted, so that the shell keeps the backslash.
	user := l.User
	if strings.ContainsAny(user, "\\ ") {
		user = "'" + user + "'"
	}
	winrm := fmt.Sprintf("--winrm-host %s --winrm-port %d --winrm-user %s", l.WinRMHost, l.WinRMPort, user) + transport
	fmt.Fprintln(out, "\nTry, in another terminal:")
	if generated {
		fmt.Fprintf(out, "  export RELAYLOCK_WINRM_PASSWORD='%s'\n", l.Password)
	}
	fmt.Fprintf(out, "  relaylock audit %s --dns-server %s --ports %s\n", l.Domain, l.DNSAddr, smtpPort)
	fmt.Fprintf(out, "  relaylock doctor %s\n", winrm)
	fmt.Fprintf(out, "  relaylock inspect %s\n", winrm)
	fmt.Fprintf(out, "  relaylock fix %s --dns-server %s --ports %s --winrm-host %s=%s --winrm-user %s",
		l.Domain, l.DNSAddr, smtpPort, l.MXHost, net.JoinHostPort(l.WinRMHost, strconv.Itoa(l.WinRMPort)), user)
	fmt.Fprint(out, transport+" --allow 192.0.2.0/24 --no-loopback\n")
	fmt.Fprintf(out, "  dig @%s -p %s MX %s\n", l.WinRMHost, dnsPort, l.Domain)
	fmt.Fprintln(out, "\nPress Ctrl-C to stop.")
}

// available lists the wanted platforms that are registered.
func available(want, registered []string) []string {
	var out []string
	for _, p := range want {
		if slices.Contains(registered, p) {
			out = append(out, p)
		}
	}
	return out
}
