package engagement

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/relaylock/relaylock/audit"
)

// Catch mode (issue 3): `relaylock audit --catch-domain DOMAIN` starts the
// built-in receiver (audit.CatchServer) for the run. Relayed test messages
// are addressed to TOKEN@DOMAIN; when one arrives, the relay is proven.
// The receiver accepts mail for DOMAIN only and has no sending code.

// DefaultCatchWait is how long catch mode waits, after the probes, for
// relayed messages to arrive.
const DefaultCatchWait = 60 * time.Second

// catchDNSCheckTimeout bounds the pre-flight look-up of the catch domain.
const catchDNSCheckTimeout = 10 * time.Second

// setupCatch starts the catcher when --catch-domain is given, and sets
// opts.Catcher and opts.CatchWait. The cleanup stops the catcher (it must
// run when the audit ends) and prints what it saw.
func setupCatch(ctx context.Context, e *Env, o AuditOptions, opts *audit.Options) (cleanup func(), err error) {
	c, p := o.Catch, o.Probe
	domain := c.Domain
	if domain == "" {
		switch {
		case c.ListenGiven:
			return nil, Usagef("--catch-listen needs --catch-domain")
		case c.WaitGiven:
			return nil, Usagef("--catch-wait needs --catch-domain")
		}
		if (p.Deliver || p.Depth == audit.DepthDeliver) && p.To == "" {
			return nil, Usagef("--deliver needs --to ADDR (a mailbox you own) or --catch-domain DOMAIN")
		}
		return nil, nil
	}
	if p.ToGiven {
		return nil, Usagef("--catch-domain conflicts with --to: in catch mode relayed messages go to the catch domain")
	}
	if p.DepthGiven && p.Depth != audit.DepthDeliver {
		return nil, Usagef("--catch-domain sends marked test messages (depth deliver); it conflicts with --depth %s", p.Depth)
	}
	wait := c.Wait
	if !c.WaitGiven {
		wait = DefaultCatchWait
	}
	if wait <= 0 {
		return nil, Usagef("--catch-wait must be positive")
	}
	listen := c.Listen
	if !c.ListenGiven {
		listen = audit.DefaultCatchListen
	}
	if _, port, err := net.SplitHostPort(listen); err != nil || port == "" {
		return nil, Usagef("--catch-listen %q: want ADDR:PORT, e.g. :25 or 0.0.0.0:2525", listen)
	}
	cat, err := audit.NewCatcher(audit.CatcherConfig{Domain: domain, Listen: listen})
	if err != nil {
		if errors.Is(err, audit.ErrInvalidName) {
			return nil, Usagef("--catch-domain: %v", err)
		}
		return nil, err
	}
	if err := cat.Start(ctx); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("catch mode: %w\nhint: port 25 needs root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep relaylock); or use --catch-listen :2525 and redirect port 25 to it", err)
		}
		return nil, fmt.Errorf("catch mode: %w", err)
	}
	if e.CatchStarted != nil {
		e.CatchStarted(cat.Addr())
	}
	fmt.Fprintf(e.Stderr, "relaylock: catch mode: listening on %s for mail to *@%s only; waiting up to %s after the probes\n",
		cat.Addr(), cat.Domain(), wait)
	if opts.Resolver != nil {
		ctx, cancel := context.WithTimeout(ctx, catchDNSCheckTimeout)
		for _, w := range checkCatchDNS(ctx, opts.Resolver, cat.Domain(), localAddrs()) {
			fmt.Fprintf(e.Stderr, "relaylock: warning: %s\n", w)
		}
		cancel()
	}
	opts.Catcher = cat
	opts.CatchWait = wait
	return func() {
		cat.Close()
		st := cat.Stats()
		fmt.Fprintf(e.Stderr, "relaylock: catch mode: %d connection(s), %d message(s) caught, %d bounce(s), %d foreign recipient(s) refused\n",
			st.Connections, st.Messages, st.Bounces, st.RejectedRecipients)
	}, nil
}

// checkCatchDNS looks up the catch domain's mail hosts and returns warnings
// when relayed messages could not reach this machine. Behind NAT the MX
// address is not local, so these are warnings, not errors.
func checkCatchDNS(ctx context.Context, r audit.MailResolver, domain string, local []netip.Addr) []string {
	res, err := r.MailHosts(ctx, domain)
	switch {
	case err != nil:
		return []string{fmt.Sprintf("catch domain %s: %v; relayed messages cannot reach the catcher, so no relay can be confirmed (publish an MX record pointing at this machine)", domain, err)}
	case res.NullMX:
		return []string{fmt.Sprintf("catch domain %s has a null MX (RFC 7505): relays will not deliver to it; publish an MX record pointing at this machine", domain)}
	}
	var addrs []string
	for _, h := range res.MX {
		for _, a := range h.Addresses {
			ip, err := netip.ParseAddr(a)
			if err == nil && slices.Contains(local, ip.Unmap()) {
				return nil
			}
			addrs = append(addrs, a)
		}
	}
	return []string{fmt.Sprintf("the MX of %s resolves to %s, not an address of this machine; fine behind NAT or a port forward, otherwise relayed messages will not arrive",
		domain, strings.Join(addrs, ", "))}
}

// localAddrs lists this machine's interface addresses.
func localAddrs() []netip.Addr {
	ifas, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range ifas {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}
