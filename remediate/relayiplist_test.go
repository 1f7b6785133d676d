package remediate

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// Sample A (docs/windows-relay.md §1.2): GUI "Only the list below" = {127.0.0.1}
// [S8 Salt docstring, S9].
var sampleA = []byte{
	24, 0, 0, 128, 32, 0, 0, 128, 60, 0, 0, 128, 68, 0, 0, 128,
	1, 0, 0, 0, 76, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0,
	1, 0, 0, 0, 1, 0, 0, 0,
	2, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 76, 0, 0, 128,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	255, 255, 255, 255, 127, 0, 0, 1,
}

// Sample B template [S12]: Sample A without the address, counts 0/1.
var sampleBTemplate = []byte{
	24, 0, 0, 128, 32, 0, 0, 128, 60, 0, 0, 128, 68, 0, 0, 128,
	1, 0, 0, 0, 76, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0,
	1, 0, 0, 0, 0, 0, 0, 0,
	2, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 76, 0, 0, 128,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	255, 255, 255, 255,
}

// The 88-byte example: Sample B after "+= 2" with 127.0.0.1, 192.168.1.10.
var sampleB88 = []byte{
	24, 0, 0, 128, 32, 0, 0, 128, 60, 0, 0, 128, 68, 0, 0, 128, 1, 0, 0, 0, 76, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0,
	2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 76, 0, 0, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255,
	127, 0, 0, 1, 192, 168, 1, 10,
}

func host(s string) IPMask {
	m, err := IPMaskFromPrefix(netip.PrefixFrom(netip.MustParseAddr(s), 32))
	if err != nil {
		panic(err)
	}
	return m
}

func prefix(s string) IPMask {
	m, err := IPMaskFromPrefix(netip.MustParsePrefix(s))
	if err != nil {
		panic(err)
	}
	return m
}

func TestRelayIpListSamples(t *testing.T) {
	tests := []struct {
		name   string
		blob   []byte
		want   RelayList
		encode bool // the blob is what EncodeRelayIpList writes for want
	}{
		{"sample A 127.0.0.1", sampleA, RelayList{Grant: []IPMask{host("127.0.0.1")}, Flags: 1}, true},
		{"sample B 88 bytes", sampleB88, RelayList{Grant: []IPMask{host("127.0.0.1"), host("192.168.1.10")}, Flags: 1}, true},
		{"sample B template (only the list, no address)", sampleBTemplate, RelayList{Flags: 1}, false},
		{"zero-length: all except the list below, empty", []byte{}, RelayList{GrantByDefault: true}, true},
		{"null: only the list below, empty", nil, RelayList{Null: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRelayIpList(tt.blob)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !got.Equal(tt.want) {
				t.Fatalf("decode = %+v (%s), want %+v", got, got.Describe(), tt.want)
			}
			if !tt.encode {
				return
			}
			enc, err := EncodeRelayIpList(tt.want)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(enc, tt.blob) || (enc == nil) != (tt.blob == nil) {
				t.Fatalf("encode =\n%v\nwant\n%v", enc, tt.blob)
			}
		})
	}
}

func TestRelayIpListSemantics(t *testing.T) {
	p := netip.MustParseAddr("198.51.100.7")
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name       string
		l          RelayList
		openToAll  bool
		prober, lo bool
	}{
		{"null", RelayList{Null: true}, false, false, false},
		{"all except empty", RelayList{GrantByDefault: true}, true, true, true},
		{"grant loopback", RelayList{Grant: []IPMask{host("127.0.0.1")}}, false, false, true},
		{"grant everyone", RelayList{Grant: []IPMask{prefix("0.0.0.0/0")}}, true, true, true},
		{"grant prober net", RelayList{Grant: []IPMask{prefix("198.51.100.0/24")}}, false, true, false},
		{"deny prober", RelayList{GrantByDefault: true, Deny: []IPMask{host("198.51.100.7")}}, false, false, true},
		{"deny other", RelayList{GrantByDefault: true, Deny: []IPMask{host("10.0.0.1")}}, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.l.IsOpenToAll(); got != tt.openToAll {
				t.Errorf("IsOpenToAll = %v", got)
			}
			if got := tt.l.Allows(p); got != tt.prober {
				t.Errorf("Allows(prober) = %v", got)
			}
			if got := tt.l.Allows(lo); got != tt.lo {
				t.Errorf("Allows(127.0.0.1) = %v", got)
			}
			// The list survives encoding with the same meaning.
			blob, err := BlobOf(tt.l)
			if err != nil {
				t.Fatal(err)
			}
			back, err := blob.Decode()
			if err != nil {
				t.Fatal(err)
			}
			if back.Allows(p) != tt.prober || back.Allows(lo) != tt.lo {
				t.Errorf("meaning changed after encode/decode: %s", back.Describe())
			}
		})
	}
}

func TestRelayIpListDenyAndMasks(t *testing.T) {
	l := RelayList{GrantByDefault: true, Flags: 1, Deny: []IPMask{host("10.0.0.9"), prefix("192.0.2.0/24"), host("10.0.0.1")}}
	b, err := EncodeRelayIpList(l)
	if err != nil {
		t.Fatal(err)
	}
	// Header: deny header at 0x18, two deny entries (/32, /24), grant header
	// after them, name headers, then data.
	want := []byte{
		0x18, 0, 0, 0x80, 0x48, 0, 0, 0x80, 0x50, 0, 0, 0x80, 0x58, 0, 0, 0x80,
		1, 0, 0, 0, 0x60, 0, 0, 0,
		2, 0, 0, 0, 3, 0, 0, 0,
		2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0x60, 0, 0, 0x80,
		2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0x6C, 0, 0, 0x80,
		0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		255, 255, 255, 255, 10, 0, 0, 1, 10, 0, 0, 9,
		255, 255, 255, 0, 192, 0, 2, 0,
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encode =\n% x\nwant\n% x", b, want)
	}
	got, err := DecodeRelayIpList(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(l) || got.Describe() != "all except the list below: 10.0.0.1, 10.0.0.9, 192.0.2.0/24" {
		t.Fatalf("decode = %s", got.Describe())
	}
}

func TestRelayIpListEncodeRefuses(t *testing.T) {
	for name, l := range map[string]RelayList{
		"only list, empty":        {},
		"grant in all-except":     {GrantByDefault: true, Grant: []IPMask{host("10.0.0.1")}},
		"dns names not supported": {Grant: []IPMask{host("10.0.0.1")}, GrantNames: 1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := EncodeRelayIpList(l); !errors.Is(err, ErrRelayList) {
				t.Fatalf("err = %v, want ErrRelayList", err)
			}
		})
	}
	if _, err := IPMaskFromPrefix(netip.MustParsePrefix("2001:db8::/64")); !errors.Is(err, ErrRelayList) {
		t.Fatalf("IPv6 prefix accepted: %v", err)
	}
}

func TestRelayIpListMalformed(t *testing.T) {
	mut := func(f func(b []byte)) []byte {
		b := bytes.Clone(sampleA)
		f(b)
		return b
	}
	tests := map[string][]byte{
		"short":                    sampleA[:20],
		"truncated data":           sampleA[:80],
		"ref size too big":         mut(func(b []byte) { b[0x14] = 200 }),
		"ref size below header":    mut(func(b []byte) { b[0x14] = 4 }),
		"grant header outside":     mut(func(b []byte) { b[4] = 0xF0 }),
		"huge entry count":         mut(func(b []byte) { b[32], b[35] = 0xFF, 0x7F }),
		"huge address count":       mut(func(b []byte) { b[36], b[39] = 0xFF, 0x7F }),
		"entry count mismatch":     mut(func(b []byte) { b[36] = 2 }),
		"ipv6 family":              mut(func(b []byte) { b[40] = 23 }),
		"zero count":               mut(func(b []byte) { b[44] = 0 }),
		"data offset in refs":      mut(func(b []byte) { b[56] = 24 }),
		"data offset past end":     mut(func(b []byte) { b[56] = 0xFF; b[57] = 0xFF }),
		"name header outside":      mut(func(b []byte) { b[8] = 0xFF }),
		"entry count past the end": mut(func(b []byte) { b[44] = 0xFF; b[45] = 0xFF; b[46] = 0xFF }),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeRelayIpList(b); !errors.Is(err, ErrRelayList) {
				t.Fatalf("err = %v, want ErrRelayList", err)
			}
		})
	}
}

func randomList(r *rand.Rand) RelayList {
	l := RelayList{Flags: uint32(r.IntN(3))}
	n := 1 + r.IntN(12)
	var ms []IPMask
	for range n {
		var ip [4]byte
		for i := range ip {
			ip[i] = byte(r.IntN(256))
		}
		bits := 32
		switch r.IntN(4) {
		case 0:
			bits = r.IntN(33)
		case 1:
			bits = 24
		}
		m, _ := IPMaskFromPrefix(netip.PrefixFrom(netip.AddrFrom4(ip), bits))
		if r.IntN(10) == 0 { // non-contiguous mask, as a hand-edited metabase may hold
			m.Mask[3] = byte(r.IntN(256))
		}
		ms = append(ms, m)
		if r.IntN(5) == 0 {
			ms = append(ms, m) // duplicates collapse
		}
	}
	if r.IntN(2) == 0 {
		l.GrantByDefault = true
		l.Deny = ms
	} else {
		l.Grant = ms
	}
	return l
}

func TestRelayIpListRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		l := randomList(r)
		b, err := EncodeRelayIpList(l)
		if err != nil {
			t.Fatalf("#%d encode %+v: %v", i, l, err)
		}
		got, err := DecodeRelayIpList(b)
		if err != nil {
			t.Fatalf("#%d decode: %v", i, err)
		}
		if !got.Equal(l) {
			t.Fatalf("#%d round trip:\n got %s\nwant %s", i, got.Describe(), l.Normalize().Describe())
		}
		b2, err := EncodeRelayIpList(got)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("#%d encode(decode(b)) != b: %v", i, err)
		}
		// Meaning is kept for random clients.
		for range 8 {
			var a [4]byte
			for k := range a {
				a[k] = byte(r.IntN(256))
			}
			addr := netip.AddrFrom4(a)
			if got.Allows(addr) != l.Allows(addr) {
				t.Fatalf("#%d Allows(%s) changed", i, addr)
			}
		}
	}
}

func TestRelayListBlobText(t *testing.T) {
	for _, s := range []string{"NULL", "EMPTY", "18000080"} {
		b, err := ParseRelayListBlob(s)
		if err != nil || b.String() != s {
			t.Fatalf("%s: %v %v", s, b, err)
		}
	}
	for _, s := range []string{"", "null", "1", "zz", "0x18"} {
		if _, err := ParseRelayListBlob(s); !errors.Is(err, ErrRelayList) {
			t.Fatalf("%q accepted", s)
		}
	}
	null, _ := ParseRelayListBlob("NULL")
	empty, _ := ParseRelayListBlob("EMPTY")
	if null.Equal(empty) || !null.Equal(RelayListBlob{Null: true}) {
		t.Fatal("null and empty must differ")
	}
	js, _ := json.Marshal(struct{ B RelayListBlob }{empty})
	var back struct{ B RelayListBlob }
	if err := json.Unmarshal(js, &back); err != nil || back.B.Null || back.B.Bytes == nil {
		t.Fatalf("json round trip of EMPTY: %s %+v %v", js, back, err)
	}
}

func FuzzDecodeRelayIpList(f *testing.F) {
	f.Add(sampleA)
	f.Add(sampleB88)
	f.Add(sampleBTemplate)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeRelayIpList(b)
		if err != nil {
			if !errors.Is(err, ErrRelayList) {
				t.Fatalf("error not ErrRelayList: %v", err)
			}
			return
		}
		if len(l.Grant)+len(l.Deny) > len(b)/4 {
			t.Fatalf("decoded %d entries from %d bytes", len(l.Grant)+len(l.Deny), len(b))
		}
		_ = l.Describe()
		// What decodes and can be re-encoded decodes again to the same list.
		enc, err := EncodeRelayIpList(l)
		if err != nil {
			return
		}
		back, err := DecodeRelayIpList(enc)
		if err != nil || !back.Equal(l) {
			t.Fatalf("re-encode unstable: %v\n%s\n%s", err, l.Describe(), back.Describe())
		}
	})
}

func BenchmarkRelayIpList(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	var l RelayList
	for range 200 {
		var ip [4]byte
		for i := range ip {
			ip[i] = byte(r.IntN(256))
		}
		m, _ := IPMaskFromPrefix(netip.PrefixFrom(netip.AddrFrom4(ip), 32))
		l.Grant = append(l.Grant, m)
	}
	l.Flags = 1
	blob, err := EncodeRelayIpList(l)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode-200", func(b *testing.B) {
		for b.Loop() {
			if _, err := EncodeRelayIpList(l); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-200", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeRelayIpList(blob); err != nil {
				b.Fatal(err)
			}
		}
	})
}
