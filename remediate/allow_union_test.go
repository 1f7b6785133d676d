package remediate

import (
	"errors"
	"math/big"
	"net/netip"
	"strings"
	"testing"
)

func mustRanges(t *testing.T, ss ...string) []AddrRange {
	t.Helper()
	var out []AddrRange
	for _, s := range ss {
		r, err := ParseAddrRange(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// slash8s returns the 256 IPv4 /8 networks: together 0.0.0.0/0.
func slash8s() []string {
	var out []string
	for i := 0; i < 256; i++ {
		out = append(out, netip.AddrFrom4([4]byte{byte(i), 0, 0, 0}).String()+"/8")
	}
	return out
}

// TestCheckAllowListUnion: entries each within the limit that together
// cover every address, or more than one limit-sized network, are refused
// unless force; overlaps are counted once.
func TestCheckAllowListUnion(t *testing.T) {
	tests := []struct {
		name    string
		allow   []string
		all     bool // refused as covering everything
		refused bool
		ipv6    bool
		limits  [2]int // --max-prefix, --max-prefix6; zero: 8 and 32
	}{
		{"256 /8s cover 0.0.0.0/0", slash8s(), true, true, false, [2]int{}},
		{"two /1s cover 0.0.0.0/0 under --max-prefix 1", []string{"0.0.0.0/1", "128.0.0.0/1"}, true, true, false, [2]int{1, 1}},
		{"two /9s make one /8", []string{"10.0.0.0/9", "10.128.0.0/9"}, false, false, false, [2]int{}},
		{"a /8 and one more address", []string{"10.0.0.0/8", "11.0.0.0"}, false, true, false, [2]int{}},
		{"two disjoint /8s", []string{"10.0.0.0/8", "12.0.0.0/8"}, false, true, false, [2]int{}},
		{"the same /8 twice", []string{"10.0.0.0/8", "10.0.0.0/8", "10.1.0.0/16"}, false, false, false, [2]int{}},
		{"a range of 1.5 /8s alone", []string{"10.0.0.0-11.127.255.255"}, false, true, false, [2]int{}},
		{"small lists", []string{"192.0.2.10", "198.51.100.0/24", "2001:db8::/48"}, false, false, false, [2]int{}},
		{"IPv6 halves cover ::/0 under --max-prefix6 1", []string{"::/1", "8000::/1"}, true, true, true, [2]int{1, 1}},
		{"IPv6 two /33s make a /32", []string{"2001:db8::/33", "2001:db8:8000::/33"}, false, false, true, [2]int{}},
		{"IPv6 three /33s", []string{"2001:db8::/33", "2001:db8:8000::/33", "2001:db9::/33"}, false, true, true, [2]int{}},
		{"IPv4 limit does not count IPv6", []string{"10.0.0.0/8", "2001:db8::/32"}, false, false, false, [2]int{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			allow := mustRanges(t, tc.allow...)
			if tc.limits == [2]int{} {
				tc.limits = [2]int{8, 32}
			}
			err := CheckAllowList(allow, tc.limits[0], tc.limits[1], false)
			if !tc.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ue *AllowUnionError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want *AllowUnionError", err)
			}
			if ue.All != tc.all || ue.IPv6 != tc.ipv6 {
				t.Errorf("All=%v IPv6=%v, want %v %v", ue.All, ue.IPv6, tc.all, tc.ipv6)
			}
			msg := ue.Describe(tc.allow)
			if !strings.Contains(msg, tc.allow[ue.Entries[0]]) {
				t.Errorf("message does not name the entries as typed: %s", msg)
			}
			if tc.all && !strings.Contains(msg, "every") {
				t.Errorf("message does not say it covers everything: %s", msg)
			}
			if !tc.all && !strings.Contains(msg, "unless forced") {
				t.Errorf("message does not say a force lifts it: %s", msg)
			}
			if err := CheckAllowList(allow, tc.limits[0], tc.limits[1], true); err != nil {
				t.Errorf("--force: %v", err)
			}
		})
	}
	// A long list is named in part, not all 256 entries.
	err := CheckAllowList(mustRanges(t, slash8s()...), 8, 32, false)
	var ue *AllowUnionError
	if !errors.As(err, &ue) || !strings.Contains(ue.Describe(slash8s()), "0.0.0.0/8, 1.0.0.0/8") ||
		!strings.Contains(ue.Describe(slash8s()), "and 251 more") {
		t.Errorf("256 /8s: %v", err)
	}
}

// TestParseAllowEntryHostBits: a CIDR entry with host bits is refused with
// the network it masks to as a suggestion, never masked silently.
func TestParseAllowEntryHostBits(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"1.2.3.4/8", "1.2.3.4/8 has host bits set; did you mean 1.0.0.0/8?"},
		{" 192.0.2.77/24 ", "192.0.2.77/24 has host bits set; did you mean 192.0.2.0/24?"},
		{"2001:db8::1/32", "2001:db8::1/32 has host bits set; did you mean 2001:db8::/32?"},
		{"::ffff:192.0.2.1/120", "::ffff:192.0.2.1/120 has host bits set; did you mean ::ffff:192.0.2.0/120?"},
	} {
		_, err := ParseAllowEntry(tc.in)
		var he *HostBitsError
		if !errors.As(err, &he) || err.Error() != tc.want || !errors.Is(err, ErrAllowSyntax) {
			t.Errorf("%q: err = %v, want %q (a *HostBitsError wrapping ErrAllowSyntax)", tc.in, err, tc.want)
		}
	}
	for _, ok := range []string{"1.0.0.0/8", "1.2.3.4/32", "1.2.3.4", "2001:db8::/32", "2001:db8::1/128", "192.0.2.1-192.0.2.9", "::ffff:192.0.2.0/120"} {
		r, err := ParseAllowEntry(ok)
		want, _ := ParseAddrRange(ok)
		if err != nil || r != want {
			t.Errorf("%q: %v, %v", ok, r, err)
		}
	}
}

// bruteUnion counts, address by address, how many of the window's
// addresses base+0..base+n-1 the ranges cover.
func bruteUnion(rs []AddrRange, base netip.Addr, n int) int {
	count := 0
	a := base
	for i := 0; i < n; i++ {
		for _, r := range rs {
			if r.Contains(a) {
				count++
				break
			}
		}
		a = a.Next()
	}
	return count
}

// FuzzMergeRanges checks the union against counting address by address,
// in small windows of both families, including the top of the IPv4 and
// IPv6 spaces (where To.Next() does not exist): the merged ranges are
// sorted, disjoint, not adjacent, and cover exactly the input's addresses.
func FuzzMergeRanges(f *testing.F) {
	f.Add([]byte{0, 0, 10, 1, 5, 20, 2, 250, 255, 3, 0, 255})
	f.Add([]byte{0, 0, 255, 0, 0, 0, 0, 10, 20, 0, 21, 30})
	f.Add([]byte{1, 3, 3, 1, 4, 4, 1, 5, 5, 2, 250, 255})
	bases := []netip.Addr{
		netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("255.255.255.0"),
		netip.MustParseAddr("2001:db8::"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00"),
	}
	add := func(a netip.Addr, k byte) netip.Addr {
		for ; k > 0; k-- {
			a = a.Next()
		}
		return a
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var rs []AddrRange
		for i := 0; i+2 < len(b) && len(rs) < 40; i += 3 {
			base := bases[int(b[i])%len(bases)]
			lo, hi := b[i+1], b[i+2]
			if hi < lo {
				lo, hi = hi, lo
			}
			rs = append(rs, AddrRange{From: add(base, lo), To: add(base, hi)})
		}
		merged := MergeRanges(rs)
		for i, m := range merged {
			if m.To.Less(m.From) || m.From.Is4() != m.To.Is4() {
				t.Fatalf("bad merged range %v", m)
			}
			if i > 0 {
				p := merged[i-1]
				if !p.To.Less(m.From) || (p.From.Is4() == m.From.Is4() && p.To.Next() == m.From) {
					t.Fatalf("merged ranges overlap, touch or are out of order: %v then %v", p, m)
				}
			}
		}
		want := 0
		for _, base := range bases {
			want += bruteUnion(rs, base, 256)
			if got := bruteUnion(merged, base, 256); got != bruteUnion(rs, base, 256) {
				t.Fatalf("window %v: merged covers %d addresses, input %d", base, got, bruteUnion(rs, base, 256))
			}
		}
		if got := UnionSize(rs); got.Cmp(big.NewInt(int64(want))) != 0 {
			t.Fatalf("UnionSize = %v, counted %d (%v)", got, want, rs)
		}
	})
}
