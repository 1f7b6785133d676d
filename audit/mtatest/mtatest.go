package mtatest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/needs"
)

// Kind is an MTA implementation.
type Kind string

const (
	Postfix   Kind = "postfix"
	Exim      Kind = "exim"
	OpenSMTPD Kind = "opensmtpd"
)

// Kinds lists every kind the package can start.
var Kinds = []Kind{Postfix, Exim, OpenSMTPD}

// Mode is one relay configuration. Closed modes refuse to relay for
// clients outside the trusted network; each open mode is one real-world
// mistake, named after it. Modes lists which kinds support which modes.
type Mode string

const (
	// Closed is the MTA's stock relay policy. Postfix: the default
	// smtpd_relay_restrictions (permit_mynetworks,
	// permit_sasl_authenticated, defer_unauth_destination), which answers
	// 454 4.7.1 "Relay access denied". Exim: the Debian-style RCPT ACL,
	// which answers 550 "relay not permitted". OpenSMTPD: relaying only
	// "from src <trusted>", 550 "Invalid recipient" otherwise.
	Closed Mode = "closed"
	// ClosedReject is Postfix with reject_unauth_destination: 554 5.7.1.
	ClosedReject Mode = "closed-reject"
	// OpenMynetworks trusts all of 127.0.0.0/8, the prober's network
	// included (Postfix mynetworks, Exim relay_from_hosts, OpenSMTPD's
	// trusted table): the trusted network that is too wide, as when a
	// proxy or NAT makes outside clients look internal (docs/relay-probes.md
	// §6).
	OpenMynetworks Mode = "open-mynetworks"
	// OpenClientAccess is Postfix relaying for every client:
	// check_client_access static:OK before reject_unauth_destination.
	OpenClientAccess Mode = "open-client-access"
	// OpenNullSender is Postfix relaying for the null sender only:
	// check_sender_access inline:{<>=OK}. Only the "<>" test finds it.
	OpenNullSender Mode = "open-null-sender"
	// OpenLocalSender trusts the MAIL FROM domain: Postfix
	// check_sender_access inline:{<domain>=OK} (sendmail's
	// relay_local_from in Postfix form). Spoofed local senders relay.
	OpenLocalSender Mode = "open-local-sender"
	// OpenRelayToDomains is Exim with "domainlist relay_to_domains = *",
	// read as "relay for everyone" when it means "relay to any domain".
	//
	// There is no percent-hack mode: Exim applies percent_hack_domains
	// before the RCPT ACL checks the domain, and Postfix's resolver
	// applies allow_percent_hack before reject_unauth_destination, so
	// "user%victim@target" is refused like "user@victim" by both
	// (TestModes checks it).
	OpenRelayToDomains Mode = "open-relay-to-domains"
	// OpenAfterSTARTTLS is Exim trusting every encrypted session
	// ("accept encrypted = *" before the relay check): closed in plain
	// text, open after STARTTLS (docs/relay-probes.md §8 test 38). It implies
	// Config.TLS.
	OpenAfterSTARTTLS Mode = "open-after-starttls"
	// BounceAfterAccept is Postfix accepting every recipient
	// (check_client_access static:OK, no recipient validation) and
	// relaying nothing: mail for other domains goes to the error
	// transport, which bounces it to the sender, and null-sender mail,
	// which cannot bounce, is discarded. Only Postfix's own bounces
	// leave, to the relay host. Not open: an accept-then-bounce server, a
	// backscatter source (docs/relay-probes.md §8 "A bounce ... →
	// CLOSED(accept-then-bounce)"), which only a delivery check tells
	// from an open relay.
	BounceAfterAccept Mode = "bounce-after-accept"
	// OpenFromAny is OpenSMTPD with "match from any for any action
	// relay": "from any" read as "for any client of mine".
	OpenFromAny Mode = "open-from-any"
)

// Open reports whether the mode relays for the prober.
func (m Mode) Open() bool { return strings.HasPrefix(string(m), "open-") }

// Closed reports whether the mode refuses the prober's relay attempts in
// the SMTP dialogue (BounceAfterAccept is neither open nor closed).
func (m Mode) Closed() bool { return strings.HasPrefix(string(m), "closed") }

// Modes returns the modes a kind supports, closed modes first.
func Modes(k Kind) []Mode {
	switch k {
	case Postfix:
		return []Mode{Closed, ClosedReject, OpenMynetworks, OpenClientAccess, OpenNullSender, OpenLocalSender, BounceAfterAccept}
	case Exim:
		return []Mode{Closed, OpenMynetworks, OpenRelayToDomains, OpenAfterSTARTTLS}
	case OpenSMTPD:
		return []Mode{Closed, OpenMynetworks, OpenFromAny}
	}
	return nil
}

// Defaults for Config.
const (
	DefaultDomain = "target.test"
	// TrustedAddr is the only address closed instances trust. The prober
	// never uses it.
	TrustedAddr = "127.0.0.254"
)

// ErrUnavailable means the MTA cannot be started here: not root, not
// Linux, or its binaries are missing.
var ErrUnavailable = errors.New("mta not available")

// Config says which MTA to start and how.
type Config struct {
	Kind Kind
	Mode Mode // default Closed
	// RelayHost receives every message the MTA sends out: relayed mail
	// and bounces. It must be a loopback address (a Sink or the audit
	// catcher); Start refuses anything else.
	RelayHost netip.AddrPort
	// Domain is the mail domain the MTA is final destination for, with
	// postmaster as its only mailbox (discarded). Default DefaultDomain.
	Domain string
	// Hostname is the MTA's own name (greeting, Received). Default
	// "mx." + Domain.
	Hostname string
	// Listen, when set, is the address and port to listen on: a
	// 127.0.0.x address (x ≥ 10, not TrustedAddr) or, for Postfix, ::1.
	// Default: a free port on a 127.0.0.x of its own. DualStack finds a
	// pair for one MX name served on both families.
	Listen netip.AddrPort
	// TLS offers STARTTLS (RFC 3207) with a self-signed certificate for
	// Hostname, generated at start. Not for OpenSMTPD (see
	// prepareOpenSMTPD).
	TLS bool
	// StartTimeout bounds the wait for the first 220 greeting; default
	// 30 s.
	StartTimeout time.Duration
	// StockErrorLimits (Postfix only) keeps smtpd_error_sleep_time,
	// smtpd_soft_error_limit and smtpd_hard_error_limit at Postfix's
	// defaults (1 s, 10, 20): after 10 refusals every reply is a second
	// late, after 20 the server hangs up. Default: no sleep, limits 100
	// and 200, so most tests see relay decisions only.
	StockErrorLimits bool
	// Auth (Exim only) offers AUTH PLAIN and LOGIN for the one account
	// AuthUser/AuthPassword, and lets authenticated clients relay, as a
	// submission-capable MX does.
	Auth bool
	// PolicyService (Postfix only), when set, is a Postfix policy
	// delegation server (SMTPD_POLICY_README) asked after the relay
	// decision, as a greylisting server is deployed:
	// smtpd_recipient_restrictions = check_policy_service inet:ADDR.
	// StartGreylistPolicy is one; Debian's postgrey is another.
	PolicyService netip.AddrPort
	// AcceptAnyLocal accepts any local part at every local name and
	// still refuses to relay: Postfix with local_recipient_maps empty (a
	// catch-all, as IIS SMTP and luser_relay servers are), Exim with an
	// accept-all redirect router.
	AcceptAnyLocal bool
	// DiscardOutbound (Postfix only) discards every message for a remote
	// recipient after accepting it (default_transport = discard): with an
	// open mode, a server that accepts everything and delivers nothing.
	DiscardOutbound bool
}

// The account of an MTA started with Config.Auth.
const (
	AuthUser     = "relaylock"
	AuthPassword = "mtatest-account-password"
)

// Instance is a running MTA.
type Instance struct {
	Kind Kind
	Mode Mode
	Addr netip.AddrPort // where it listens: 127.0.0.x:port, or [::1]:port

	Domain   string
	Hostname string
	// Trusted is the network the MTA relays for without further checks.
	Trusted netip.Prefix
	TLS     bool   // STARTTLS offered
	Dir     string // configuration, queue and logs

	cmd       *exec.Cmd
	stop      io.Closer // the guard's stdin: closing it stops the MTA
	logs      []string  // log files, in Log order
	exited    chan struct{}
	waitErr   error
	closeOnce sync.Once
	closeErr  error
}

// Available reports whether kind can be started here; the error wraps
// ErrUnavailable and says why not.
func Available(kind Kind) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("%w: %s needs Linux", ErrUnavailable, kind)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: starting %s needs root", ErrUnavailable, kind)
	}
	switch kind {
	case Postfix:
		if _, err := postfixMaster(); err != nil {
			return err
		}
	case Exim:
		if _, err := eximBinary(); err != nil {
			return err
		}
	case OpenSMTPD:
		if _, err := smtpdBinary(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrUnavailable, kind)
	}
	return nil
}

// Require skips the test when kind cannot be started here, and fails it
// instead when CI is set: CI must never skip the real-MTA tests.
func Require(t testing.TB, kind Kind) {
	t.Helper()
	err := Available(kind)
	if err == nil {
		return
	}
	needs.Missing(t, string(kind), fmt.Sprintf("%v; run .ci/setup.d/20-mta.sh as root to enable the real-MTA tests", err))
}

// StartT starts an instance for a test (see Require) and stops it in
// t.Cleanup; when the test failed, the MTA's log is written to the test
// log first.
func StartT(t testing.TB, cfg Config) *Instance {
	t.Helper()
	Require(t, cfg.Kind)
	inst, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s %s log:\n%s", inst.Kind, inst.Mode, tail(inst.Log(), 16<<10))
		}
		if err := inst.Close(); err != nil {
			t.Errorf("stop %s: %v", inst.Kind, err)
		}
	})
	return inst
}

// Start configures and starts an MTA and waits for its greeting. The
// caller must Close it.
func Start(ctx context.Context, cfg Config) (*Instance, error) {
	if cfg.Mode == "" {
		cfg.Mode = Closed
	}
	supported := false
	for _, m := range Modes(cfg.Kind) {
		supported = supported || m == cfg.Mode
	}
	if !supported {
		return nil, fmt.Errorf("mtatest: %s has no mode %q", cfg.Kind, cfg.Mode)
	}
	if cfg.TLS && cfg.Kind == OpenSMTPD {
		return nil, fmt.Errorf("mtatest: opensmtpd: no TLS: Debian 12's OpenSMTPD 6.8 fails TLS handshakes with OpenSSL 3")
	}
	// Network safety: outbound mail never leaves the machine.
	if !cfg.RelayHost.IsValid() || !cfg.RelayHost.Addr().IsLoopback() || cfg.RelayHost.Port() == 0 {
		return nil, fmt.Errorf("mtatest: relay host %q is not a loopback address and port", cfg.RelayHost)
	}
	if err := Available(cfg.Kind); err != nil {
		return nil, err
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "mx." + cfg.Domain
	}
	// Both go into configuration files verbatim.
	for _, name := range []string{cfg.Domain, cfg.Hostname} {
		if strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" || !strings.Contains(name, ".") {
			return nil, fmt.Errorf("mtatest: %q is not a lower-case domain name", name)
		}
	}
	if cfg.Mode == OpenAfterSTARTTLS {
		cfg.TLS = true
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if a := cfg.Listen.Addr(); cfg.Listen.IsValid() {
		ok := a.Is4() && a.As4()[0] == 127 && a.As4()[3] >= 10 && a.String() != TrustedAddr && a.As4()[1] == 0 && a.As4()[2] == 0
		if a == netip.IPv6Loopback() {
			ok = cfg.Kind == Postfix
		}
		if !ok || cfg.Listen.Port() == 0 {
			return nil, fmt.Errorf("mtatest: %s cannot listen on %s (127.0.0.x with x ≥ 10, or ::1 for Postfix, and a port)", cfg.Kind, cfg.Listen)
		}
		return start(ctx, cfg)
	}
	// Another process may take the port between freeAddr and the MTA's
	// bind; then start again on a new address.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var inst *Instance
		inst, err = start(ctx, cfg)
		if err == nil {
			return inst, nil
		}
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	return nil, err
}

var errAddrInUse = errors.New("address in use")

func start(ctx context.Context, cfg Config) (*Instance, error) {
	addr, err := cfg.Listen, error(nil)
	if !addr.IsValid() {
		if addr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "relaylock-"+string(cfg.Kind)+"-")
	if err != nil {
		return nil, fmt.Errorf("mtatest: %w", err)
	}
	// The MTA's unprivileged processes must reach their queue inside.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mtatest: %w", err)
	}
	inst := &Instance{
		Kind: cfg.Kind, Mode: cfg.Mode, Addr: addr, Domain: cfg.Domain, Hostname: cfg.Hostname,
		Trusted: netip.MustParsePrefix(TrustedAddr + "/32"), TLS: cfg.TLS, Dir: dir, exited: make(chan struct{}),
	}
	if cfg.Mode == OpenMynetworks {
		inst.Trusted = netip.MustParsePrefix("127.0.0.0/8")
	}
	switch cfg.Kind {
	case Postfix:
		err = inst.preparePostfix(cfg)
	case Exim:
		err = inst.prepareExim(cfg)
	case OpenSMTPD:
		err = inst.prepareOpenSMTPD(cfg)
	}
	if err == nil {
		err = inst.run()
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
		err = inst.waitReady(ctx)
		cancel()
	}
	if err != nil {
		log := inst.Log()
		inst.Close()
		if strings.Contains(log, "in use") {
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		}
		return nil, fmt.Errorf("mtatest: start %s %s on %s: %w\n%s", cfg.Kind, cfg.Mode, addr, err, tail(log, 4<<10))
	}
	return inst, nil
}

// run starts the prepared command under guard (proc_linux.go), so that
// it is stopped even if the test binary dies.
func (i *Instance) run() error {
	out, err := os.OpenFile(filepath.Join(i.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	i.logs = append(i.logs, out.Name())
	i.cmd = guard(i.cmd)
	i.cmd.Stdout, i.cmd.Stderr = out, out
	stop, err := i.cmd.StdinPipe()
	if err != nil {
		out.Close()
		return err
	}
	if err := i.cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("run %s: %w", i.cmd.Path, err)
	}
	i.stop = stop
	go func() {
		i.waitErr = i.cmd.Wait()
		out.Close()
		close(i.exited)
	}()
	return nil
}

// waitReady polls until the MTA greets with 220.
func (i *Instance) waitReady(ctx context.Context) error {
	for {
		select {
		case <-i.exited:
			return fmt.Errorf("exited before it greeted: %v", i.waitErr)
		default:
		}
		if line, err := greeting(ctx, i.Addr); err == nil {
			if !strings.HasPrefix(line, "220") {
				return fmt.Errorf("greeting %q", line)
			}
			// A greeting from another process that holds the port
			// would come with ours failing to bind and exiting.
			select {
			case <-i.exited:
				return fmt.Errorf("exited after a greeting on %s: %v", i.Addr, i.waitErr)
			case <-time.After(100 * time.Millisecond):
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no greeting on %s: %w", i.Addr, ctx.Err())
		case <-i.exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func greeting(ctx context.Context, addr netip.AddrPort) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	fmt.Fprintf(c, "QUIT\r\n")
	return strings.TrimRight(line, "\r\n"), nil
}

// Close stops the MTA and every process it started, and removes its
// directory.
func (i *Instance) Close() error {
	i.closeOnce.Do(func() {
		if i.stop != nil {
			i.stop.Close()
			select {
			case <-i.exited:
			case <-time.After(10 * time.Second):
				signalGroup(i.cmd)
				<-i.exited
			}
			waitGroupGone(i.cmd)
			// Processes that left the group (Exim's delivery
			// processes call setsid) still name the directory.
			killNaming(i.Dir)
		}
		for try := 0; try < 5; try++ {
			if i.closeErr = os.RemoveAll(i.Dir); i.closeErr == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return i.closeErr
}

// Log returns the MTA's logs, oldest file first.
func (i *Instance) Log() string {
	var b strings.Builder
	for _, f := range i.logs {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		fmt.Fprintf(&b, "== %s\n%s", filepath.Base(f), data)
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

var addrSeq atomic.Uint32

// DualStack returns a 127.0.0.x address and ::1 with one port that is
// free on both, for Config.Listen of two instances that serve one MX
// name's A and AAAA records (the "open only over IPv6" case,
// docs/relay-probes.md §6).
func DualStack() (v4, v6 netip.AddrPort, err error) {
	for try := 0; try < 20; try++ {
		a, err := freeAddr()
		if err != nil {
			return v4, v6, err
		}
		ln, err := net.Listen("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), a.Port()).String())
		if err != nil {
			continue
		}
		ln.Close()
		return a, netip.AddrPortFrom(netip.IPv6Loopback(), a.Port()), nil
	}
	return v4, v6, fmt.Errorf("mtatest: no port free on both 127.0.0.x and ::1")
}

// freeAddr picks a loopback address 127.0.0.x (10 ≤ x < 250, never the
// prober's 127.0.0.1 nor TrustedAddr) and a port free on it. Linux routes
// all of 127.0.0.0/8 to lo, so any such address can be bound.
func freeAddr() (netip.AddrPort, error) {
	n := addrSeq.Add(1)
	x := 10 + (uint32(os.Getpid())*7+n)%240
	a := netip.AddrFrom4([4]byte{127, 0, 0, byte(x)})
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("mtatest: find a free port on %s: %w", a, err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String()), nil
}
