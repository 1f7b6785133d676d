package engagement

import (
	"net/netip"
	"strings"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/report/evidence"
)

// proberAddrs returns this machine's addresses as seen in an audit: the
// local addresses the probe connections used.
func proberAddrs(results ...*audit.Result) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, r := range results {
		if r == nil {
			continue
		}
		for _, s := range r.Vantage.SourceAddrs {
			if ap, err := netip.ParseAddrPort(s); err == nil {
				s = ap.Addr().String()
			}
			a, err := netip.ParseAddr(strings.Trim(s, "[]"))
			if err != nil {
				continue
			}
			a = a.Unmap()
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}

// lastAudit returns the newest audit in the evidence, or nil. Only
// evidence that verifies is used (the job's preflight has refused
// any other).
func lastAudit(path string) *audit.Result {
	if path == "" {
		return nil
	}
	b, _, err := evidence.LoadVerified(path)
	if err != nil || len(b.Audits) == 0 {
		return nil
	}
	return b.Audits[len(b.Audits)-1].Result
}
