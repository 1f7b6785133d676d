package audit

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/miekg/dns"
)

// FuzzParseAnswer feeds arbitrary bytes as a DNS response into the answer
// path: unpacking, CNAME chasing and the evidence strings. Seeds are in
// testdata/fuzz/FuzzParseAnswer (packed answers: MX, CNAME chain, CNAME
// loop, null MX, truncated).
func FuzzParseAnswer(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(data); err != nil || len(m.Question) != 1 {
			return
		}
		q := m.Question[0]
		for _, rr := range m.Answer {
			_ = rr.String() // evidence formatting must not panic
		}
		a, err := parseAnswer(m, q.Name, q.Qtype)
		if len(a.chain) > len(m.Answer) {
			t.Fatalf("chain of %d from %d answers", len(a.chain), len(m.Answer))
		}
		if err != nil {
			return
		}
		for _, rr := range a.rrs {
			if rr.Header().Rrtype != q.Qtype || !strings.EqualFold(rr.Header().Name, a.final) {
				t.Fatalf("record %v is not %s of %s", rr, dns.TypeToString[q.Qtype], a.final)
			}
		}
		if _, err := parseAnswer(m, q.Name+"x.", q.Qtype); err == nil && !strings.EqualFold(q.Name, q.Name+"x.") {
			t.Fatal("answer accepted for another question")
		}
	})
}

// FuzzNormalizeDomain checks that normalised names are ASCII, bounded and
// stable.
func FuzzNormalizeDomain(f *testing.F) {
	for _, s := range []string{"example.com", "Bücher.example.", "xn--bcher-kva.example", "a..b", "例え.テスト", "-x-.test", strings.Repeat("a.", 130)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		out, err := NormalizeDomain(name)
		if err != nil {
			return
		}
		if len(out) > 253 || out == "" || strings.HasSuffix(out, ".") {
			t.Fatalf("NormalizeDomain(%q) = %q", name, out)
		}
		for i := 0; i < len(out); i++ {
			if out[i] >= utf8.RuneSelf || (out[i] >= 'A' && out[i] <= 'Z') {
				t.Fatalf("NormalizeDomain(%q) = %q: not lower-case ASCII", name, out)
			}
		}
		again, err := NormalizeDomain(out)
		if err != nil || again != out {
			t.Fatalf("NormalizeDomain(%q) = %q, but NormalizeDomain(%q) = %q, %v", name, out, out, again, err)
		}
	})
}
