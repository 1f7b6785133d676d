package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/smtp"
	"net/textproto"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"
	"github.com/miekg/dns"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// relayHost is a test-only Host whose relay state the test changes.
type relayHost struct {
	echoHost
	mu        sync.Mutex
	open      bool
	allowAuth bool
	allow     []netip.Addr
}

func (h *relayHost) RelayAllowed(client netip.Addr, authenticated bool, _ string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.open || (authenticated && h.allowAuth) || slices.Contains(h.allow, client)
}

func (h *relayHost) set(f func(h *relayHost)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

type denyHost struct{ *relayHost }

func (d denyHost) DenyText() string { return "5.7.1 custom refusal for %s" }

func startLab(t *testing.T, cfg Config) *Lab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// rcpt runs one SMTP transaction from source (a 127.x address: a test can
// probe from another loopback address with a net.Dialer LocalAddr) and
// returns the RCPT reply code and text.
func rcpt(t *testing.T, l *Lab, source string, auth smtp.Auth, to string) (int, string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	conn, err := d.Dial("tcp", l.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("prober.test"); err != nil {
		t.Fatal(err)
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return 0, "auth: " + err.Error()
		}
	}
	if err := c.Mail("probe@prober.test"); err != nil {
		t.Fatal(err)
	}
	err = c.Rcpt(to)
	_ = c.Quit()
	if err == nil {
		return 250, ""
	}
	var tp *textproto.Error
	if !errors.As(err, &tp) {
		t.Fatal(err)
	}
	return tp.Code, tp.Msg
}

func TestLabSMTPFollowsHostState(t *testing.T) {
	h := &relayHost{open: true}
	l := startLab(t, Config{Host: h, Password: "pw-Lab-1"})
	if code, _ := rcpt(t, l, "", nil, "victim@elsewhere.test"); code != 250 {
		t.Fatalf("open host refused relay: %d", code)
	}
	h.set(func(h *relayHost) { h.open = false })
	code, msg := rcpt(t, l, "", nil, "victim@elsewhere.test")
	if code != 550 || msg != "5.7.1 Unable to relay for victim@elsewhere.test" {
		t.Fatalf("closed host: %d %q", code, msg)
	}
	if code, _ := rcpt(t, l, "", nil, "postmaster@lab.relaylock.test"); code != 250 {
		t.Fatalf("local recipient refused: %d", code)
	}
	// Allow list: only 127.0.0.2 may relay.
	requireLoopback127(t)
	h.set(func(h *relayHost) { h.allow = []netip.Addr{netip.MustParseAddr("127.0.0.2")} })
	if code, _ := rcpt(t, l, "127.0.0.2", nil, "x@elsewhere.test"); code != 250 {
		t.Fatalf("allowed source refused: %d", code)
	}
	if code, _ := rcpt(t, l, "127.0.0.3", nil, "x@elsewhere.test"); code != 550 {
		t.Fatalf("other source relayed: %d", code)
	}
	// Authenticated relay, and a wrong password.
	h.set(func(h *relayHost) { h.allowAuth = true })
	if code, msg := rcpt(t, l, "", smtp.PlainAuth("", "administrator", "pw-Lab-1", "localhost"), "x@elsewhere.test"); code != 250 {
		t.Fatalf("authenticated relay: %d %s", code, msg)
	}
	if code, msg := rcpt(t, l, "", smtp.PlainAuth("", "Administrator", "wrong", "localhost"), "x@elsewhere.test"); !strings.HasPrefix(msg, "auth:") {
		t.Fatalf("wrong SMTP password accepted: %d %s", code, msg)
	}
}

func TestLabDenyText(t *testing.T) {
	l := startLab(t, Config{Host: denyHost{&relayHost{}}})
	if code, msg := rcpt(t, l, "", nil, "a@b.test"); code != 550 || msg != "5.7.1 custom refusal for a@b.test" {
		t.Fatalf("%d %q", code, msg)
	}
}

func TestLabDNS(t *testing.T) {
	l := startLab(t, Config{Host: &relayHost{}, Domain: "Contoso.Test."})
	c := dns.Client{Timeout: 2 * time.Second}
	ask := func(name string, typ uint16) []dns.RR {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), typ)
		r, _, err := c.Exchange(m, l.DNSAddr)
		if err != nil {
			t.Fatal(err)
		}
		return r.Answer
	}
	mx := ask("contoso.test", dns.TypeMX)
	if len(mx) != 1 || mx[0].(*dns.MX).Mx != "mail.contoso.test." {
		t.Fatalf("MX %v", mx)
	}
	for _, name := range []string{"mail.contoso.test", l.Hostname} {
		a := ask(name, dns.TypeA)
		if len(a) != 1 || !a[0].(*dns.A).A.Equal(net.ParseIP("127.0.0.1")) {
			t.Fatalf("A %s: %v", name, a)
		}
	}
}

// TestLabWinRM: the assembled lab's WinRM face with its CA, verified
// against the host name in the certificate.
func TestLabWinRM(t *testing.T) {
	l := startLab(t, Config{Host: &relayHost{}})
	if !strings.HasPrefix(l.WinRMURL, "https://127.0.0.1:") || len(l.CACertPEM) == 0 || len(l.Password) != 20 {
		t.Fatalf("lab %+v", l)
	}
	p := *winrm.DefaultParameters
	p.TransportDecorator = func() winrm.Transporter { return &winrm.ClientNTLM{} }
	ep := &winrm.Endpoint{Host: l.WinRMHost, Port: l.WinRMPort, HTTPS: true, CACert: l.CACertPEM, TLSServerName: l.Hostname, Timeout: 30 * time.Second}
	c, err := winrm.NewClientWithParameters(ep, l.User, l.Password, &p)
	if err != nil {
		t.Fatal(err)
	}
	out, _, code, err := c.RunCmdWithContext(context.Background(), "hostname")
	if err != nil || code != 0 || out != "EX1\r\n" {
		t.Fatalf("%q %d %v", out, code, err)
	}
	// A wrong CA fails verification.
	other, _ := NewCertificate("x")
	ep.CACert = other.CAPEM
	c, _ = winrm.NewClientWithParameters(ep, l.User, l.Password, &p)
	if _, _, _, err := c.RunCmdWithContext(context.Background(), "hostname"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("wrong CA: %v", err)
	}
}

func TestLabRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0", "192.0.2.1", "::", "example.com"} {
		if _, err := Start(context.Background(), Config{Host: &relayHost{}, Listen: addr}); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("Listen %q: %v", addr, err)
		}
	}
}

func TestLabStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	l, err := Start(ctx, Config{Host: &relayHost{}})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", l.SMTPAddr, 200*time.Millisecond); err != nil {
			return
		} else {
			c.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("lab still listening after its context ended")
}

// TestPlatforms: NewHost knows every name Platforms lists (whatever the
// case), each name gives a host of a platform remediate has a driver for,
// every remediate platform has at least one lab host, and an unknown name
// is a clear error.
func TestPlatforms(t *testing.T) {
	names := Platforms()
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Fatalf("Platforms() = %v, want sorted and unique", names)
	}
	covered := map[remediate.Platform]bool{}
	for _, name := range names {
		h, err := NewHost(strings.ToUpper(name))
		if err != nil || h == nil {
			t.Fatalf("NewHost(%q): %v", name, err)
		}
		p := h.HostInfo().Platform
		if _, err := remediate.DriverFor(p); err != nil {
			t.Errorf("%s: host platform %q: %v", name, p, err)
		}
		covered[p] = true
	}
	for _, p := range remediate.Platforms() {
		if !covered[p] {
			t.Errorf("no lab platform simulates %s", p)
		}
	}
	for _, bad := range []string{"exchange1999", "", "iis-smtp"} {
		_, err := NewHost(bad)
		if !errors.Is(err, ErrUnknownPlatform) || !strings.Contains(err.Error(), strconv.Quote(bad)) || !strings.Contains(err.Error(), "exchange2016") {
			t.Errorf("NewHost(%q) = %v, want ErrUnknownPlatform naming it and the known ones", bad, err)
		}
	}
	// A test's own host: the lab reports no platform name for it.
	l := startLab(t, Config{Platform: "ignored", Host: &echoHost{}})
	if l.Platform != "" {
		t.Fatal(l.Platform)
	}
}

// TestEveryPlatformAnswersDetect: Dispatch answers relaylock's detect
// script for every registered platform from its HostInfo.
func TestEveryPlatformAnswersDetect(t *testing.T) {
	for _, name := range Platforms() {
		t.Run(name, func(t *testing.T) {
			h, err := NewHost(name)
			if err != nil {
				t.Fatal(err)
			}
			run, err := (&DirectRunner{Host: h}).Run(context.Background(), remediate.DetectScript, nil)
			if err != nil {
				t.Fatal(err)
			}
			if run.ExitCode != 0 || len(run.Output.Records) == 0 {
				t.Fatalf("detect: %+v", run)
			}
			want := remediate.EncodeHostInfo(h.HostInfo())
			if got := run.Output.Records; len(got) != len(want) || got[0].Str("computer") != h.HostInfo().ComputerName {
				t.Fatalf("records %+v, want %+v", got, want)
			}
			if _, ok := run.Output.First(psframe.ErrorRecord); ok {
				t.Fatal("error record from detect")
			}
		})
	}
}

// TestLabDomain: the lab's domain defaults to the host's own, and the
// SMTP face always accepts mail for the domain the lab's DNS points at it.
func TestLabDomain(t *testing.T) {
	h := &relayHost{}
	l := startLab(t, Config{Host: h})
	if l.Domain != testInfo.Domain || l.MXHost != "mail."+testInfo.Domain || l.Hostname != "ex1."+testInfo.Domain {
		t.Fatalf("domain %q mx %q hostname %q", l.Domain, l.MXHost, l.Hostname)
	}
	l2 := startLab(t, Config{Host: h, Domain: "contoso.test"})
	if code, msg := rcpt(t, l2, "", nil, "postmaster@contoso.test"); code != 250 {
		t.Fatalf("lab domain refused: %d %s", code, msg)
	}
	if code, _ := rcpt(t, l2, "", nil, "postmaster@fabrikam.test"); code != 550 {
		t.Fatalf("foreign domain relayed by a closed host: %d", code)
	}
}

func TestLabLog(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	l := startLab(t, Config{Host: &relayHost{}, Password: "Log-Pw-123", Logf: func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(f, a...))
	}})
	rcpt(t, l, "", nil, "x@elsewhere.test")
	p := *winrm.DefaultParameters
	c, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: l.WinRMHost, Port: l.WinRMPort, HTTPS: true, CACert: l.CACertPEM, Timeout: 30 * time.Second}, l.User, l.Password, &p)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := c.RunCmdWithContext(context.Background(), "hostname"); err != nil {
		t.Fatal(err)
	}
	// A client that does not trust the lab CA aborts the TLS handshake: logged.
	c, _ = winrm.NewClientWithParameters(&winrm.Endpoint{Host: l.WinRMHost, Port: l.WinRMPort, HTTPS: true, Timeout: 30 * time.Second}, l.User, l.Password, &p)
	if _, _, _, err := c.RunCmdWithContext(context.Background(), "hostname"); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
	logged := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(lines, "\n")
	}
	// The server logs the aborted handshake asynchronously.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logged(), "winrm: http: TLS handshake error") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	all := logged()
	if !strings.Contains(all, "winrm: http: TLS handshake error") {
		t.Errorf("no TLS handshake error logged:\n%s", all)
	}
	if !strings.Contains(all, "smtp: 127.0.0.1 MAIL FROM:<probe@prober.test> RCPT TO:<x@elsewhere.test>: 550 5.7.1 Unable to relay") ||
		!strings.Contains(all, `winrm: ran "hostname": exit code 0`) || strings.Contains(all, "Log-Pw-123") {
		t.Fatalf("log:\n%s", all)
	}
}

func TestLabStartWithDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l, err := Start(ctx, Config{Host: &relayHost{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLabOtherLoopback: the lab can listen on another 127/8 address, and
// its certificate covers that address.
func TestLabOtherLoopback(t *testing.T) {
	requireLoopback127(t)
	l := startLab(t, Config{Host: &relayHost{}, Listen: "127.0.0.2"})
	if !strings.HasPrefix(l.SMTPAddr, "127.0.0.2:") || !strings.HasPrefix(l.DNSAddr, "127.0.0.2:") || l.WinRMHost != "127.0.0.2" {
		t.Fatalf("%s %s %s", l.SMTPAddr, l.DNSAddr, l.WinRMHost)
	}
	p := *winrm.DefaultParameters
	c, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: l.WinRMHost, Port: l.WinRMPort, HTTPS: true, CACert: l.CACertPEM, Timeout: 30 * time.Second}, l.User, l.Password, &p)
	if err != nil {
		t.Fatal(err)
	}
	if out, _, code, err := c.RunCmdWithContext(context.Background(), "echo ok"); err != nil || code != 0 || out != "ok\r\n" {
		t.Fatalf("%q %d %v", out, code, err)
	}
}

// requireLoopback127 skips where only 127.0.0.1 is configured (macOS's lo0);
// Linux routes all of 127.0.0.0/8 to loopback.
func requireLoopback127(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs 127.0.0.2 and 127.0.0.3 on loopback (Linux)")
	}
}
