package remediate

import (
	"errors"
	"testing"
)

// FuzzParseAddrRange: allow-list entries come from the operator's command
// line and files. Parsing never panics, fails only with ErrAllowSyntax,
// and what parses is ordered, of one family and stable through String.
func FuzzParseAddrRange(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "192.0.2.0/24", "192.0.2.9-192.0.2.1", "192.0.2.1-192.0.2.9",
		"2001:db8::/32", "::ffff:192.0.2.0/120", "::ffff:1.2.3.4/8", "fe80::1%eth0", "0.0.0.0/0", " 10.0.0.1 - 10.0.0.2 ",
		"1.2.3.4-::1", "'; Remove-Item", "$(whoami)", "1.2.3.4/8", "2001:db8::1/32"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// The operator's parser refuses only what it must (ErrAllowSyntax)
		// and otherwise agrees with ParseAddrRange.
		if strict, err := ParseAllowEntry(s); err != nil {
			if !errors.Is(err, ErrAllowSyntax) {
				t.Fatalf("%q: ParseAllowEntry error %v is not ErrAllowSyntax", s, err)
			}
		} else if loose, err := ParseAddrRange(s); err != nil || loose != strict {
			t.Fatalf("%q: ParseAllowEntry %v, ParseAddrRange %v, %v", s, strict, loose, err)
		}
		r, err := ParseAddrRange(s)
		if err != nil {
			if !errors.Is(err, ErrAllowSyntax) {
				t.Fatalf("%q: error %v is not ErrAllowSyntax", s, err)
			}
			return
		}
		if !r.From.IsValid() || !r.To.IsValid() || r.From.Is4() != r.To.Is4() || r.To.Less(r.From) {
			t.Fatalf("%q: bad range %v-%v", s, r.From, r.To)
		}
		if r.From.Zone() != "" || r.To.Zone() != "" || r.From.Is4In6() || r.To.Is4In6() {
			t.Fatalf("%q: zone or mapped address kept: %v-%v", s, r.From, r.To)
		}
		if !r.Contains(r.From) || !r.Contains(r.To) {
			t.Fatalf("%q: range does not contain its ends", s)
		}
		back, err := ParseAddrRange(r.String())
		if err != nil || back != r {
			t.Fatalf("%q: String %q parses to %v, %v", s, r.String(), back, err)
		}
		if n := r.PrefixLenEquivalent(); n < 0 || n > r.From.BitLen() {
			t.Fatalf("%q: prefix length equivalent %d", s, n)
		}
	})
}
