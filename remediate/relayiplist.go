package remediate

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// This file is the codec for the IIS 6 metabase property RelayIpList
// (ID 36970, type IPSECLIST), which holds the "Relay restrictions" of an
// IIS SMTP virtual server and, through DS2MB, of an Exchange 2000/2003 SMTP
// virtual server. Layout (docs/windows-relay.md §1.2; struct names from
// Microsoft's rdns.hxx, values from GUI-generated samples):
//
//	0x00 iDenyAddr  self-relative offset of the deny ADDRESS_HEADER
//	0x04 iGrantAddr self-relative offset of the grant ADDRESS_HEADER
//	0x08 iDenyName  self-relative offset of the deny NAME_HEADER
//	0x0C iGrantName self-relative offset of the grant NAME_HEADER
//	0x10 dwFlags    1 in every sample (RDNS_FLAG_DODNS2IPCHECK); preserved
//	0x14 cRefSize   size of the reference area = offset of the address data
//	ADDRESS_HEADER     {cEntries, cAddresses}
//	ADDRESS_LIST_ENTRY {iFamily, cAddresses (mask counted), cFullBytes,
//	                    LastByte, iFirstAddress}  (one per distinct mask)
//	NAME_HEADER        {cEntries, cNames}
//	address data: per entry its 4-byte mask, then its addresses
//
// All DWORDs are little-endian; masks and addresses are in network byte
// order. Self-relative offsets carry bit 31 (MAKEREF(a) = a|0x80000000,
// MAKEOFFSET(a) = a&0x7fffffff); the decoder accepts them with or without
// the bit, as MAKEOFFSET does.
//
// Null versus empty: an unset property (null) means "Only the list below"
// with an empty list (closed); a zero-length value means "All except the
// list below" with an empty list (OPEN) [S8 Salt win_smtp_server].
//
// Every point that no public source confirms is a named constant or
// function in the block below, so it can be corrected in one edit.

// --- UNVERIFIED points (single place of correction) -----------------------

const (
	// relayForAuthEnabled is the value written to RelayForAuth to let
	// authenticated clients relay. UNVERIFIED: the Windows 2003 metabase
	// reference says -1 [S2], the IIS 6.0 SDK says 1 [S3]. Readers treat
	// any non-zero value as enabled.
	relayForAuthEnabled = -1
	// RelayForAuthDisabled clears "Allow all computers which successfully
	// authenticate to relay".
	RelayForAuthDisabled = 0

	// routeActionDomainRelay is the RouteAction bit of a remote domain
	// (IIsSmtpDomainSetting) for "Allow incoming mail to be relayed to
	// this domain". UNVERIFIED: SMTP_DOMAIN_RELAY 0x1000 from a community
	// flag table [S4].
	routeActionDomainRelay = 0x1000

	// relayListDefaultFlags is dwFlags for lists built from scratch (1 in
	// every public sample; existing flags are preserved).
	relayListDefaultFlags = 1
)

// maskEntryBytes returns the cFullBytes and LastByte fields of an
// ADDRESS_LIST_ENTRY for mask. Verified only for /32 (4, 0) [S8, S12].
// UNVERIFIED for other masks: assumed to be the number of leading 0xFF
// bytes and the value of the next mask byte (/24 -> 3,0; /20 -> 2,0xF0).
// The decoder reads the mask itself from the address data and ignores
// these two fields.
func maskEntryBytes(mask [4]byte) (fullBytes, lastByte uint32) {
	n := 0
	for n < 4 && mask[n] == 0xFF {
		n++
	}
	if n == 4 {
		return 4, 0
	}
	return uint32(n), uint32(mask[n])
}

// relayListGrantByDefault decides between "Only the list below" (false)
// and "All except the list below" (true) for a non-empty blob. The samples
// carry no explicit GrantByDefault field (inferred, UNVERIFIED): the grant
// ADDRESS_HEADER having entries means "only the list below". A blob with
// no grant entries at all is read as "all except", the reading that flags
// a possible open relay rather than hiding one.
func relayListGrantByDefault(grantEntries uint32) bool {
	return grantEntries == 0
}

// relayListSorted: the addresses under one mask are kept in ascending byte
// order (memcmp order of the network-byte-order addresses), and IIS is
// assumed to rely on that order. UNVERIFIED: the only source is a comment
// in Microsoft's rdns.hxx, "test all mask for this family, do bsearch on
// each"; public scripts append addresses unsorted, and no
// sample shows what IIS does with such a list or which order its search
// expects. Consequence if IIS binary-searches a list in an order other
// than the one it expects: it misses some listed addresses, so allowed
// hosts are refused relay. For the grant lists relaylock writes, that
// fails closed: no address outside the list gains relay, and the re-test
// from an allowed host (or the operator's complaint) shows it. (A deny
// list out of order would fail open; relaylock never writes deny lists and
// reports every deny-mode list as high.) So relaylock always writes sorted
// lists (Normalize), reports a stored list that is not sorted
// (FindingUnsorted), rewrites it on remediate although its entries are
// already the requested ones, and the lab decides relaying as a binary
// search would.
const relayListSorted = true

// relayListDenyFirst says where a deny list sits: deny ADDRESS_HEADER at
// 0x18, its entries after it, then the grant header (iGrantAddr = 0x18 + 8
// + 20*kDeny), and the address data of deny entries before that of grant
// entries. UNVERIFIED: inferred from the header offsets; no public sample
// with a deny list exists. The decoder follows the offsets in the blob,
// whatever their order.
const relayListDenyFirst = true

// --- end of UNVERIFIED points ---------------------------------------------

const (
	afINET               = 2 // iFamily of an IPv4 ADDRESS_LIST_ENTRY
	relayListHeaderSize  = 24
	addressHeaderSize    = 8
	addressEntrySize     = 20
	nameHeaderSize       = 8
	selfRelativeBit      = 0x80000000
	maxRelayListBlobSize = 1 << 20 // far above any real list; bounds decoding
)

// ErrRelayList reports a RelayIpList blob that does not follow the
// IPSECLIST layout, or a list that cannot be encoded.
var ErrRelayList = errors.New("malformed RelayIpList")

// IPMask is one relay-list entry: an IPv4 address and its mask, as IIS
// stores it ("IP, MASK" in ADSI IPGrant strings).
type IPMask struct {
	IP   [4]byte
	Mask [4]byte
}

// MarshalText writes "a.b.c.d/m.m.m.m".
func (m IPMask) MarshalText() ([]byte, error) {
	return []byte(netip.AddrFrom4(m.IP).String() + "/" + netip.AddrFrom4(m.Mask).String()), nil
}

// UnmarshalText reads "a.b.c.d/m.m.m.m".
func (m *IPMask) UnmarshalText(t []byte) error {
	ip, mask, ok := strings.Cut(string(t), "/")
	a, err1 := netip.ParseAddr(ip)
	k, err2 := netip.ParseAddr(mask)
	if !ok || err1 != nil || err2 != nil || !a.Is4() || !k.Is4() {
		return fmt.Errorf("%w: entry %q is not IPv4/MASK", ErrRelayList, truncateText(string(t), 40))
	}
	m.IP, m.Mask = a.As4(), k.As4()
	return nil
}

// IPMaskFromPrefix converts an IPv4 prefix.
func IPMaskFromPrefix(p netip.Prefix) (IPMask, error) {
	if !p.Addr().Unmap().Is4() || !p.IsValid() {
		return IPMask{}, fmt.Errorf("%s: IIS relay lists hold IPv4 addresses only: %w", p, ErrRelayList)
	}
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
	var m IPMask
	m.IP = p.Addr().As4()
	bits := uint32(0)
	if p.Bits() > 0 {
		bits = ^uint32(0) << (32 - p.Bits())
	}
	binary.BigEndian.PutUint32(m.Mask[:], bits)
	return m, nil
}

// Contains reports whether a matches the entry (a & mask == ip & mask).
func (m IPMask) Contains(a netip.Addr) bool {
	a = a.Unmap()
	if !a.Is4() {
		return false
	}
	b := a.As4()
	for i := range 4 {
		if b[i]&m.Mask[i] != m.IP[i]&m.Mask[i] {
			return false
		}
	}
	return true
}

// PrefixLen returns the prefix length of a contiguous mask, or -1.
func (m IPMask) PrefixLen() int {
	v := binary.BigEndian.Uint32(m.Mask[:])
	n := 0
	for n < 32 && v&(1<<(31-n)) != 0 {
		n++
	}
	if n < 32 && v<<n != 0 {
		return -1
	}
	return n
}

// String writes "a.b.c.d" for a host, "a.b.c.d/n" for a contiguous mask
// and "a.b.c.d mask m.m.m.m" otherwise.
func (m IPMask) String() string {
	ip := netip.AddrFrom4(m.IP).String()
	switch n := m.PrefixLen(); n {
	case 32:
		return ip
	case -1:
		return ip + " mask " + netip.AddrFrom4(m.Mask).String()
	default:
		return fmt.Sprintf("%s/%d", ip, n)
	}
}

// RelayList is a decoded RelayIpList.
type RelayList struct {
	// Null is an unset property: "Only the list below" with an empty
	// list. The other fields are then zero.
	Null bool `json:"null"`
	// GrantByDefault is "All except the list below": everyone may relay
	// except Deny. False is "Only the list below": only Grant may relay.
	GrantByDefault bool     `json:"grant_by_default"`
	Grant          []IPMask `json:"grant,omitempty"`
	Deny           []IPMask `json:"deny,omitempty"`
	// Flags is the header's dwFlags, preserved on rewrite.
	Flags uint32 `json:"flags"`
	// DenyNames and GrantNames count DNS-name entries (ADSI DomainDeny /
	// DomainGrant), which relaylock does not decode or write.
	DenyNames  uint32 `json:"deny_names,omitempty"`
	GrantNames uint32 `json:"grant_names,omitempty"`
}

// IsOpenToAll reports a list that lets every address relay: zero-length
// ("all except", empty), all except a deny list that is empty, or a grant
// entry with mask 0.0.0.0.
func (l RelayList) IsOpenToAll() bool {
	if l.Null {
		return false
	}
	if l.GrantByDefault {
		return len(l.Deny) == 0
	}
	for _, g := range l.Grant {
		if g.Mask == [4]byte{} {
			return true
		}
	}
	return false
}

// Allows reports whether the list lets client relay (without
// authentication): IIS checks the grant list in "only the list below" mode
// and the deny list in "all except" mode [S6, S11].
func (l RelayList) Allows(client netip.Addr) bool {
	if l.Null {
		return false
	}
	if l.GrantByDefault {
		for _, d := range l.Deny {
			if d.Contains(client) {
				return false
			}
		}
		return true
	}
	for _, g := range l.Grant {
		if g.Contains(client) {
			return true
		}
	}
	return false
}

// Describe is the canonical readable form used in settings rows.
func (l RelayList) Describe() string {
	names := func(ms []IPMask) string {
		s := make([]string, len(ms))
		for i, m := range ms {
			s[i] = m.String()
		}
		return strings.Join(s, ", ")
	}
	switch {
	case l.Null:
		return "only the list below (unset: empty list)"
	case l.GrantByDefault && len(l.Deny) == 0:
		return "all except the list below (empty list: everyone)"
	case l.GrantByDefault:
		return "all except the list below: " + names(l.Deny)
	case len(l.Grant) == 0:
		return "only the list below (empty list)"
	default:
		s := "only the list below: " + names(l.Grant)
		if len(l.Deny) > 0 {
			s += " (ignored deny entries: " + names(l.Deny) + ")"
		}
		return s
	}
}

// StoredSorted reports whether the addresses under each mask appear in
// ascending order, as Encode writes them (relayListSorted): true for every
// list relaylock wrote. Entries are taken in stored order; a run of
// entries with the same mask is one group.
func (l RelayList) StoredSorted() bool {
	sorted := func(ms []IPMask) bool {
		for i := 1; i < len(ms); i++ {
			if ms[i].Mask == ms[i-1].Mask && bytes.Compare(ms[i].IP[:], ms[i-1].IP[:]) <= 0 {
				return false
			}
		}
		return true
	}
	return !relayListSorted || (sorted(l.Grant) && sorted(l.Deny))
}

// Normalize returns the list in the order Encode writes it: entries
// grouped by mask (masks in descending byte order, so /32 first), the
// addresses under each mask masked, deduplicated and sorted ascending
// (IIS binary-searches them, [S13] "bsearch on each").
func (l RelayList) Normalize() RelayList {
	l.Grant = normalizeMasks(l.Grant)
	l.Deny = normalizeMasks(l.Deny)
	if l.Null || (l.GrantByDefault && len(l.Deny) == 0 && len(l.Grant) == 0 && l.DenyNames == 0 && l.GrantNames == 0) {
		l.Flags = 0 // stored as null or zero-length: no header, no flags
	}
	return l
}

func normalizeMasks(ms []IPMask) []IPMask {
	if len(ms) == 0 {
		return nil
	}
	out := make([]IPMask, 0, len(ms))
	for _, m := range ms {
		for i := range 4 {
			m.IP[i] &= m.Mask[i]
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := bytes.Compare(out[i].Mask[:], out[j].Mask[:]); c != 0 {
			return c > 0
		}
		return bytes.Compare(out[i].IP[:], out[j].IP[:]) < 0
	})
	w := 0
	for i, m := range out {
		if i > 0 && m == out[w-1] {
			continue
		}
		out[w] = m
		w++
	}
	return out[:w]
}

// Equal compares two lists semantically: same mode and the same entries
// after normalization (flags and DNS-name counts included).
func (l RelayList) Equal(o RelayList) bool {
	a, b := l.Normalize(), o.Normalize()
	if a.Null != b.Null || a.GrantByDefault != b.GrantByDefault || a.Flags != b.Flags ||
		a.DenyNames != b.DenyNames || a.GrantNames != b.GrantNames ||
		len(a.Grant) != len(b.Grant) || len(a.Deny) != len(b.Deny) {
		return false
	}
	for i := range a.Grant {
		if a.Grant[i] != b.Grant[i] {
			return false
		}
	}
	for i := range a.Deny {
		if a.Deny[i] != b.Deny[i] {
			return false
		}
	}
	return true
}

// EncodeRelayIpList builds the blob for l. It returns nil for a null list
// (the property must then be cleared, not written) and a zero-length,
// non-nil slice for "all except the list below" with an empty list.
// It refuses lists the layout cannot express: "only the list below" with
// an empty grant list (use Null), grant entries in "all except" mode, and
// DNS-name entries.
func EncodeRelayIpList(l RelayList) ([]byte, error) {
	if l.Null {
		return nil, nil
	}
	if l.DenyNames != 0 || l.GrantNames != 0 {
		return nil, fmt.Errorf("%w: DNS-name entries cannot be encoded", ErrRelayList)
	}
	l = l.Normalize()
	if l.GrantByDefault && len(l.Grant) > 0 {
		return nil, fmt.Errorf("%w: grant entries in \"all except the list below\" mode", ErrRelayList)
	}
	if !l.GrantByDefault && len(l.Grant) == 0 {
		return nil, fmt.Errorf("%w: \"only the list below\" with an empty list is the unset (null) property", ErrRelayList)
	}
	if l.GrantByDefault && len(l.Deny) == 0 {
		return []byte{}, nil
	}
	deny, grant := groupByMask(l.Deny), groupByMask(l.Grant)
	denyHdr := uint32(relayListHeaderSize)
	grantHdr := denyHdr + addressHeaderSize + addressEntrySize*uint32(len(deny))
	denyName := grantHdr + addressHeaderSize + addressEntrySize*uint32(len(grant))
	grantName := denyName + nameHeaderSize
	refSize := grantName + nameHeaderSize

	var b []byte
	put := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	put(selfRelativeBit | denyHdr)
	put(selfRelativeBit | grantHdr)
	put(selfRelativeBit | denyName)
	put(selfRelativeBit | grantName)
	put(l.Flags)
	put(refSize)

	data := refSize
	groups := [2][]maskGroup{deny, grant}
	if !relayListDenyFirst {
		groups = [2][]maskGroup{grant, deny}
	}
	offsets := map[*maskGroup]uint32{}
	for gi := range groups {
		for i := range groups[gi] {
			offsets[&groups[gi][i]] = data
			data += 4 * uint32(1+len(groups[gi][i].addrs))
		}
	}
	writeHeader := func(gs []maskGroup) {
		total := 0
		for _, g := range gs {
			total += len(g.addrs)
		}
		put(uint32(len(gs)))
		put(uint32(total))
		for i := range gs {
			full, last := maskEntryBytes(gs[i].mask)
			put(afINET)
			put(uint32(1 + len(gs[i].addrs)))
			put(full)
			put(last)
			put(selfRelativeBit | offsets[&gs[i]])
		}
	}
	if relayListDenyFirst {
		writeHeader(groups[0])
		writeHeader(groups[1])
	} else {
		writeHeader(groups[1])
		writeHeader(groups[0])
	}
	put(0) // deny NAME_HEADER
	put(0)
	put(0) // grant NAME_HEADER
	put(0)
	for gi := range groups {
		for _, g := range groups[gi] {
			b = append(b, g.mask[:]...)
			for _, a := range g.addrs {
				b = append(b, a[:]...)
			}
		}
	}
	return b, nil
}

type maskGroup struct {
	mask  [4]byte
	addrs [][4]byte
}

// groupByMask groups normalized entries (already sorted by mask, then IP).
func groupByMask(ms []IPMask) []maskGroup {
	var gs []maskGroup
	for _, m := range ms {
		if len(gs) == 0 || gs[len(gs)-1].mask != m.Mask {
			gs = append(gs, maskGroup{mask: m.Mask})
		}
		g := &gs[len(gs)-1]
		g.addrs = append(g.addrs, m.IP)
	}
	return gs
}

// DecodeRelayIpList decodes a blob. A nil blob is the null (unset)
// property; a zero-length non-nil blob is "all except the list below"
// with an empty list. Every count and offset is checked against the blob
// length before use, so hostile blobs cannot cause large allocations.
func DecodeRelayIpList(b []byte) (RelayList, error) {
	if b == nil {
		return RelayList{Null: true}, nil
	}
	if len(b) == 0 {
		return RelayList{GrantByDefault: true}, nil
	}
	if len(b) > maxRelayListBlobSize {
		return RelayList{}, fmt.Errorf("%w: %d bytes, more than %d", ErrRelayList, len(b), maxRelayListBlobSize)
	}
	if len(b) < relayListHeaderSize {
		return RelayList{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrRelayList, len(b), relayListHeaderSize)
	}
	u32 := func(off uint32) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
	n := uint32(len(b))
	refSize := u32(0x14)
	if refSize < relayListHeaderSize || refSize > n {
		return RelayList{}, fmt.Errorf("%w: reference area size %d outside 24..%d", ErrRelayList, refSize, n)
	}
	// within checks that [off, off+size) lies in the reference area.
	within := func(what string, off, size uint32) error {
		if off < relayListHeaderSize || uint64(off)+uint64(size) > uint64(refSize) {
			return fmt.Errorf("%w: %s at offset %d (size %d) outside the reference area 24..%d", ErrRelayList, what, off, size, refSize)
		}
		return nil
	}
	l := RelayList{Flags: u32(0x10)}
	readList := func(what string, ref uint32) ([]IPMask, uint32, error) {
		hdr := ref &^ selfRelativeBit
		if err := within(what+" address header", hdr, addressHeaderSize); err != nil {
			return nil, 0, err
		}
		entries, total := u32(hdr), u32(hdr+4)
		if uint64(entries)*addressEntrySize > uint64(refSize-hdr-addressHeaderSize) {
			return nil, 0, fmt.Errorf("%w: %s header claims %d entries, more than fit", ErrRelayList, what, entries)
		}
		if uint64(total)*4 > uint64(n) {
			return nil, 0, fmt.Errorf("%w: %s header claims %d addresses, more than fit", ErrRelayList, what, total)
		}
		out := make([]IPMask, 0, total)
		sum := uint64(0)
		for i := uint32(0); i < entries; i++ {
			e := hdr + addressHeaderSize + i*addressEntrySize
			family, count, first := u32(e), u32(e+4), u32(e+16)&^selfRelativeBit
			if family != afINET {
				return nil, 0, fmt.Errorf("%w: %s entry %d: address family %d, only AF_INET (2) is supported", ErrRelayList, what, i, family)
			}
			if count == 0 {
				return nil, 0, fmt.Errorf("%w: %s entry %d: zero count (the mask itself is counted)", ErrRelayList, what, i)
			}
			if first < refSize || uint64(first)+4*uint64(count) > uint64(n) {
				return nil, 0, fmt.Errorf("%w: %s entry %d: %d values at offset %d outside the address data %d..%d", ErrRelayList, what, i, count, first, refSize, n)
			}
			sum += uint64(count - 1)
			if sum > uint64(total) {
				return nil, 0, fmt.Errorf("%w: %s entries hold more addresses than the header's %d", ErrRelayList, what, total)
			}
			var mask [4]byte
			copy(mask[:], b[first:first+4])
			for j := uint32(1); j < count; j++ {
				var ip [4]byte
				copy(ip[:], b[first+4*j:])
				out = append(out, IPMask{IP: ip, Mask: mask})
			}
		}
		if sum != uint64(total) {
			return nil, 0, fmt.Errorf("%w: %s header claims %d addresses, entries hold %d", ErrRelayList, what, total, sum)
		}
		if len(out) == 0 {
			out = nil
		}
		return out, entries, nil
	}
	readNames := func(what string, ref uint32) (uint32, error) {
		hdr := ref &^ selfRelativeBit
		if err := within(what+" name header", hdr, nameHeaderSize); err != nil {
			return 0, err
		}
		return u32(hdr), nil
	}
	var err error
	var grantEntries uint32
	if l.Deny, _, err = readList("deny", u32(0x00)); err != nil {
		return RelayList{}, err
	}
	if l.Grant, grantEntries, err = readList("grant", u32(0x04)); err != nil {
		return RelayList{}, err
	}
	if l.DenyNames, err = readNames("deny", u32(0x08)); err != nil {
		return RelayList{}, err
	}
	if l.GrantNames, err = readNames("grant", u32(0x0C)); err != nil {
		return RelayList{}, err
	}
	l.GrantByDefault = relayListGrantByDefault(grantEntries)
	return l, nil
}

// RelayListBlob is a RelayIpList value as read from or written to a host:
// null (unset), zero-length, or bytes. Its text form (MarshalText) is
// "NULL", "EMPTY" or upper-case hex: the form scripts exchange and
// settings rows show.
type RelayListBlob struct {
	Null  bool
	Bytes []byte
}

// String returns "NULL", "EMPTY" or upper-case hex.
func (b RelayListBlob) String() string {
	switch {
	case b.Null:
		return "NULL"
	case len(b.Bytes) == 0:
		return "EMPTY"
	default:
		return strings.ToUpper(hex.EncodeToString(b.Bytes))
	}
}

// MarshalText implements encoding.TextMarshaler.
func (b RelayListBlob) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *RelayListBlob) UnmarshalText(t []byte) error {
	v, err := ParseRelayListBlob(string(t))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ParseRelayListBlob parses "NULL", "EMPTY" or hex (either case).
func ParseRelayListBlob(s string) (RelayListBlob, error) {
	switch s {
	case "NULL":
		return RelayListBlob{Null: true}, nil
	case "EMPTY":
		return RelayListBlob{Bytes: []byte{}}, nil
	}
	if len(s) > 2*maxRelayListBlobSize {
		return RelayListBlob{}, fmt.Errorf("%w: hex value longer than %d bytes", ErrRelayList, maxRelayListBlobSize)
	}
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) == 0 {
		return RelayListBlob{}, fmt.Errorf("%w: not NULL, EMPTY or hex: %q", ErrRelayList, truncateText(s, 40))
	}
	return RelayListBlob{Bytes: raw}, nil
}

// Decode decodes the blob.
func (b RelayListBlob) Decode() (RelayList, error) {
	if b.Null {
		return DecodeRelayIpList(nil)
	}
	if b.Bytes == nil {
		return DecodeRelayIpList([]byte{})
	}
	return DecodeRelayIpList(b.Bytes)
}

// Equal compares two blobs byte for byte (null and zero-length differ).
func (b RelayListBlob) Equal(o RelayListBlob) bool {
	if b.Null || o.Null {
		return b.Null == o.Null
	}
	return bytes.Equal(b.Bytes, o.Bytes)
}

// BlobOf encodes l as a RelayListBlob.
func BlobOf(l RelayList) (RelayListBlob, error) {
	if l.Null {
		return RelayListBlob{Null: true}, nil
	}
	raw, err := EncodeRelayIpList(l)
	if err != nil {
		return RelayListBlob{}, err
	}
	return RelayListBlob{Bytes: raw}, nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
