package lab

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relaylock/relaylock/audit/dnstest"
	"github.com/relaylock/relaylock/audit/smtptest"
	"github.com/relaylock/relaylock/remediate"
)

// Config configures a lab: one simulated Windows mail host with its DNS,
// SMTP and WinRM faces, all on loopback.
type Config struct {
	// Platform is a platform name NewHost knows (Platforms()); ignored when
	// Host is set.
	Platform string
	// Host, when set, is the simulated host to use (tests bring their own).
	Host Host
	// Listen is the loopback IP every service listens on; default
	// 127.0.0.1. Anything but a loopback address is refused.
	Listen string
	// SMTPPort, WinRMPort and DNSPort: 0 picks a free port.
	SMTPPort, WinRMPort, DNSPort int
	// Domain is the mail domain whose MX the host is (default: the host's
	// own domain, HostInfo().Domain, else its first local domain, else
	// "lab.relaylock.test"); MXHost its MX (default "mail.<Domain>").
	// The lab DNS answers MX Domain → MXHost, A MXHost → Listen and
	// A Hostname → Listen. The SMTP face always accepts mail for Domain,
	// whatever the host's accepted domains say: the lab's DNS makes the
	// host its MX.
	Domain string
	MXHost string
	// Hostname is the WinRM host name in the TLS certificate (default
	// "<ComputerName>.<Domain>", lower case). The certificate also
	// covers 127.0.0.1, ::1 and localhost.
	Hostname string
	// User and Password are the lab account for WinRM and SMTP AUTH.
	// User defaults to "Administrator" (a local account) on IIS hosts and
	// to CORP\Administrator (a domain account, which WinRM Basic refuses)
	// on Exchange hosts; an empty Password is replaced by a random one
	// (Lab.Password). Only a domain account crosses the second hop.
	User     string
	Password string
	// PlainHTTP serves WinRM over HTTP instead of HTTPS (the default), as
	// a host with AllowUnencrypted=true whose NTLM does not offer message
	// encryption (WSManConfig.DisableSealing): every message travels in
	// clear text. Tests and demos use it to watch the traffic, and to
	// check that a client never falls back to clear text.
	PlainHTTP bool
	// SealedHTTP serves WinRM as a default Windows listener does: plain
	// HTTP (the 5985 listener) with AllowUnencrypted=false, so only SOAP
	// messages sealed with the connection's NTLM session are accepted
	// (NTLM message encryption, MS-WSMV 2.2.9.1) and any other request,
	// Basic included, gets 401. It excludes PlainHTTP.
	SealedHTTP bool
	// Kerberos, when set, makes the WinRM face a Kerberos acceptor as well
	// (kerberos.go). Its SPN defaults to HTTP/<Hostname>, its keytab to
	// KeytabFor's answer for that SPN, and the lab account to
	// CORP\Administrator on every platform: Kerberos logs on domain
	// accounts only. The logon holds no network credentials (no
	// delegation), so the second hop needs explicit credentials.
	Kerberos *KerberosConfig
	// WinRM holds further WS-Man options (MaxOperationTimeout, DisableBasic,
	// DisableNTLM, MaxShellsPerUser, ...). User, Password, Faults and
	// AllowUnencrypted and DisableSealing are set by Start.
	WinRM WSManConfig
	// HostCommands are commands the host's administrator ran before the
	// lab starts, as HostConditions.Apply takes them (for example
	// remediate.ShellMemoryQuotaFixWinRM2); they change WinRM.Conditions.
	// PrepareHost adds HostPreparation's: the host is prepared as the
	// README asks. Lab.HostCommands lists what was applied.
	HostCommands []string
	PrepareHost  bool
	// Logf, when set, receives one line per WinRM command run and per
	// SMTP recipient decided (for `relaylock lab`, practice and training).
	// Passwords are never logged.
	Logf func(format string, args ...any)
}

// Lab is a running lab.
type Lab struct {
	Platform string // "" when Config.Host was given
	Host     Host
	Domain   string
	MXHost   string
	Hostname string

	DNSAddr  string // "127.0.0.1:PORT", UDP and TCP
	SMTPAddr string // "127.0.0.1:PORT"

	WinRMURL  string // "https://127.0.0.1:PORT/wsman"
	WinRMHost string // the listen IP
	WinRMPort int
	HTTPS     bool
	// TLSServerName is the DNS name in the WinRM certificate (Hostname);
	// the certificate also covers the listen IP, so verifying against
	// WinRMHost works too.
	TLSServerName string
	// CACertPEM is the lab CA that signed the WinRM certificate (nil over
	// plain HTTP): the client's trust anchor.
	CACertPEM []byte

	User     string
	Password string
	// HostCommands are the administrator's commands applied to the host
	// (Config.HostCommands and, with Config.PrepareHost, HostPreparation).
	HostCommands []string
	// ShellQuotaMB is the host's MaxMemoryPerShellMB. ExchangeShellEnds
	// says that it ends every script that loads the Exchange shell (WinRM
	// 2.0's default, not raised): as on a Windows host not prepared as the
	// README asks, doctor fails its quota checks and inspect and fix stop
	// before any read. PreparedMaxMemoryPerShellMB is the quota of this
	// host prepared as the README asks (0: it needs no preparation).
	ShellQuotaMB                int
	ExchangeShellEnds           bool
	PreparedMaxMemoryPerShellMB int
	// KerberosSPN and KerberosRealm name the service principal the WinRM
	// face accepts tickets for ("" without Config.Kerberos).
	KerberosSPN, KerberosRealm string

	// WinRM is the WS-Man server: Calls, Runs, Verify, CountCalls.
	WinRM *WSMan
	// Faults injects WinRM failures; add rules at any time.
	Faults *Faults
	// DNS and SMTP are the other faces (queries and sessions recorded).
	DNS  *dnstest.Server
	SMTP *smtptest.Server

	closeOnce sync.Once
	closeErr  error
	smtpDone  chan struct{}
	stopMu    sync.Mutex
	stop      func() bool
}

// kerberos completes kc for this lab (SPN, keytab) and checks it.
func (l *Lab) kerberos(kc KerberosConfig) (*KerberosConfig, error) {
	if kc.SPN == "" {
		kc.SPN = "HTTP/" + l.Hostname
	}
	if len(kc.Keytab) == 0 && kc.KeytabFor != nil {
		kt, err := kc.KeytabFor(kc.SPN)
		if err != nil {
			return nil, fmt.Errorf("%w: keytab for %s: %w", ErrKerberosConfig, kc.SPN, err)
		}
		kc.Keytab = kt
	}
	if _, err := newKrbAcceptor(&kc); err != nil {
		return nil, err
	}
	l.KerberosSPN, l.KerberosRealm = kc.SPN, kc.Realm
	return &kc, nil
}

// ErrNotLoopback is returned for a Listen address outside loopback: the
// lab is an open relay by design and must never be reachable from a
// network.
var ErrNotLoopback = errors.New("lab listens on loopback only")

// DenyTexter is implemented by hosts whose relay refusal has its
// product's wording. The text follows the reply code 550 and may contain
// one %s for the recipient. Without it the lab answers as IIS ("5.7.1
// Unable to relay for <rcpt>") or, for Exchange 2007 and later platforms,
// "5.7.54 SMTP; Unable to relay recipient in non-accepted domain".
type DenyTexter interface {
	DenyText() string
}

// Start starts a lab and returns once every service listens. It stops
// when ctx ends or Close is called.
func Start(ctx context.Context, cfg Config) (*Lab, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(cfg.Listen)
	if err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%w: %q is not a loopback IP address", ErrNotLoopback, cfg.Listen)
	}
	l := &Lab{Host: cfg.Host, Platform: cfg.Platform}
	if l.Host == nil {
		if l.Host, err = NewHost(cfg.Platform); err != nil {
			return nil, err
		}
	} else {
		l.Platform = ""
	}
	info := l.Host.HostInfo()
	def := info.Domain
	if def == "" {
		if ds := l.Host.LocalDomains(); len(ds) > 0 {
			def = ds[0]
		}
	}
	l.Domain = strings.ToLower(strings.TrimSuffix(firstNonEmpty(cfg.Domain, firstNonEmpty(def, "lab.relaylock.test")), "."))
	l.MXHost = strings.ToLower(strings.TrimSuffix(firstNonEmpty(cfg.MXHost, "mail."+l.Domain), "."))
	l.Hostname = strings.ToLower(firstNonEmpty(cfg.Hostname, firstNonEmpty(info.ComputerName, "lab-host")+"."+l.Domain))
	// The lab account: a local account of an IIS host, a domain account
	// of an Exchange host (the second hop needs one: Active Directory
	// does not know local accounts, secondhop.go).
	defUser := "Administrator"
	if p := info.Platform; p == remediate.PlatformExchange || p == remediate.PlatformExchange2003 || cfg.Kerberos != nil {
		defUser = LabNetBIOSDomain + `\Administrator`
	}
	l.User = firstNonEmpty(cfg.User, defUser)
	l.Password = cfg.Password
	if l.Password == "" {
		l.Password = RandomPassword()
	}
	if cfg.PlainHTTP && cfg.SealedHTTP {
		return nil, errors.New("lab: PlainHTTP and SealedHTTP exclude each other")
	}
	l.HTTPS = !cfg.PlainHTTP && !cfg.SealedHTTP
	l.Faults = cfg.WinRM.Faults
	if l.Faults == nil {
		l.Faults = &Faults{}
	}
	host := ip.String()
	ok := false
	defer func() {
		if !ok {
			_ = l.Close()
		}
	}()

	// DNS (audit/dnstest).
	zone := dnstest.MailZone(l.Domain, l.MXHost, host)
	zone.Records = append(zone.Records, fmt.Sprintf("%s. 300 IN A %s", l.Hostname, host))
	if ip.Is6() {
		zone.Records[len(zone.Records)-1] = fmt.Sprintf("%s. 300 IN AAAA %s", l.Hostname, host)
	}
	if l.DNS, err = dnstest.NewServer(zone); err != nil {
		return nil, fmt.Errorf("lab dns: %w", err)
	}
	if err := l.DNS.ListenAndServe(net.JoinHostPort(host, strconv.Itoa(cfg.DNSPort))); err != nil {
		return nil, fmt.Errorf("lab dns: %w", err)
	}
	l.DNSAddr = l.DNS.Addr()

	// WinRM.
	wcfg := cfg.WinRM
	l.HostCommands = append([]string(nil), cfg.HostCommands...)
	if cfg.PrepareHost {
		l.HostCommands = append(l.HostCommands, HostPreparation(l.Host)...)
	}
	if wcfg.Conditions, err = wcfg.Conditions.ApplyAll(l.HostCommands); err != nil {
		return nil, err
	}
	qinfo := hostInfo(l.Host, wcfg.Conditions)
	l.ShellQuotaMB = shellQuotaMB(qinfo, wcfg.Conditions)
	l.ExchangeShellEnds = quotaNote(l.Host, wcfg.Conditions) != ""
	l.PreparedMaxMemoryPerShellMB = PreparedConditions(l.Host).MaxMemoryPerShellMB
	if note := quotaNote(l.Host, wcfg.Conditions); note != "" && cfg.Logf != nil {
		cfg.Logf("%s", note)
	}
	if cfg.Kerberos != nil {
		if wcfg.Kerberos, err = l.kerberos(*cfg.Kerberos); err != nil {
			return nil, err
		}
	}
	wcfg.User, wcfg.Password, wcfg.Faults = l.User, l.Password, l.Faults
	wcfg.AllowUnencrypted = cfg.PlainHTTP
	wcfg.DisableSealing = cfg.PlainHTTP
	if wcfg.Logf == nil {
		wcfg.Logf = cfg.Logf
	}
	if cfg.Logf != nil && wcfg.OnRun == nil {
		logf := cfg.Logf
		wcfg.OnRun = func(r Run) {
			what := r.Script
			if what == "" {
				what = fmt.Sprintf("%.60q", r.CommandLine)
			}
			logf("winrm: ran %s: exit code %d, %d bytes of output", what, r.ExitCode, len(r.Stdout)+len(r.Stderr))
		}
	}
	if wcfg.DNSDomain == "" {
		wcfg.DNSDomain = l.Domain
	}
	l.WinRM = NewWSMan(l.Host, wcfg)
	var tlsCert *Certificate
	if l.HTTPS {
		if tlsCert, err = NewCertificate(l.Hostname, host); err != nil {
			return nil, err
		}
		l.CACertPEM = tlsCert.CAPEM
		l.TLSServerName = l.Hostname
		err = l.WinRM.Listen(net.JoinHostPort(host, strconv.Itoa(cfg.WinRMPort)), &tlsCert.TLS)
	} else {
		err = l.WinRM.Listen(net.JoinHostPort(host, strconv.Itoa(cfg.WinRMPort)), nil)
	}
	if err != nil {
		l.WinRM = nil
		return nil, fmt.Errorf("lab winrm: %w", err)
	}
	l.WinRMURL = l.WinRM.URL()
	l.WinRMHost = host
	l.WinRMPort = l.WinRM.Addr().(*net.TCPAddr).Port

	// SMTP (audit/smtptest with the host deciding every recipient).
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(cfg.SMTPPort)))
	if err != nil {
		return nil, fmt.Errorf("lab smtp: %w", err)
	}
	l.SMTP = smtptest.NewServer(l.smtpPolicy(ip, cfg.Logf))
	l.SMTPAddr = ln.Addr().String()
	l.smtpDone = make(chan struct{})
	go func() {
		defer close(l.smtpDone)
		_ = l.SMTP.Serve(ln)
	}()

	l.stopMu.Lock()
	l.stop = context.AfterFunc(ctx, func() { _ = l.Close() })
	l.stopMu.Unlock()
	ok = true
	return l, nil
}

// smtpPolicy makes the SMTP face follow the host's state: every RCPT is
// decided from Host.LocalDomains and Host.RelayAllowed at that moment, so
// a change made over WinRM shows at the next probe.
func (l *Lab) smtpPolicy(listen netip.Addr, logf func(string, ...any)) smtptest.Policy {
	h := l.Host
	if logf == nil {
		logf = func(string, ...any) {}
	}
	exchange := strings.HasPrefix(l.Platform, "exchange") && l.Platform != "exchange2003"
	banner := l.MXHost + " Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready at  " + time.Now().UTC().Format("Mon, 2 Jan 2006 15:04:05 -0700")
	if exchange {
		banner = l.MXHost + " Microsoft ESMTP MAIL Service ready at " + time.Now().UTC().Format("Mon, 2 Jan 2006 15:04:05 -0700")
	}
	deny := func(rcpt string) string {
		if d, ok := h.(DenyTexter); ok {
			if t := d.DenyText(); strings.Contains(t, "%s") {
				return fmt.Sprintf(t, rcpt)
			} else if t != "" {
				return t
			}
		}
		if exchange {
			return "5.7.54 SMTP; Unable to relay recipient in non-accepted domain"
		}
		return "5.7.1 Unable to relay for " + rcpt // IIS SMTP and Exchange 2003
	}
	decide := l.decideFunc(listen, deny)
	return smtptest.Policy{
		Hostname:     l.MXHost,
		Banner:       banner,
		LocalDomains: h.LocalDomains(),
		Pipelining:   true,
		DenyCode:     550,
		DenyText:     "5.7.1 Unable to relay",
		Auth: func(user, pass string) bool {
			return l.WinRM.userMatches(user, "") && pass == l.Password
		},
		GuestAuth: func() bool {
			g, ok := h.(GuestLogoner)
			return ok && g.GuestLogon()
		},
		Decide: func(s *smtptest.Session, rcpt string) (int, string) {
			code, text := decide(s, rcpt)
			if code != 0 {
				auth := ""
				if s.Authenticated {
					auth = " (authenticated)"
				}
				logf("smtp: %s%s MAIL FROM:<%s> RCPT TO:<%s>: %d %s", s.RemoteAddr, auth, s.MailFrom, rcpt, code, text)
			}
			return code, text
		},
	}
}

// decideFunc is the SMTP face's RCPT decision.
func (l *Lab) decideFunc(listen netip.Addr, deny func(string) string) func(*smtptest.Session, string) (int, string) {
	h := l.Host
	return func(s *smtptest.Session, rcpt string) (int, string) {
		at := strings.LastIndex(rcpt, "@")
		if at < 0 {
			return 0, "" // postmaster or a syntax error: the default rules
		}
		domain := strings.ToLower(strings.TrimSuffix(rcpt[at+1:], "."))
		if lit, isLit := strings.CutPrefix(domain, "["); isLit {
			lit = strings.TrimPrefix(strings.TrimSuffix(lit, "]"), "ipv6:")
			if a, err := netip.ParseAddr(lit); err == nil && a.Unmap() == listen.Unmap() {
				return 250, "2.1.5 " + rcpt // our own address literal: local (RFC 5321 §4.1.3)
			}
		}
		for _, d := range append(h.LocalDomains(), l.Domain) {
			if strings.EqualFold(strings.TrimSuffix(d, "."), domain) {
				return 250, "2.1.5 " + rcpt
			}
		}
		if h.RelayAllowed(s.RemoteAddr.Unmap(), s.Authenticated, domain) {
			return 250, "2.1.5 " + rcpt
		}
		return 550, deny(rcpt)
	}
}

// Close stops every service and waits for their goroutines.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.stopMu.Lock()
		stop := l.stop
		l.stopMu.Unlock()
		if stop != nil {
			stop()
		}
		var errs []error
		if l.SMTP != nil {
			errs = append(errs, l.SMTP.Close())
			if l.smtpDone != nil {
				<-l.smtpDone
			}
		}
		if l.WinRM != nil {
			errs = append(errs, l.WinRM.Close())
		}
		if l.DNS != nil {
			errs = append(errs, l.DNS.Close())
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// RandomPassword returns a 20-character lab password from crypto/rand,
// with upper and lower case letters and digits (it satisfies Windows'
// complexity rule).
func RandomPassword() string {
	const (
		upper  = "ABCDEFGHJKLMNPQRSTUVWXYZ"
		lower  = "abcdefghijkmnopqrstuvwxyz"
		digits = "23456789"
	)
	pick := func(set string) byte {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		if err != nil {
			panic(err)
		}
		return set[n.Int64()]
	}
	all := upper + lower + digits
	b := []byte{pick(upper), pick(lower), pick(digits)}
	for len(b) < 20 {
		b = append(b, pick(all))
	}
	return string(b)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
