package remediate

import (
	"net/netip"
	"strings"
)

// The dedicated relay connector's bindings, and Exchange's uniqueness
// rule for receive connectors (issue 14).
//
// Microsoft's anonymous-relay procedure ("Allow anonymous relay on
// Exchange servers" [S32]) creates the connector with
// `-Bindings 0.0.0.0:25 -RemoteIpRanges <allowed>`. New-ReceiveConnector
// documents Bindings as "IPv4Address:TCPPort","IPv6Address:TCPPort" ("an
// IPv4 address and port, an IPv6 address and port, or both"), and the
// procedure for a connector that only accepts one service or device as
// `-Bindings <0.0.0.0:25 | LocalIPAddress:25>`: one address per family.
// relaylock used to add, next to 0.0.0.0:25, every specific port-25
// address another connector of the role listens on
// (`0.0.0.0:25, <addr>:25`), a form no Microsoft page shows; it now
// creates the documented form (with [::]:25 for IPv6 clients).
//
// Whether Exchange gives a connection to <addr>:25 to the connector bound
// to that specific address or to one bound to 0.0.0.0:25 whose
// RemoteIPRanges match the client more narrowly is not documented
// (UnverifiedFacts "exchange-binding-precedence"); the plan says so when
// such a connector exists.
//
// Uniqueness: "Each Receive connector on the Exchange server uses a
// unique combination of local IP address bindings, TCP ports, and remote
// IP address ranges"; connectors may share a binding "if the remote IP
// address ranges are different" [S33], and "can have overlapping remote
// IP address ranges as long as one IP address range is completely
// overlapped by another" (New-ReceiveConnector, RemoteIPRanges).

// relayConnectorBindings are the dedicated connector's bindings, the
// documented form: all IPv4 addresses on port 25, and all IPv6 addresses
// when an allowed client is IPv6.
func relayConnectorBindings(v6 bool) []string {
	if v6 {
		return []string{"0.0.0.0:25", "[::]:25"}
	}
	return []string{"0.0.0.0:25"}
}

// specificBindingNotes are the plan's notes on the enabled connectors of
// role (other than identity) that listen on a specific local address on
// port 25, which may take connections to that address from the allowed
// clients (exchange-binding-precedence).
func specificBindingNotes(s *ExchangeState, role, identity, ranges string) []string {
	var notes []string
	for _, c := range s.Connectors {
		if !c.Enabled || !strings.EqualFold(c.TransportRole, role) || strings.EqualFold(c.Identity, identity) {
			continue
		}
		for _, b := range c.Bindings {
			ip, port, ok := exSplitBinding(b)
			if !ok || port != 25 || ip == "0.0.0.0" || ip == "::" {
				continue
			}
			notes = append(notes, "Receive connector "+c.Identity+" listens on "+strings.TrimSpace(b)+", a specific address of this server; the relay connector listens on all addresses "+
				"(Microsoft's documented form). Whether Exchange gives a connection to that address to "+c.Identity+" or to the relay connector, whose RemoteIPRanges ("+ranges+
				") match the allowed clients more narrowly, is not documented (unverified: exchange-binding-precedence). If allowed clients that send to "+ip+
				" are refused relay afterwards, point them at another address of the server, or add them to "+c.Identity+" yourself.")
		}
	}
	return notes
}

// exRangesConflict reports whether two RemoteIPRanges entries of
// connectors that share a binding break Exchange's rule: the same range,
// or ranges that overlap without one holding the other.
func exRangesConflict(a, b AddrRange) bool {
	if a == b {
		return true
	}
	le := func(x, y netip.Addr) bool { return x.Compare(y) <= 0 }
	if a.From.Is4() != b.From.Is4() || !le(a.From, b.To) || !le(b.From, a.To) {
		return false // no overlap
	}
	aInB := le(b.From, a.From) && le(a.To, b.To)
	bInA := le(a.From, b.From) && le(b.To, a.To)
	return !aInB && !bInA
}
