package lab

import (
	"math/big"
	"net/netip"
	"testing"
)

func TestParseExIPRange(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi string
		size   int64
	}{
		{"192.168.1.1", "192.168.1.1", "192.168.1.1", 1},
		{"192.168.1.10-192.168.1.20", "192.168.1.10", "192.168.1.20", 11},
		{"192.168.1.0/24", "192.168.1.0", "192.168.1.255", 256},
		{"10.0.0.0/9", "10.0.0.0", "10.127.255.255", 1 << 23},
		{"192.168.1.0(255.255.255.0)", "192.168.1.0", "192.168.1.255", 256},
		{"0.0.0.0-255.255.255.255", "0.0.0.0", "255.255.255.255", 1 << 32},
		{"2001:db8::/126", "2001:db8::", "2001:db8::3", 4},
		{"::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0},
	}
	for _, tt := range tests {
		r, err := parseExIPRange(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if r.lo != netip.MustParseAddr(tt.lo) || r.hi != netip.MustParseAddr(tt.hi) {
			t.Errorf("%s = %v-%v", tt.in, r.lo, r.hi)
		}
		want := big.NewInt(tt.size)
		if tt.size == 0 {
			want = new(big.Int).Lsh(big.NewInt(1), 128)
		}
		if r.size().Cmp(want) != 0 {
			t.Errorf("%s: size %v, want %v", tt.in, r.size(), want)
		}
	}
	for _, bad := range []string{"", "10.0.0.300", "10.0.0.1/8", "10.0.0.5-10.0.0.1", "10.0.0.1-::1", " 10.0.0.1",
		"10.0.0.1 - 10.0.0.5", "10.0.0.0(255.0.255.0)", "fe80::1%eth0", "10.0.0.0/33"} {
		if _, err := parseExIPRange(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestExchangeReceivingConnector: the most specific RemoteIPRanges match
// takes the connection; a disabled connector or one on another port never
// does.
func TestExchangeReceivingConnector(t *testing.T) {
	h := Exchange2019Closed()
	h.connectors = []*exConnector{
		{name: "Default", enabled: true, bindings: []string{"0.0.0.0:25", "[::]:25"}, ranges: []string{"0.0.0.0-255.255.255.255", "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{name: "Relay", enabled: true, bindings: []string{"0.0.0.0:25"}, ranges: []string{"192.0.2.0/24"}},
		{name: "Narrow but off", enabled: false, bindings: []string{"0.0.0.0:25"}, ranges: []string{"192.0.2.7"}},
		{name: "Other port", enabled: true, bindings: []string{"0.0.0.0:2525"}, ranges: []string{"192.0.2.8"}},
		{name: "Specific", enabled: true, bindings: []string{"192.0.2.1:25"}, ranges: []string{"198.51.100.0/24"}},
		{name: "A wildcard twin", enabled: true, bindings: []string{"0.0.0.0:25"}, ranges: []string{"198.51.100.0/24"}},
	}
	for client, want := range map[string]string{
		"192.0.2.7": "Relay", "192.0.2.8": "Relay", "203.0.113.1": "Default", "2001:db8::1": "Default",
		"198.51.100.9": "Specific", "::ffff:192.0.2.9": "Relay",
	} {
		c := h.receiving(netip.MustParseAddr(client).Unmap(), 25)
		if c == nil || c.name != want {
			t.Errorf("%s: got %+v, want %s", client, c, want)
		}
	}
}
