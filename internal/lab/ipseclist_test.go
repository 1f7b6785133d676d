package lab

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// The samples of docs/windows-relay.md §1.2, typed from the document (not
// produced by any encoder of this repository).
var (
	// Sample A: "Only the list below" = {127.0.0.1}, 84 bytes.
	docSampleA = []byte{
		24, 0, 0, 128, 32, 0, 0, 128, 60, 0, 0, 128, 68, 0, 0, 128, 1, 0, 0, 0, 76, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0,
		2, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 76, 0, 0, 128,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		255, 255, 255, 255, 127, 0, 0, 1,
	}
	// Sample B: the 80-byte template (Sample A without its address, counts
	// 0 and 1) with bytes 36 and 44 increased by 2 and two addresses
	// appended.
	docSampleB = func() []byte {
		b := slices.Clone(docSampleA[:80])
		b[36], b[44] = 0, 1 // the template's counts
		b[36] += 2
		b[44] += 2
		return append(b, 127, 0, 0, 1, 192, 168, 1, 10)
	}()
)

func TestIPSecListDocumentedSamples(t *testing.T) {
	tests := []struct {
		name   string
		blob   []byte
		want   ipsecList
		encode bool // encodeIPSecList(want) must give blob
	}{
		{"sample A", docSampleA, ipsecList{grant: []ipsecEntry{ipsecHost("127.0.0.1")}, flags: 1}, true},
		{"sample B", docSampleB, ipsecList{grant: []ipsecEntry{ipsecHost("127.0.0.1"), ipsecHost("192.168.1.10")}, flags: 1}, true},
		{"zero-length: all except, empty", []byte{}, ipsecList{grantByDefault: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeIPSecList(tt.blob)
			if err != nil {
				t.Fatal(err)
			}
			if got.grantByDefault != tt.want.grantByDefault || got.flags != tt.want.flags ||
				!slices.Equal(got.grant, tt.want.grant) || !slices.Equal(got.deny, tt.want.deny) {
				t.Fatalf("decode = %+v, want %+v", got, tt.want)
			}
			if tt.encode {
				if enc := encodeIPSecList(tt.want); !bytes.Equal(enc, tt.blob) {
					t.Fatalf("encode = %v\nwant     %v", enc, tt.blob)
				}
			}
		})
	}
}

func TestIPSecListRoundTrip(t *testing.T) {
	for _, l := range []ipsecList{
		{grantByDefault: true, deny: []ipsecEntry{ipsecHost("192.0.2.66")}, flags: 1},
		{grant: []ipsecEntry{ipsecPrefix("0.0.0.0/0")}, flags: 1},
		{grant: []ipsecEntry{ipsecHost("10.0.0.5"), ipsecHost("127.0.0.1"), ipsecPrefix("192.168.0.0/16"), ipsecPrefix("172.16.0.0/12")}, flags: 7},
	} {
		got, err := decodeIPSecList(encodeIPSecList(l))
		if err != nil {
			t.Fatal(err)
		}
		if got.grantByDefault != l.grantByDefault || got.flags != l.flags || !slices.Equal(got.grant, l.grant) || !slices.Equal(got.deny, l.deny) {
			t.Errorf("round trip of %+v = %+v", l, got)
		}
	}
	// ADSI shows masks in dotted form.
	if v := adsiViewOf("SmtpSvc/1", blobOf(ipsecList{grant: []ipsecEntry{ipsecPrefix("172.16.0.0/12")}, flags: 1})); !v.Present || v.GrantByDefault || !slices.Equal(v.IPGrant, []string{"172.16.0.0, 255.240.0.0"}) {
		t.Errorf("ADSI view %+v", v)
	}
}

func TestIPSecListRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"short":           docSampleA[:20],
		"cRefSize beyond": append(slices.Clone(docSampleA[:20]), 255, 0, 0, 0),
		"truncated data":  docSampleA[:80],
		"family 23":       func() []byte { b := slices.Clone(docSampleA); b[40] = 23; return b }(),
		"count mismatch":  func() []byte { b := slices.Clone(docSampleA); b[36] = 3; return b }(),
		"dns names":       func() []byte { b := slices.Clone(docSampleA); b[60] = 1; return b }(),
	} {
		if _, err := decodeIPSecList(b); !errors.Is(err, errIPSecList) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestRemoteDomainMatches(t *testing.T) {
	for _, tt := range []struct {
		pattern, domain string
		want            bool
	}{
		{"*", "example.org", true},
		{"*.example.com", "mail.example.com", true},
		{"*.example.com", "MAIL.Example.COM.", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "badexample.com", false},
		{"example.com", "example.com", true},
		{"example.com", "sub.example.com", false},
		{"*example.com", "badexample.com", false},
	} {
		if got := remoteDomainMatches(tt.pattern, tt.domain); got != tt.want {
			t.Errorf("remoteDomainMatches(%q, %q) = %v", tt.pattern, tt.domain, got)
		}
	}
	if s, d := iisDomainParts("SmtpSvc/1/Domain/*.example.com"); s != "SmtpSvc/1" || d != "*.example.com" {
		t.Errorf("iisDomainParts = %q, %q", s, d)
	}
}
