package remediate

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
)

// AddrRange is an inclusive range of addresses of one family: what an
// operator writes as an IP, a CIDR prefix or "FIRST-LAST".
type AddrRange struct {
	From netip.Addr `json:"from"`
	To   netip.Addr `json:"to"`
}

// ErrAllowSyntax reports an allow-list entry that is not an IP, CIDR or range.
var ErrAllowSyntax = errors.New("not an IP address, CIDR prefix or FIRST-LAST range")

// ParseAddrRange parses "192.0.2.1", "192.0.2.0/24", "192.0.2.1-192.0.2.9"
// or their IPv6 forms. IPv4-mapped IPv6 addresses are unmapped.
func ParseAddrRange(s string) (AddrRange, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return AddrRange{}, fmt.Errorf("empty entry: %w", ErrAllowSyntax)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return AddrRange{}, fmt.Errorf("%q: %w", s, ErrAllowSyntax)
		}
		p = p.Masked()
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return AddrRange{}, fmt.Errorf("%q: IPv4-mapped prefix shorter than /96: %w", s, ErrAllowSyntax)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return AddrRange{From: p.Addr(), To: lastOf(p)}, nil
	}
	if a, b, ok := strings.Cut(s, "-"); ok {
		from, err1 := netip.ParseAddr(strings.TrimSpace(a))
		to, err2 := netip.ParseAddr(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || from.Zone() != "" || to.Zone() != "" {
			return AddrRange{}, fmt.Errorf("%q: %w", s, ErrAllowSyntax)
		}
		from, to = from.Unmap(), to.Unmap()
		if from.Is4() != to.Is4() {
			return AddrRange{}, fmt.Errorf("%q: range mixes IPv4 and IPv6: %w", s, ErrAllowSyntax)
		}
		if to.Less(from) {
			return AddrRange{}, fmt.Errorf("%q: range ends before it starts: %w", s, ErrAllowSyntax)
		}
		return AddrRange{From: from, To: to}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return AddrRange{}, fmt.Errorf("%q: %w", s, ErrAllowSyntax)
	}
	a = a.Unmap()
	return AddrRange{From: a, To: a}, nil
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Contains reports whether a lies in the range.
func (r AddrRange) Contains(a netip.Addr) bool {
	a = a.Unmap()
	return a.Is4() == r.From.Is4() && !a.Less(r.From) && !r.To.Less(a)
}

// Size returns the number of addresses in the range.
func (r AddrRange) Size() *big.Int {
	f := new(big.Int).SetBytes(r.From.AsSlice())
	t := new(big.Int).SetBytes(r.To.AsSlice())
	return t.Sub(t, f).Add(t, big.NewInt(1))
}

// Prefix returns the range as a CIDR prefix when it is exactly one.
func (r AddrRange) Prefix() (netip.Prefix, bool) {
	bits := r.From.BitLen()
	for l := 0; l <= bits; l++ {
		p := netip.PrefixFrom(r.From, l).Masked()
		if p.Addr() == r.From && lastOf(p) == r.To {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// String writes a single address, a CIDR prefix or "FIRST-LAST".
func (r AddrRange) String() string {
	if r.From == r.To {
		return r.From.String()
	}
	if p, ok := r.Prefix(); ok {
		return p.String()
	}
	return r.From.String() + "-" + r.To.String()
}

// PrefixLenEquivalent returns the prefix length of the smallest prefix
// holding as many addresses as the range: /8 for 16M IPv4 addresses.
func (r AddrRange) PrefixLenEquivalent() int {
	size := r.Size()
	bits := r.From.BitLen()
	n := size.BitLen() - 1 // floor(log2(size))
	return bits - n
}

// AllowError is a refused allow-list entry: it covers every address, or
// it is wider than the limit. Callers that know how the operator wrote the
// entry report it as typed (errors.As).
type AllowError struct {
	Entry AddrRange
	// All: the entry covers every address of its family.
	All bool
	// Limit is the widest prefix length accepted; Len the entry's width
	// as a prefix length.
	Limit, Len int
}

func (e *AllowError) Error() string { return e.Describe(e.Entry.String()) }

// Describe words the refusal for the entry as written.
func (e *AllowError) Describe(entry string) string {
	if e.All {
		return fmt.Sprintf("allow entry %s covers every address: that keeps the host an open relay (use --force only if you really mean it)", entry)
	}
	flag := "--max-prefix"
	if e.Entry.From.Is6() {
		flag = "--max-prefix6"
	}
	return fmt.Sprintf("allow entry %s is wider than /%d (about a /%d): refusing without --force (raise the limit with %s)", entry, e.Limit, e.Len, flag)
}

// CheckAllowList refuses dangerous allow lists: an entry covering every
// address (0.0.0.0/0, ::/0), or one wider than maxV4 (IPv4) or maxV6
// (IPv6) as a prefix length (e.g. 8 and 32), unless force is set. A
// refused entry is an *AllowError.
func CheckAllowList(allow []AddrRange, maxV4, maxV6 int, force bool) error {
	if len(allow) == 0 {
		return errors.New("the allow list is empty: name at least one client with --allow (relaying stays limited to authenticated clients and loopback only with --allow 127.0.0.1)")
	}
	if force {
		return nil
	}
	for _, r := range allow {
		all := (r.From.Is4() && r.From == netip.IPv4Unspecified() && r.To == netip.MustParseAddr("255.255.255.255")) ||
			(r.From.Is6() && r.From == netip.IPv6Unspecified() && r.To == netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
		if all {
			return &AllowError{Entry: r, All: true}
		}
		limit := maxV4
		if r.From.Is6() {
			limit = maxV6
		}
		if l := r.PrefixLenEquivalent(); l < limit {
			return &AllowError{Entry: r, Limit: limit, Len: l}
		}
	}
	return nil
}
