package engagement

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/internal/shellquote"
)

// labPlatforms are the platforms issue #4 item 7 names, listed first in
// the help; every other lab platform (exchange2010, ...) works too.
var labPlatforms = []string{"iis", "exchange2003", "exchange2016", "exchange2019"}

// LabPlatforms lists the lab's platforms, the first.
func LabPlatforms() []string {
	names := available(labPlatforms, lab.Platforms())
	for _, p := range lab.Platforms() {
		if !slices.Contains(names, p) {
			names = append(names, p)
		}
	}
	return names
}

// LabOptions are the settings of a lab.
type LabOptions struct {
	Platform string
	// Listen is the loopback address to listen on.
	Listen                       string
	SMTPPort, WinRMPort, DNSPort int // 0: any free port
	Domain                       string
	HTTP, SealedHTTP             bool
	MaxMemoryPerShellMB          int
	Language                     string
	// Kerberos also accepts Kerberos for HTTP/<host>, with tickets from
	// a throwaway MIT KDC on loopback.
	Kerberos bool
	// TryCommands are the commands printed for the operator to try
	// against the running lab, in the syntax of the caller's command line.
	TryCommands func(LabAccess) []string
}

// LabAccess is how to reach a running lab.
type LabAccess struct {
	Domain, MXHost        string
	DNSAddr, DNSPort      string
	SMTPPort              string
	WinRMHost             string
	WinRMPort             int
	User, Password        string
	GeneratedPassword     bool
	HTTPS, SealedHTTP     bool
	CAFile, TLSServerName string
	// ExchangeShellEnds: the host keeps WinRM 2.0's default quota, which
	// ends the Exchange shell (lab.Lab): inspect and fix cannot work on it.
	ExchangeShellEnds bool
}

// labPlatform is the lab platform name (any case) or a usage error
// listing the platforms.
func labPlatform(name string) (string, error) {
	platform := strings.ToLower(name)
	if !slices.Contains(lab.Platforms(), platform) {
		return "", Usagef("--platform must be one of %s", strings.Join(LabPlatforms(), ", "))
	}
	return platform, nil
}

// Lab runs a simulated Windows mail host (an open relay) on loopback
// until ctx ends, printing how to reach it.
func Lab(ctx context.Context, e *Env, o LabOptions) error {
	platform, err := labPlatform(o.Platform)
	if err != nil {
		return err
	}
	listen := o.Listen
	ip, err := netip.ParseAddr(strings.Trim(listen, "[]"))
	if err != nil || !ip.IsLoopback() {
		return Usagef("--listen %q: the lab is an open relay by design and listens on loopback only (127.0.0.0/8 or ::1)", listen)
	}
	if o.HTTP && o.SealedHTTP {
		return Usagef("--http and --sealed-http exclude each other")
	}
	if lang := o.Language; lang != "en-US" && lang != "de-DE" {
		return Usagef("--language %q: want en-US or de-DE", lang)
	}
	if mb := o.MaxMemoryPerShellMB; mb < 0 {
		return Usagef("--max-memory-per-shell-mb %d: want 0 (WinRM's default) or more", mb)
	}
	for _, p := range []struct {
		flag string
		port int
	}{{"smtp-port", o.SMTPPort}, {"winrm-port", o.WinRMPort}, {"dns-port", o.DNSPort}} {
		if p.port < 0 || p.port > 65535 {
			return Usagef("--%s %d: not a port", p.flag, p.port)
		}
	}
	var logMu sync.Mutex
	password := e.Getenv(EnvWinRMPassword)
	generated := password == ""
	if generated {
		password = lab.RandomPassword()
	}
	var krb *lab.KerberosRealm
	if o.Kerberos {
		if krb, err = lab.StartKerberosRealm(ctx, password); err != nil {
			return fmt.Errorf("start the lab's KDC: %w", err)
		}
		defer krb.Close()
	}
	l, err := lab.Start(ctx, lab.Config{
		Kerberos:   krb.Config(),
		Platform:   platform,
		Listen:     ip.String(),
		SMTPPort:   o.SMTPPort,
		WinRMPort:  o.WinRMPort,
		DNSPort:    o.DNSPort,
		Domain:     o.Domain,
		Password:   password,
		PlainHTTP:  o.HTTP,
		SealedHTTP: o.SealedHTTP,
		WinRM: lab.WSManConfig{Language: o.Language,
			Conditions: lab.HostConditions{MaxMemoryPerShellMB: o.MaxMemoryPerShellMB}},
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
	printLab(e, l, platform, caFile, generated, o)
	krb.Print(e.Stdout, l, caFile, o.SealedHTTP)
	<-ctx.Done()
	fmt.Fprintln(e.Stderr, "relaylock: lab: stopping")
	return l.Close()
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

func printLab(e *Env, l *lab.Lab, platform, caFile string, generated bool, o LabOptions) {
	sealed := o.SealedHTTP
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
	if l.ExchangeShellEnds {
		// Strict by default, as Windows is: say so before anything fails.
		prepared := o // the same lab, its quota raised as the README asks
		prepared.MaxMemoryPerShellMB = l.PreparedMaxMemoryPerShellMB
		if o.MaxMemoryPerShellMB > 0 {
			fmt.Fprintf(out, "  quota  MaxMemoryPerShellMB %d (--max-memory-per-shell-mb): the Exchange shell will not load, as on a host with that quota.\n", l.ShellQuotaMB)
		} else {
			fmt.Fprintf(out, "  quota  MaxMemoryPerShellMB %d, WinRM 2.0's default on %s: the Exchange shell will not load,\n", l.ShellQuotaMB, info.OSCaption)
			fmt.Fprintf(out, "         as on a host not yet prepared as the README asks (%s).\n", strings.Join(lab.HostPreparation(l.Host), "; "))
		}
		fmt.Fprintln(out, "         doctor shows it; inspect and fix stop before any read, so they are not listed below.")
		fmt.Fprintf(out, "         For a lab prepared as the README asks, stop this one and start: %s\n", LabCommandLine("relaylock", prepared))
	}
	fmt.Fprintln(out, "\nTry, in another terminal:")
	if o.TryCommands != nil {
		for _, line := range o.TryCommands(LabAccess{Domain: l.Domain, MXHost: l.MXHost, DNSAddr: l.DNSAddr, DNSPort: dnsPort, SMTPPort: smtpPort,
			WinRMHost: l.WinRMHost, WinRMPort: l.WinRMPort, User: l.User, Password: l.Password, GeneratedPassword: generated,
			HTTPS: l.HTTPS, SealedHTTP: sealed, CAFile: caFile, TLSServerName: l.TLSServerName, ExchangeShellEnds: l.ExchangeShellEnds}) {
			fmt.Fprintf(out, "  %s\n", line)
		}
	}
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

// LabCommandLine is the command line, starting with program, that runs a
// lab as o describes it. It names only the options that differ from
// their defaults.
func LabCommandLine(program string, o LabOptions) string {
	words := []string{program, "lab", "--platform", strings.ToLower(o.Platform)}
	add := func(set bool, w ...string) {
		if set {
			words = append(words, w...)
		}
	}
	add(o.Listen != "" && o.Listen != "127.0.0.1", "--listen", o.Listen)
	for _, p := range []struct {
		flag string
		port int
	}{{"--smtp-port", o.SMTPPort}, {"--winrm-port", o.WinRMPort}, {"--dns-port", o.DNSPort}} {
		add(p.port != 0, p.flag, strconv.Itoa(p.port))
	}
	add(o.Domain != "", "--domain", shellquote.Quote(o.Domain))
	add(o.HTTP, "--http")
	add(o.SealedHTTP, "--sealed-http")
	add(o.Kerberos, "--kerberos")
	add(o.Language != "" && o.Language != "en-US", "--language", shellquote.Quote(o.Language))
	add(o.MaxMemoryPerShellMB > 0, "--max-memory-per-shell-mb", strconv.Itoa(o.MaxMemoryPerShellMB))
	return strings.Join(words, " ")
}
