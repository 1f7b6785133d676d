package engagement

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// The inside view: a re-test made from an address the allowed list lets
// relay sees the host relay by design, so an open re-test from there
// proves nothing about what a stranger sees. The re-test records the
// caveat (evidence.AuditRun.InsideView), is not verified (exit 5, not 4),
// and no restart is offered for it: a restart cannot change what it shows.

// allowEntry is one entry of the allowed list a change leaves.
type allowEntry struct {
	r remediate.AddrRange
	// loopback: the 127.0.0.1 entry the plan adds by default.
	loopback bool
}

// allowedList is the allowed list a change for req leaves on platform p:
// the --allow entries, plus 127.0.0.1 where the plan adds it
// (remediate.Request.AddsLoopback).
func allowedList(req remediate.Request, p remediate.Platform) []allowEntry {
	var out []allowEntry
	for _, r := range req.Allow {
		out = append(out, allowEntry{r: r})
	}
	if req.AddsLoopback(p) {
		lo := netip.MustParseAddr("127.0.0.1")
		out = append(out, allowEntry{r: remediate.AddrRange{From: lo, To: lo}, loopback: true})
	}
	return out
}

// containing returns the entry of allow that contains a, if any. An
// --allow entry wins over the default loopback entry.
func containing(allow []allowEntry, a netip.Addr) (allowEntry, bool) {
	for _, e := range allow {
		if e.r.Contains(a) {
			return e, true
		}
	}
	return allowEntry{}, false
}

// insideView lists, for a probe run r, each local address a connection of
// it came from that allow contains, with the endpoints reached from it
// (from the transcripts' local addresses), in the order first seen.
func insideView(r *audit.Result, allow []allowEntry) []evidence.InsideView {
	if r == nil || len(allow) == 0 {
		return nil
	}
	var out []evidence.InsideView
	for _, t := range r.Targets {
		for _, ep := range t.Endpoints {
			key := net.JoinHostPort(ep.Address, strconv.Itoa(ep.Port))
			for _, tr := range ep.Transcripts {
				a, ok := localAddr(tr.Local)
				if !ok {
					continue
				}
				e, ok := containing(allow, a)
				if !ok {
					continue
				}
				i := slices.IndexFunc(out, func(v evidence.InsideView) bool { return v.Prober == a.String() })
				if i < 0 {
					out = append(out, evidence.InsideView{Prober: a.String(), Allowed: e.r.String(), Loopback: e.loopback, Endpoints: []string{}})
					i = len(out) - 1
				}
				if !slices.Contains(out[i].Endpoints, key) {
					out[i].Endpoints = append(out[i].Endpoints, key)
				}
			}
		}
	}
	return out
}

func localAddr(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return a.Unmap(), err == nil
}

// openOnlyInside reports whether r is open only on endpoints the re-test
// reached from an allowed address: every open endpoint is listed in iv,
// and every connection to it came from an allowed address. Such a re-test
// cannot tell a closed relay from an open one.
func openOnlyInside(r *audit.Result, iv []evidence.InsideView, allow []allowEntry) bool {
	if r == nil || r.Verdict != audit.VerdictOpen || len(iv) == 0 {
		return false
	}
	n := 0
	for _, t := range r.Targets {
		for _, ep := range t.Endpoints {
			if ep.Verdict != audit.VerdictOpen {
				continue
			}
			n++
			inside := false
			for _, tr := range ep.Transcripts {
				a, ok := localAddr(tr.Local)
				if !ok {
					continue
				}
				if _, in := containing(allow, a); !in {
					return false // a connection from outside the list: it counts
				}
				inside = true
			}
			if !inside {
				return false
			}
		}
	}
	return n > 0
}

// insideViewText says why an open re-test is not verified, and how to
// verify it.
func insideViewText(iv []evidence.InsideView) string {
	var parts []string
	loopback := false
	for _, v := range iv {
		s := fmt.Sprintf("%s (allowed by %s", v.Prober, v.Allowed)
		if v.Loopback {
			s += ", added by default"
			loopback = true
		}
		parts = append(parts, s+") for "+strings.Join(v.Endpoints, ", "))
	}
	how := "re-test from an address outside the allowed list (relaylock audit there)"
	if loopback {
		how += ", or remediate with --no-loopback so that 127.0.0.1 is not allowed"
	}
	return "the re-test came from " + strings.Join(parts, "; ") +
		": the host lets that address relay by design, so the re-test cannot tell a closed relay from an open one; to verify, " + how
}

// warnInsideView warns when this machine's address will be allowed to
// relay after the change: the re-test then shows the inside view, not
// what a stranger sees.
func warnInsideView(w io.Writer, prober []netip.Addr, allow []allowEntry) {
	for _, a := range prober {
		if e, ok := containing(allow, a); ok {
			fmt.Fprintf(w, "relaylock: warning: this machine's address %s is inside the allowed list (%s): the re-test will show the inside view, not what a stranger sees, and cannot verify the change; re-test from another vantage point\n", a, e.r)
		}
	}
}
