package lab

import (
	"errors"
	"math/big"
	"net/netip"
	"strings"

	"github.com/relaylock/relaylock/remediate"
)

// The lab's Exchange relay decision, written from Microsoft's
// documentation of receive connectors rather than taken from the driver:
// the re-test after a fix probes the lab's SMTP face, so the lab deciding
// with the driver's own connector model would confirm the driver's
// mistakes.

// Well-known SIDs (Microsoft, "Well-known SIDs"): the names are localized,
// the SIDs are not.
const (
	sidAnonymousLogon     = "S-1-5-7"
	sidAuthenticatedUsers = "S-1-5-11"
)

// exIPRange is one RemoteIPRanges entry: every address from lo to hi.
type exIPRange struct{ lo, hi netip.Addr }

var errExIPRange = errors.New("not an IP range")

// parseExIPRange reads a RemoteIPRanges entry in the forms
// Set-ReceiveConnector documents: a single address (192.168.1.1), a range
// (192.168.1.10-192.168.1.20), a CIDR prefix (192.168.1.0/24), and the
// address(mask) form of IPv4 (192.168.1.0(255.255.255.0)).
func parseExIPRange(s string) (exIPRange, error) {
	if ip, mask, ok := strings.Cut(s, "("); ok && strings.HasSuffix(mask, ")") {
		a, err1 := netip.ParseAddr(ip)
		m, err2 := netip.ParseAddr(strings.TrimSuffix(mask, ")"))
		if err1 != nil || err2 != nil || !a.Is4() || !m.Is4() {
			return exIPRange{}, errExIPRange
		}
		mb := m.As4()
		bits, seenZero := 0, false
		for _, b := range mb {
			for i := 7; i >= 0; i-- {
				switch one := b&(1<<i) != 0; {
				case one && seenZero:
					return exIPRange{}, errExIPRange // not contiguous
				case one:
					bits++
				default:
					seenZero = true
				}
			}
		}
		return prefixRange(netip.PrefixFrom(a, bits))
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p != p.Masked() { // the lab refuses host bits
			return exIPRange{}, errExIPRange
		}
		return prefixRange(p)
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(lo)
		b, err2 := netip.ParseAddr(hi)
		if err1 != nil || err2 != nil || a.Is4() != b.Is4() || b.Less(a) || a.Zone() != "" || b.Zone() != "" {
			return exIPRange{}, errExIPRange
		}
		return exIPRange{a, b}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return exIPRange{}, errExIPRange
	}
	return exIPRange{a, a}, nil
}

func prefixRange(p netip.Prefix) (exIPRange, error) {
	p = p.Masked()
	if !p.IsValid() {
		return exIPRange{}, errExIPRange
	}
	lo := p.Addr()
	b := lo.AsSlice()
	for i := range b {
		if host := p.Bits() - 8*i; host < 8 {
			if host < 0 {
				host = 0
			}
			b[i] |= byte(0xFF >> host)
		}
	}
	hi, _ := netip.AddrFromSlice(b)
	return exIPRange{lo, hi}, nil
}

func (r exIPRange) contains(a netip.Addr) bool {
	return a.Is4() == r.lo.Is4() && !a.Less(r.lo) && !r.hi.Less(a)
}

// size is the number of addresses in r.
func (r exIPRange) size() *big.Int {
	lo, hi := new(big.Int).SetBytes(r.lo.AsSlice()), new(big.Int).SetBytes(r.hi.AsSlice())
	return hi.Sub(hi, lo).Add(hi, big.NewInt(1))
}

// matchSize is the size of the smallest of c's RemoteIPRanges holding a,
// nil when none does.
func (c *exConnector) matchSize(a netip.Addr) *big.Int {
	var best *big.Int
	for _, s := range c.ranges {
		r, err := parseExIPRange(s)
		if err != nil || !r.contains(a) {
			continue
		}
		if n := r.size(); best == nil || n.Cmp(best) < 0 {
			best = n
		}
	}
	return best
}

// binding reports whether c listens on port, and whether on a specific
// local address rather than 0.0.0.0 or [::].
func (c *exConnector) binding(port uint16) (bound, specific bool) {
	for _, b := range c.bindings {
		ap, err := netip.ParseAddrPort(b)
		if err != nil || ap.Port() != port {
			continue
		}
		bound = true
		if !ap.Addr().IsUnspecified() {
			specific = true
		}
	}
	return bound, specific
}

// receiving is the connector that takes a connection from client on port:
// among the enabled connectors bound to the port, the one whose
// RemoteIPRanges match the client most specifically ("the most specific
// match to the connecting server's IP address", Receive connectors,
// Exchange Server documentation). The lab is single-homed, so every
// binding on the port matches; between equally specific ranges it prefers
// a binding to a specific address over a wildcard one, then the name that
// sorts first (Exchange refuses two connectors with the same bindings and
// ranges).
func (h *ExchangeHost) receiving(client netip.Addr, port uint16) *exConnector {
	var best *exConnector
	var bestSize *big.Int
	bestSpecific := false
	for _, c := range h.connectors {
		bound, specific := c.binding(port)
		if !c.enabled || !bound {
			continue
		}
		n := c.matchSize(client)
		if n == nil {
			continue
		}
		better := best == nil || n.Cmp(bestSize) < 0
		if !better && n.Cmp(bestSize) == 0 {
			better = (specific && !bestSpecific) ||
				(specific == bestSpecific && strings.ToLower(c.name) < strings.ToLower(best.name))
		}
		if better {
			best, bestSize, bestSpecific = c, n, specific
		}
	}
	return best
}

// grantsAnonymous reports whether ANONYMOUS LOGON holds
// ms-Exch-SMTP-Accept-Any-Recipient on c, explicitly or inherited.
func (h *ExchangeHost) grantsAnonymous(c *exConnector) bool {
	for _, list := range [][]remediate.ExchangeACE{c.explicit, h.inherited} {
		for _, a := range list {
			if a.SID == sidAnonymousLogon || (a.SID == "" && strings.EqualFold(a.User, h.anonName)) {
				return true
			}
		}
	}
	return false
}
