package remediate

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
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
	// Index is the entry's position in the allow list.
	Index int
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
		return fmt.Sprintf("allow entry %s covers every address: that keeps the host an open relay (refused unless forced)", entry)
	}
	return fmt.Sprintf("allow entry %s is wider than /%d (about a /%d): refused unless forced or the limit is raised", entry, e.Limit, e.Len)
}

// CheckAllowList refuses dangerous allow lists unless force is set: an
// entry covering every address (0.0.0.0/0, ::/0), one wider than maxV4
// (IPv4) or maxV6 (IPv6) as a prefix length (e.g. 8 and 32), or entries
// that together cover every address of a family or more addresses than
// one network of that prefix length (256 /16s are as wide as a /8). A
// refused entry is an *AllowError, a refused union an *AllowUnionError.
func CheckAllowList(allow []AddrRange, maxV4, maxV6 int, force bool) error {
	if len(allow) == 0 {
		return errors.New("the allow list is empty: name at least one client (to limit relaying to authenticated clients and loopback, allow 127.0.0.1 only)")
	}
	if force {
		return nil
	}
	for i, r := range allow {
		if r.coversFamily() {
			return &AllowError{Entry: r, Index: i, All: true}
		}
		limit := maxV4
		if r.From.Is6() {
			limit = maxV6
		}
		if l := r.PrefixLenEquivalent(); l < limit {
			return &AllowError{Entry: r, Index: i, Limit: limit, Len: l}
		}
	}
	for _, v6 := range []bool{false, true} {
		limit, bits := maxV4, 32
		if v6 {
			limit, bits = maxV6, 128
		}
		var idx []int
		var fam []AddrRange
		for i, r := range allow {
			if r.From.Is6() == v6 {
				idx = append(idx, i)
				fam = append(fam, r)
			}
		}
		if len(fam) == 0 {
			continue
		}
		size := UnionSize(fam)
		all := new(big.Int).Lsh(big.NewInt(1), uint(bits))
		max := new(big.Int).Lsh(big.NewInt(1), uint(bits-limit))
		switch {
		case size.Cmp(all) == 0:
			return &AllowUnionError{IPv6: v6, All: true, Size: size, Entries: idx}
		case size.Cmp(max) > 0:
			ceilLog2 := new(big.Int).Sub(size, big.NewInt(1)).BitLen()
			return &AllowUnionError{IPv6: v6, Size: size, Limit: limit, Len: bits - ceilLog2, Entries: idx}
		}
	}
	return nil
}

// coversFamily reports whether r holds every address of its family.
func (r AddrRange) coversFamily() bool {
	if r.From.Is4() {
		return r.From == netip.IPv4Unspecified() && r.To == netip.AddrFrom4([4]byte{255, 255, 255, 255})
	}
	return r.From == netip.IPv6Unspecified() && r.To == netip.AddrFrom16([16]byte{
		255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255})
}

// MergeRanges returns the union of rs as the fewest ranges: sorted (IPv4
// first), disjoint and not adjacent. rs is not modified.
func MergeRanges(rs []AddrRange) []AddrRange {
	s := append([]AddrRange(nil), rs...)
	slices.SortFunc(s, func(a, b AddrRange) int {
		if c := a.From.Compare(b.From); c != 0 {
			return c
		}
		return a.To.Compare(b.To)
	})
	var out []AddrRange
	for _, r := range s {
		if n := len(out); n > 0 {
			last := &out[n-1]
			// Same family (Compare orders IPv4 before IPv6), and r starts
			// inside last or right after it. last.To.Next() is the zero
			// Addr at the top of the family, which no address equals.
			if last.From.Is4() == r.From.Is4() && (r.From.Compare(last.To) <= 0 || last.To.Next() == r.From) {
				if last.To.Less(r.To) {
					last.To = r.To
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// UnionSize returns the number of distinct addresses the ranges cover.
func UnionSize(rs []AddrRange) *big.Int {
	n := new(big.Int)
	for _, r := range MergeRanges(rs) {
		n.Add(n, r.Size())
	}
	return n
}

// AllowUnionError is an allow list refused as a whole: no entry is too
// wide alone, but together the entries of one family cover every
// address, or more addresses than one network of the limit's length.
type AllowUnionError struct {
	IPv6 bool
	// All: the entries cover every address of the family.
	All  bool
	Size *big.Int
	// Limit is the widest prefix length accepted; Len the union's width
	// as a prefix length (the longest prefix holding as many addresses).
	Limit, Len int
	// Entries are the indexes, in the allow list, of the entries of the
	// family, so callers can name them as typed.
	Entries []int
}

func (e *AllowUnionError) Error() string { return e.Describe(nil) }

// Describe words the refusal naming the entries as typed: typed[i] is how
// the operator wrote entry i (nil: the family is named only).
func (e *AllowUnionError) Describe(typed []string) string {
	fam := "IPv4"
	if e.IPv6 {
		fam = "IPv6"
	}
	what, verb := "the "+fam+" allow entries", "together cover"
	if len(e.Entries) == 1 {
		what, verb = "the allow entry", "covers"
	}
	if len(typed) > 0 {
		var names []string
		for k, i := range e.Entries {
			if k == 5 {
				names = append(names, fmt.Sprintf("and %d more", len(e.Entries)-k))
				break
			}
			if i < len(typed) {
				names = append(names, typed[i])
			}
		}
		what += " " + strings.Join(names, ", ")
	}
	if e.All {
		return fmt.Sprintf("%s %s every %s address: that keeps the host an open relay (refused unless forced)", what, verb, fam)
	}
	count := "more addresses"
	if !e.IPv6 {
		count = e.Size.String() + " addresses, more"
	}
	return fmt.Sprintf("%s %s %s than a /%d network holds (it takes a /%d): refused unless forced or the limit is raised", what, verb, count, e.Limit, e.Len)
}

// HostBitsError is a CIDR allow entry with bits set after the prefix
// length (1.2.3.4/8): it wraps ErrAllowSyntax. The operator may have meant
// the network or the single address, so it is refused, not masked.
type HostBitsError struct {
	Typed  string
	Masked netip.Prefix
}

func (e *HostBitsError) Error() string {
	return fmt.Sprintf("%s has host bits set; did you mean %s?", e.Typed, e.Masked)
}

func (e *HostBitsError) Unwrap() error { return ErrAllowSyntax }

// ParseAllowEntry parses an allow entry the operator typed, as
// ParseAddrRange does, but refuses a CIDR prefix with host bits set
// (*HostBitsError) instead of masking it silently.
func ParseAllowEntry(s string) (AddrRange, error) {
	t := strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(t); err == nil && p != p.Masked() {
		return AddrRange{}, &HostBitsError{Typed: t, Masked: p.Masked()}
	}
	return ParseAddrRange(t)
}
