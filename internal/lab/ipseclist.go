package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// The lab's own codec for the IIS 6 metabase type IPSECLIST, the value of
// RelayIpList (metabase ID 36970). It is written from the structures of
// Microsoft's rdns.hxx (ADDRESS_CHECK's SELFREFINDEX header, ADDRESS_HEADER,
// ADDRESS_LIST_ENTRY, NAME_HEADER) and the public samples in
// docs/windows-relay.md §1.2, independently of remediate's codec: the lab
// plays IIS, so it decides relaying and answers ADSI from its own reading
// of the bytes the driver writes, and a bug in remediate's encoder cannot
// hide behind the same bug in its decoder.
//
//	header   6 DWORDs: iDenyAddr, iGrantAddr, iDenyName, iGrantName
//	         (self-relative, MAKEREF = offset|0x80000000), dwFlags, cRefSize
//	ADDRESS_HEADER     {cEntries, cAddresses}
//	ADDRESS_LIST_ENTRY {iFamily, cAddresses (the mask counts), cFullBytes,
//	                    LastByte, iFirstAddress (self-relative)}
//	NAME_HEADER        {cEntries, cNames}
//	address data       per entry: the mask, then the addresses
//
// DWORDs are little-endian, masks and addresses network byte order.

// ipsecEntry is one address under its mask, both in network byte order.
type ipsecEntry struct {
	addr, mask [4]byte
}

// ipsecHost is the entry for one host (mask 255.255.255.255).
func ipsecHost(ip string) ipsecEntry {
	return ipsecPrefix(ip + "/32")
}

// ipsecPrefix is the entry for an IPv4 prefix; it panics on anything else
// (scenario data only).
func ipsecPrefix(s string) ipsecEntry {
	p := netip.MustParsePrefix(s).Masked()
	if !p.Addr().Is4() {
		panic("lab: IPSECLIST holds IPv4 only: " + s)
	}
	var e ipsecEntry
	e.addr = p.Addr().As4()
	binary.BigEndian.PutUint32(e.mask[:], ^uint32(0)<<(32-p.Bits()))
	if p.Bits() == 0 {
		e.mask = [4]byte{}
	}
	return e
}

func (e ipsecEntry) adsi() string {
	return netip.AddrFrom4(e.addr).String() + ", " + netip.AddrFrom4(e.mask).String()
}

// ipsecList is a decoded IPSECLIST value.
type ipsecList struct {
	// grantByDefault is ADSI's GrantByDefault: "All except the list
	// below". The value has no field for it; a grant header without
	// entries reads as grant-by-default (docs/windows-relay.md §1.2, an
	// inference from the samples: a zero-length value, the GUI's "All
	// except" with an empty list, has none).
	grantByDefault bool
	grant, deny    []ipsecEntry
	flags          uint32
}

const (
	ipsecRef          = 0x80000000 // MAKEREF's bit
	ipsecHeaderLen    = 6 * 4
	ipsecAddrHdrLen   = 2 * 4
	ipsecEntryLen     = 5 * 4
	ipsecNameHdrLen   = 2 * 4
	ipsecAFInet       = 2       // AF_INET
	ipsecMaxValueSize = 1 << 20 // the lab refuses larger values outright
)

// errIPSecList: bytes that are not an IPSECLIST the lab can read.
var errIPSecList = errors.New("lab: not an IPSECLIST value")

// encodeIPSecList lays l out as IIS stores it: the header, the deny
// ADDRESS_HEADER and its entries, the grant ADDRESS_HEADER and its
// entries, the two empty NAME_HEADERs, then the address data (deny before
// grant). One ADDRESS_LIST_ENTRY covers each run of entries with the same
// mask, in the order given. "All except" with no deny entry is the
// zero-length value.
func encodeIPSecList(l ipsecList) []byte {
	if l.grantByDefault && len(l.deny) == 0 {
		return []byte{}
	}
	type run struct {
		mask  [4]byte
		addrs [][4]byte
	}
	runs := func(es []ipsecEntry) []run {
		var rs []run
		for _, e := range es {
			if len(rs) == 0 || rs[len(rs)-1].mask != e.mask {
				rs = append(rs, run{mask: e.mask})
			}
			rs[len(rs)-1].addrs = append(rs[len(rs)-1].addrs, e.addr)
		}
		return rs
	}
	deny, grant := runs(l.deny), runs(l.grant)
	denyAt := uint32(ipsecHeaderLen)
	grantAt := denyAt + ipsecAddrHdrLen + ipsecEntryLen*uint32(len(deny))
	denyNameAt := grantAt + ipsecAddrHdrLen + ipsecEntryLen*uint32(len(grant))
	grantNameAt := denyNameAt + ipsecNameHdrLen
	refSize := grantNameAt + ipsecNameHdrLen

	out := make([]byte, 0, refSize+64)
	dw := func(v uint32) { out = binary.LittleEndian.AppendUint32(out, v) }
	dw(denyAt | ipsecRef)
	dw(grantAt | ipsecRef)
	dw(denyNameAt | ipsecRef)
	dw(grantNameAt | ipsecRef)
	dw(l.flags)
	dw(refSize)
	data := refSize
	header := func(rs []run) {
		n := 0
		for _, r := range rs {
			n += len(r.addrs)
		}
		dw(uint32(len(rs)))
		dw(uint32(n))
		for _, r := range rs {
			full := uint32(0)
			for full < 4 && r.mask[full] == 0xFF {
				full++
			}
			last := uint32(0)
			if full < 4 {
				last = uint32(r.mask[full])
			}
			dw(ipsecAFInet)
			dw(uint32(1 + len(r.addrs)))
			dw(full)
			dw(last)
			dw(data | ipsecRef)
			data += 4 * uint32(1+len(r.addrs))
		}
	}
	header(deny)
	header(grant)
	dw(0) // deny NAME_HEADER
	dw(0)
	dw(0) // grant NAME_HEADER
	dw(0)
	for _, rs := range [][]run{deny, grant} {
		for _, r := range rs {
			out = append(out, r.mask[:]...)
			for _, a := range r.addrs {
				out = append(out, a[:]...)
			}
		}
	}
	return out
}

// decodeIPSecList reads a non-empty IPSECLIST value, following the offsets
// it holds and checking every one against the value's length. A value with
// DNS-name entries is refused: the lab does not simulate them.
func decodeIPSecList(b []byte) (ipsecList, error) {
	if len(b) == 0 {
		return ipsecList{grantByDefault: true}, nil
	}
	if len(b) < ipsecHeaderLen || len(b) > ipsecMaxValueSize {
		return ipsecList{}, fmt.Errorf("%w: %d bytes", errIPSecList, len(b))
	}
	size := uint64(len(b))
	at := func(off uint64) (uint32, error) {
		if off+4 > size {
			return 0, fmt.Errorf("%w: offset %d beyond its %d bytes", errIPSecList, off, size)
		}
		return binary.LittleEndian.Uint32(b[off:]), nil
	}
	var hdr [6]uint32
	for i := range hdr {
		hdr[i], _ = at(uint64(4 * i))
	}
	refSize := uint64(hdr[5])
	if refSize < ipsecHeaderLen || refSize > size {
		return ipsecList{}, fmt.Errorf("%w: cRefSize %d", errIPSecList, refSize)
	}
	l := ipsecList{flags: hdr[4]}
	addrList := func(ref uint32) (es []ipsecEntry, entries uint32, err error) {
		h := uint64(ref &^ ipsecRef)
		if h < ipsecHeaderLen || h+ipsecAddrHdrLen > refSize {
			return nil, 0, fmt.Errorf("%w: ADDRESS_HEADER at %d", errIPSecList, h)
		}
		entries, _ = at(h)
		addrs, _ := at(h + 4)
		if h+ipsecAddrHdrLen+uint64(entries)*ipsecEntryLen > refSize || uint64(addrs)*4 > size {
			return nil, 0, fmt.Errorf("%w: ADDRESS_HEADER {%d, %d}", errIPSecList, entries, addrs)
		}
		counted := uint64(0)
		for i := range uint64(entries) {
			e := h + ipsecAddrHdrLen + i*ipsecEntryLen
			family, _ := at(e)
			n, _ := at(e + 4)
			first, _ := at(e + 16)
			data := uint64(first &^ ipsecRef)
			if family != ipsecAFInet || n == 0 || data < refSize || data+4*uint64(n) > size {
				return nil, 0, fmt.Errorf("%w: ADDRESS_LIST_ENTRY {family %d, %d values at %d}", errIPSecList, family, n, data)
			}
			counted += uint64(n - 1)
			if counted > uint64(addrs) {
				break
			}
			var mask [4]byte
			copy(mask[:], b[data:])
			for j := uint64(1); j < uint64(n); j++ {
				var a [4]byte
				copy(a[:], b[data+4*j:])
				es = append(es, ipsecEntry{addr: a, mask: mask})
			}
		}
		if counted != uint64(addrs) {
			return nil, 0, fmt.Errorf("%w: ADDRESS_HEADER counts %d addresses, its entries %d", errIPSecList, addrs, counted)
		}
		return es, entries, nil
	}
	names := func(ref uint32) (uint32, error) {
		h := uint64(ref &^ ipsecRef)
		if h < ipsecHeaderLen || h+ipsecNameHdrLen > refSize {
			return 0, fmt.Errorf("%w: NAME_HEADER at %d", errIPSecList, h)
		}
		return at(h)
	}
	var err error
	var grantEntries uint32
	if l.deny, _, err = addrList(hdr[0]); err != nil {
		return ipsecList{}, err
	}
	if l.grant, grantEntries, err = addrList(hdr[1]); err != nil {
		return ipsecList{}, err
	}
	for _, ref := range []uint32{hdr[2], hdr[3]} {
		n, err := names(ref)
		if err != nil {
			return ipsecList{}, err
		}
		if n != 0 {
			return ipsecList{}, fmt.Errorf("%w: DNS-name entries (not simulated)", errIPSecList)
		}
	}
	l.grantByDefault = grantEntries == 0
	return l, nil
}
