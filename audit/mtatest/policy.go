package mtatest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// GreylistPolicy is a greylisting Postfix policy delegation server
// (Postfix SMTPD_POLICY_README: name=value lines ending with an empty
// line; the answer is "action=..." and an empty line). The first
// attempt of a (client address, sender, recipient) triplet is deferred
// with Action; a retry at least Delay after the first attempt passes
// (DUNNO). It answers the way milter-greylist does by default:
// "451 4.7.1 Greylisting in action, please come back later", with no
// delay in the text.
type GreylistPolicy struct {
	Addr netip.AddrPort
	// Action is the access(5) action for a greylisted triplet.
	Action string
	// Delay is how old a triplet must be to pass.
	Delay time.Duration
	// ExemptPostmaster passes mail to postmaster at once (RFC 5321
	// §4.5.1), as greylisting setups commonly whitelist it.
	ExemptPostmaster bool

	ln   net.Listener
	mu   sync.Mutex
	seen map[string]time.Time
	// Deferred counts the deferrals, by recipient.
	deferred map[string]int
}

// MilterGreylistAction is milter-greylist's default answer.
const MilterGreylistAction = "451 4.7.1 Greylisting in action, please come back later"

// StartGreylistPolicy starts a greylisting policy server on a free
// loopback port until the test ends.
func StartGreylistPolicy(t testing.TB, action string, delay time.Duration, exemptPostmaster bool) *GreylistPolicy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &GreylistPolicy{Action: action, Delay: delay, ExemptPostmaster: exemptPostmaster, ln: ln,
		seen: map[string]time.Time{}, deferred: map[string]int{}}
	g.Addr = netip.MustParseAddrPort(ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.serve(ctx, c)
			}()
		}
	}()
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	return g
}

// Deferrals returns how many times each recipient was deferred.
func (g *GreylistPolicy) Deferrals() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]int{}
	for k, v := range g.deferred {
		out[k] = v
	}
	return out
}

func (g *GreylistPolicy) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	go func() { <-ctx.Done(); c.Close() }()
	r := bufio.NewReader(c)
	attrs := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			k, v, _ := strings.Cut(line, "=")
			attrs[k] = v
			continue
		}
		action := g.decide(attrs)
		if _, err := fmt.Fprintf(c, "action=%s\n\n", action); err != nil {
			return
		}
		attrs = map[string]string{}
	}
}

func (g *GreylistPolicy) decide(a map[string]string) string {
	if a["request"] != "smtpd_access_policy" || a["protocol_state"] != "RCPT" {
		return "DUNNO"
	}
	rcpt := strings.ToLower(a["recipient"])
	if g.ExemptPostmaster && (rcpt == "postmaster" || strings.HasPrefix(rcpt, "postmaster@")) {
		return "DUNNO"
	}
	key := a["client_address"] + "/" + strings.ToLower(a["sender"]) + "/" + rcpt
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	first, ok := g.seen[key]
	if !ok {
		g.seen[key] = now
	}
	if ok && now.Sub(first) >= g.Delay {
		return "DUNNO"
	}
	g.deferred[rcpt]++
	return g.Action
}

// StartPostgrey runs Debian's postgrey (a real Postfix policy server) on
// a free loopback port with the given delay, until the test ends. With
// exemptPostmaster false its recipient whitelist is empty (Debian's
// default whitelists postmaster@ and abuse@). ErrUnavailable when
// postgrey is not installed.
func StartPostgrey(t testing.TB, delay time.Duration, exemptPostmaster bool) (netip.AddrPort, error) {
	t.Helper()
	bin, err := exec.LookPath("postgrey")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/postgrey"); serr != nil {
			return netip.AddrPort{}, fmt.Errorf("%w: postgrey: %v", ErrUnavailable, err)
		}
		bin = "/usr/sbin/postgrey"
	}
	pg, err := user.Lookup("postgrey")
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: postgrey user: %v", ErrUnavailable, err)
	}
	// postgrey drops to its own user: its directory must be reachable,
	// and t.TempDir's parent is private to root.
	dir, err := os.MkdirTemp("", "relaylock-postgrey-")
	if err != nil {
		return netip.AddrPort{}, err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	db := filepath.Join(dir, "db")
	if err := os.Mkdir(db, 0o700); err != nil {
		return netip.AddrPort{}, err
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	if err := os.Chown(db, uid, gid); err != nil {
		return netip.AddrPort{}, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return netip.AddrPort{}, err
	}
	rcpts := filepath.Join(dir, "whitelist_recipients")
	wl := ""
	if exemptPostmaster {
		wl = "postmaster@\n"
	}
	clients := filepath.Join(dir, "whitelist_clients")
	for f, body := range map[string]string{rcpts: wl, clients: ""} {
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			return netip.AddrPort{}, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return netip.AddrPort{}, err
	}
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--inet="+addr.String(), fmt.Sprintf("--delay=%d", int(delay.Seconds())),
		"--dbdir="+db, "--pidfile="+filepath.Join(dir, "pid"), "--user=postgrey", "--group="+groupName(gid),
		"--whitelist-recipients="+rcpts, "--whitelist-clients="+clients, "--max-age=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		return netip.AddrPort{}, fmt.Errorf("%w: postgrey: %v", ErrUnavailable, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("postgrey output:\n%s", tail(out.String(), 4<<10))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err == nil {
			c.Close()
			return addr, nil
		}
		if time.Now().After(deadline) {
			return netip.AddrPort{}, fmt.Errorf("postgrey did not listen on %s: %v (%v)\n%s", addr, err, cmd.Args, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}
