package dnstest

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func ask(t *testing.T, network, addr, name string, qtype uint16) (*dns.Msg, error) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: network, Timeout: time.Second}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

func TestServerAnswers(t *testing.T) {
	srv := ServeServer(t, Zone{Records: []string{
		"ex.test MX 10 mx.ex.test.",
		"mx.ex.test A 127.0.0.1",
		"alias.ex.test CNAME mx.ex.test.",
		"deep.sub.ex.test TXT x",
	}})
	addr := srv.Addr()
	tests := []struct {
		name, net, q string
		qtype        uint16
		rcode        int
		answers      int
	}{
		{"mx over udp", "udp", "ex.test", dns.TypeMX, dns.RcodeSuccess, 1},
		{"mx over tcp on the same port", "tcp", "EX.TEST", dns.TypeMX, dns.RcodeSuccess, 1},
		{"cname chased", "udp", "alias.ex.test", dns.TypeA, dns.RcodeSuccess, 2},
		{"nodata", "udp", "mx.ex.test", dns.TypeAAAA, dns.RcodeSuccess, 0},
		{"empty non-terminal", "udp", "sub.ex.test", dns.TypeA, dns.RcodeSuccess, 0},
		{"nxdomain", "udp", "nope.ex.test", dns.TypeA, dns.RcodeNameError, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ask(t, tt.net, addr, tt.q, tt.qtype)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tt.rcode || len(r.Answer) != tt.answers {
				t.Errorf("rcode %s, %d answers; want %s, %d", dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tt.rcode], tt.answers)
			}
		})
	}
	qs := srv.Queries()
	if len(qs) != len(tests) || qs[1].Net != "tcp" || qs[1].Name != "ex.test." || qs[1].Type != "MX" {
		t.Errorf("queries = %+v", qs)
	}
}

func TestServerFaults(t *testing.T) {
	srv := ServeServer(t, Zone{
		Records: []string{"a.test A 127.0.0.1", "b.test A 127.0.0.1", "c.test A 127.0.0.1", "d.test A 127.0.0.1", "e.test A 127.0.0.1", "f.test A 127.0.0.1"},
		Faults: []Fault{
			{Name: "a.test", Action: Truncate},
			{Name: "b.test", Type: dns.TypeA, Action: ServFail, Times: 1},
			{Name: "c.test", Action: Refused},
			{Name: "d.test.", Action: NXDomain},
			{Name: "e.test", Action: Drop},
			{Name: "f.test", Action: Delay, Delay: 100 * time.Millisecond},
		},
	})
	addr := srv.Addr()

	r, err := ask(t, "udp", addr, "a.test", dns.TypeA)
	if err != nil || !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("truncate over udp: %v %v", r, err)
	}
	if r, err = ask(t, "tcp", addr, "a.test", dns.TypeA); err != nil || r.Truncated || len(r.Answer) != 1 {
		t.Errorf("truncate fault over tcp: %v %v", r, err)
	}
	if r, _ = ask(t, "udp", addr, "b.test", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("first b.test: %s", dns.RcodeToString[r.Rcode])
	}
	if r, _ = ask(t, "udp", addr, "b.test", dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Errorf("second b.test (Times: 1): %s", dns.RcodeToString[r.Rcode])
	}
	if r, _ = ask(t, "udp", addr, "c.test", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("c.test: %s", dns.RcodeToString[r.Rcode])
	}
	if r, _ = ask(t, "udp", addr, "d.test", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("d.test: %s", dns.RcodeToString[r.Rcode])
	}
	_, err = ask(t, "udp", addr, "e.test", dns.TypeA)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("drop: %v, want a timeout", err)
	}
	start := time.Now()
	if r, err = ask(t, "udp", addr, "f.test", dns.TypeA); err != nil || len(r.Answer) != 1 || time.Since(start) < 100*time.Millisecond {
		t.Errorf("delay: %v %v after %v", r, err, time.Since(start))
	}
	var actions []string
	for _, q := range srv.Queries() {
		actions = append(actions, q.Action)
	}
	if got := strings.Join(actions, ","); got != "truncate,,servfail,,refused,nxdomain,drop,delay" {
		t.Errorf("recorded actions %q", got)
	}
}

func TestServerRealTruncation(t *testing.T) {
	z := Zone{}
	for i := 0; i < 60; i++ {
		z.Records = append(z.Records, "big.test TXT \""+strings.Repeat("x", 50)+"\"")
	}
	addr := Serve(t, z)
	r, err := ask(t, "udp", addr, "big.test", dns.TypeTXT)
	if err != nil || !r.Truncated || len(r.Answer) >= 60 {
		t.Fatalf("udp without EDNS: truncated %v, %d answers, %v", r != nil && r.Truncated, len(r.Answer), err)
	}
	if r, err = ask(t, "tcp", addr, "big.test", dns.TypeTXT); err != nil || r.Truncated || len(r.Answer) != 60 {
		t.Fatalf("tcp: %v", err)
	}
}

func TestServerLifecycle(t *testing.T) {
	s, err := NewServer(MailZone("demo.test", "mx.demo.test", "127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ListenAndServe("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err == nil {
		t.Error("second start accepted")
	}
	if err := s.Add(Zone{Records: []string{"late.test AAAA ::1"}}); err != nil {
		t.Fatal(err)
	}
	if r, err := ask(t, "udp", s.Addr(), "late.test", dns.TypeAAAA); err != nil || len(r.Answer) != 1 {
		t.Errorf("record added while running: %v %v", r, err)
	}
	if r, err := ask(t, "udp", s.Addr(), "demo.test", dns.TypeMX); err != nil || len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), "mx.demo.test.") {
		t.Errorf("MailZone: %v %v", r, err)
	}
	addr := s.Addr()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("still listening after Close")
	}
	if _, err := NewServer(Zone{Records: []string{"bad record here"}}); err == nil {
		t.Error("bad record accepted")
	}
}
