package audit

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// nmapTests is the table of docs/relay-probes.md §1 (nmap smtp-open-relay.nse):
// f=from, t=to, D=domain, I=ip literal content, S=server name.
var nmapTests = []struct{ from, to string }{
	{"<>", "<t@D>"}, {"<f@D>", "<t@D>"}, {"<f@S>", "<t@D>"}, {"<f@[I]>", "<t@D>"},
	{"<f@[I]>", "<t%D@[I]>"}, {"<f@[I]>", "<t%D@S>"}, {"<f@[I]>", `<"t@D">`}, {"<f@[I]>", `<"t%D">`},
	{"<f@[I]>", "<t@D@[I]>"}, {"<f@[I]>", `<"t@D"@[I]>`}, {"<f@[I]>", "<t@D@S>"}, {"<f@[I]>", "<@[I]:t@D>"},
	{"<f@[I]>", "<@S:t@D>"}, {"<f@[I]>", "<D!t>"}, {"<f@[I]>", "<D!t@[I]>"}, {"<f@[I]>", "<D!t@S>"},
}

// TestMatrixCoversNmap proves the default matrix is a strict superset of
// nmap's 16 tests: with nmap's single domain D used as both probe and
// victim domain and f = our random local part, every nmap (MAIL, RCPT)
// pair is produced by some case.
func TestMatrixCoversNmap(t *testing.T) {
	cp := caseParams{U: "f", R: "r", P: "D", L: "t", V: "D", T: "target.test", B: "S", M: "", I: "IPv6:2001:db8::1", LO: "IPv6:::1"}
	cp.From = cp.U + "@" + cp.P
	got := map[string]string{}
	for _, c := range matrix {
		from, err1 := expand(c.From, cp)
		to, err2 := expand(c.To, cp)
		if err1 == nil && err2 == nil {
			got[from+" "+to] = c.ID
		}
	}
	r := strings.NewReplacer("f", "f", "t", "t", "D", "D", "I", "IPv6:2001:db8::1", "S", "S")
	covered := map[int]bool{}
	for i, n := range nmapTests {
		key := r.Replace(n.from) + " " + r.Replace(n.to)
		id, ok := got[key]
		if !ok {
			t.Errorf("nmap test %d (%s) has no counterpart", i+1, key)
			continue
		}
		covered[i+1] = true
		for _, c := range matrix {
			if c.ID == id && len(c.Nmap) > 0 && c.Nmap[0] != i+1 {
				t.Errorf("nmap test %d matched %s, which claims nmap %v", i+1, id, c.Nmap)
			}
		}
	}
	if len(covered) != 16 || len(matrix) <= 16 {
		t.Fatalf("covered %d of 16, matrix has %d tests", len(covered), len(matrix))
	}
}

func TestMatrixIDsUnique(t *testing.T) {
	seen := map[string]bool{}
	tls := 0
	for _, c := range append(append([]Case(nil), matrix...), heloVariants...) {
		if seen[c.ID] {
			t.Errorf("duplicate ID %s", c.ID)
		}
		seen[c.ID] = true
		if c.TLS {
			tls++
		}
	}
	for _, id := range []string{"C1", "C2", "C3", "S1", "S12", "R13", "R13b", "R34", "R34b", "R35"} {
		if !seen[id] {
			t.Errorf("missing %s", id)
		}
	}
	// Session variant 38 reruns at least 1-2, 5, 13, 16, 23, 27.
	if tls < 8 {
		t.Errorf("only %d tests rerun after STARTTLS", tls)
	}
}

func TestLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"2001:db8::1":          "IPv6:2001:db8::1",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"fe80::1%eth0":         "IPv6:fe80::1",
		"2001:db8:0:0:0:0:0:5": "IPv6:2001:db8::5",
	} {
		if got := literal(netip.MustParseAddr(in)); got != want {
			t.Errorf("literal(%s) = %s, want %s", in, got, want)
		}
	}
	if loopback(netip.MustParseAddr("2001:db8::1")) != "IPv6:::1" || loopback(netip.MustParseAddr("192.0.2.1")) != "127.0.0.1" {
		t.Error("loopback literal")
	}
}

func TestCheckPath(t *testing.T) {
	l64 := strings.Repeat("a", 64)
	d255 := strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("e", 63)
	tests := []struct {
		name string
		arg  string
		ok   bool
	}{
		{"normal", "<u@example.com>", true},
		{"local 64", "<" + l64 + "@x.test>", true},
		{"local 65", "<" + l64 + "a@x.test>", false},
		{"domain too long", "<u@" + d255 + ".f>", false},
		{"path 257", "<" + strings.Repeat("a", 60) + "@" + strings.Repeat("b.", 98) + "c>", false},
		{"source route checked on mailbox", "<@relay.test:" + l64 + "@x.test>", true},
		{"double @ splits at the last", "<" + l64 + "@v.test@[IPv6:2001:db8::1]>", false},
		{"null path", "<>", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPath("RCPT TO:", tc.arg)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrTooLong) {
				t.Fatalf("err %v is not ErrTooLong", err)
			}
		})
	}
}

// A form that cannot fit is skipped with a reason, never sent.
func TestExpandSkipsTooLong(t *testing.T) {
	er := &epRun{p: &prober{opts: Options{ProbeDomain: "example.net", To: strings.Repeat("v", 40) + "@victim.test", Depth: DepthData}},
		spec: endpointSpec{domain: strings.Repeat("t", 60) + ".example.com", mxHost: "mx.example.com", addr: netip.MustParseAddr("2001:db8::25")},
		res:  &EndpointResult{BannerHost: "mx.example.com"}}
	runs := er.expand(matrix)
	skipped := 0
	for _, r := range runs {
		if err := checkPath("RCPT TO:", r.res.RcptTo); err != nil && r.res.Outcome != OutcomeSkipped {
			t.Errorf("%s sent although too long: %v", r.res.ID, err)
		}
		if r.res.Outcome == OutcomeSkipped {
			skipped++
			if r.res.Reason == "" {
				t.Errorf("%s skipped without a reason", r.res.ID)
			}
		}
		if r.res.ID == "S4" && r.res.MailFrom != "" && !strings.Contains(r.res.MailFrom, "@[IPv6:2001:db8::25]>") {
			t.Errorf("S4 sender %s lacks the IPv6 literal", r.res.MailFrom)
		}
	}
	if skipped == 0 {
		t.Error("expected some forms to be skipped (R17 local part > 64)")
	}
}

func TestNewToken(t *testing.T) {
	a, b := NewToken(), NewToken()
	if a == b || len(a) != 18 || strings.ToLower(a) != a {
		t.Fatalf("tokens %q %q", a, b)
	}
}

// TestMatrixReturnsCopy proves a caller cannot change the tests a run
// makes through the slice Matrix returns.
func TestMatrixReturnsCopy(t *testing.T) {
	m := Matrix()
	if len(m) != len(matrix) || len(m) == 0 {
		t.Fatalf("Matrix() has %d cases, the matrix %d", len(m), len(matrix))
	}
	id, to := matrix[0].ID, matrix[0].To
	m[0].ID, m[0].To = "X", "<x@example.invalid>"
	if matrix[0].ID != id || matrix[0].To != to {
		t.Fatalf("changing the copy changed the matrix: %+v", matrix[0])
	}
	if again := Matrix(); again[0].ID != id || len(again) != len(matrix) {
		t.Fatalf("a second Matrix() sees the change: %+v", again[0])
	}
}
