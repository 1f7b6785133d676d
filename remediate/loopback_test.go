package remediate

import (
	"net/netip"
	"testing"
)

// TestAddsLoopbackAgreesWithThePlan: Request.AddsLoopback, which the
// workflow uses to know the allowed list a change leaves, says what
// DesiredRelayList (the IIS and Exchange 2000/2003 plans) writes.
func TestAddsLoopbackAgreesWithThePlan(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	for _, noLoopback := range []bool{false, true} {
		req := Request{NoLoopback: noLoopback, Allow: []AddrRange{{From: netip.MustParseAddr("192.0.2.10"), To: netip.MustParseAddr("192.0.2.10")}}}
		rl, err := DesiredRelayList(req, 0)
		if err != nil {
			t.Fatal(err)
		}
		written := false
		for _, m := range rl.Grant {
			if m.IP == lo.As4() {
				written = true
			}
		}
		for _, p := range []Platform{PlatformIIS, PlatformExchange2003} {
			if got := req.AddsLoopback(p); got != written {
				t.Errorf("NoLoopback=%v %s: AddsLoopback %v, the plan writes 127.0.0.1: %v", noLoopback, p, got, written)
			}
		}
		if req.AddsLoopback(PlatformExchange) {
			t.Errorf("NoLoopback=%v: AddsLoopback true for Exchange 2007+, whose connectors never list 127.0.0.1", noLoopback)
		}
	}
}
