package audit

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/relaylock/relaylock/audit/dnstest"
)

// newTestResolver returns a resolver asking only the given servers, with
// short timeouts so that fault tests stay fast.
func newTestResolver(t *testing.T, servers ...string) *DNSResolver {
	t.Helper()
	r, err := NewDNSResolver(DNSConfig{Servers: servers, Timeout: time.Second, Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func hostNames(hs []MXHost) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Host)
	}
	return out
}

func TestMailHosts(t *testing.T) {
	tests := []struct {
		name    string
		zone    dnstest.Zone
		domain  string
		wantErr []error
		check   func(t *testing.T, res *Resolution, srv *dnstest.Server)
	}{
		{
			name: "mx order by preference",
			zone: dnstest.Zone{Records: []string{
				"ex.test MX 20 b.ex.test.", "ex.test MX 10 a.ex.test.", "ex.test MX 30 c.ex.test.",
				"a.ex.test A 127.0.0.1", "b.ex.test A 127.0.0.2", "c.ex.test AAAA ::1",
			}},
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if got, want := hostNames(res.MX), []string{"a.ex.test", "b.ex.test", "c.ex.test"}; !slices.Equal(got, want) {
					t.Fatalf("order = %v, want %v", got, want)
				}
				if res.MX[0].Preference != 10 || res.MX[2].Preference != 30 {
					t.Errorf("preferences = %+v", res.MX)
				}
				if got := res.MX[2].Addresses; !slices.Equal(got, []string{"::1"}) {
					t.Errorf("c addresses = %v", got)
				}
				for _, h := range res.MX {
					if h.EqualPreference || h.Implicit {
						t.Errorf("%s: unexpected flags %+v", h.Host, h)
					}
				}
			},
		},
		{
			name: "equal preferences sorted by name and flagged",
			zone: dnstest.Zone{Records: []string{
				"ex.test MX 10 z.ex.test.", "ex.test MX 10 a.ex.test.", "ex.test MX 5 m.ex.test.",
				"z.ex.test A 127.0.0.3", "a.ex.test A 127.0.0.1", "m.ex.test A 127.0.0.2",
			}},
			domain: "EX.test.",
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if got, want := hostNames(res.MX), []string{"m.ex.test", "a.ex.test", "z.ex.test"}; !slices.Equal(got, want) {
					t.Fatalf("order = %v, want %v", got, want)
				}
				if res.MX[0].EqualPreference || !res.MX[1].EqualPreference || !res.MX[2].EqualPreference {
					t.Errorf("EqualPreference flags wrong: %+v", res.MX)
				}
			},
		},
		{
			name: "implicit mx",
			zone: dnstest.Zone{Records: []string{
				"ex.test A 127.0.0.9", "ex.test AAAA ::1", "ex.test TXT \"v=spf1 -all\"",
			}},
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if len(res.MX) != 1 || !res.MX[0].Implicit || res.MX[0].Host != "ex.test" || res.MX[0].Preference != 0 {
					t.Fatalf("MX = %+v, want implicit ex.test", res.MX)
				}
				if got := res.MX[0].Addresses; !slices.Equal(got, []string{"127.0.0.9", "::1"}) {
					t.Errorf("addresses = %v", got)
				}
			},
		},
		{
			name:   "null mx has no fallback",
			zone:   dnstest.Zone{Records: []string{"ex.test MX 0 .", "ex.test A 127.0.0.9"}},
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, srv *dnstest.Server) {
				if !res.NullMX || len(res.MX) != 0 || len(res.Notes) != 0 {
					t.Fatalf("res = %+v, want null MX without hosts or notes", res)
				}
				for _, q := range srv.Queries() {
					if q.Type != "MX" {
						t.Errorf("asked %s %s after a null MX", q.Name, q.Type)
					}
				}
			},
		},
		{
			name: "null mx mixed with other mx is reported and wins",
			zone: dnstest.Zone{Records: []string{
				"ex.test MX 0 .", "ex.test MX 10 mx.ex.test.", "mx.ex.test A 127.0.0.1",
			}},
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, srv *dnstest.Server) {
				if !res.NullMX || len(res.MX) != 0 {
					t.Fatalf("res = %+v, want null MX", res)
				}
				if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "mx.ex.test") || !strings.Contains(res.Notes[0], "RFC 7505") {
					t.Errorf("notes = %q", res.Notes)
				}
				if n := len(srv.Queries()); n != 1 {
					t.Errorf("%d queries, want only the MX query", n)
				}
			},
		},
		{
			name: "cname chain of mx target",
			zone: dnstest.Zone{Records: []string{
				"ex.test MX 10 mail.ex.test.",
				"mail.ex.test CNAME alias.ex.net.", "alias.ex.net CNAME real.ex.net.",
				"real.ex.net A 127.0.0.5", "real.ex.net AAAA ::1",
			}},
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				h := res.MX[0]
				if !slices.Equal(h.CNAMEs, []string{"alias.ex.net", "real.ex.net"}) {
					t.Errorf("CNAMEs = %v", h.CNAMEs)
				}
				if !slices.Equal(h.Addresses, []string{"127.0.0.5", "::1"}) {
					t.Errorf("addresses = %v", h.Addresses)
				}
			},
		},
		{
			name: "cname chain split over several answers",
			zone: dnstest.Zone{NoChase: true, Records: []string{
				"ex.test MX 10 mail.ex.test.",
				"mail.ex.test CNAME alias.ex.net.", "alias.ex.net CNAME real.ex.net.",
				"real.ex.net A 127.0.0.5",
			}},
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, srv *dnstest.Server) {
				h := res.MX[0]
				if !slices.Equal(h.CNAMEs, []string{"alias.ex.net", "real.ex.net"}) || !slices.Equal(h.Addresses, []string{"127.0.0.5"}) {
					t.Errorf("host = %+v", h)
				}
				asked := 0
				for _, q := range srv.Queries() {
					if q.Name == "real.ex.net." && q.Type == "A" {
						asked++
					}
				}
				if asked != 1 {
					t.Errorf("real.ex.net A asked %d times, want 1", asked)
				}
			},
		},
		{
			name: "cname loop",
			zone: dnstest.Zone{Records: []string{
				"ex.test MX 10 mail.ex.test.",
				"mail.ex.test CNAME a.ex.test.", "a.ex.test CNAME mail.ex.test.",
			}},
			domain:  "ex.test",
			wantErr: []error{ErrNoHosts, ErrDNS},
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if len(res.MX) != 1 || !strings.Contains(res.MX[0].Error, "loop") {
					t.Errorf("MX = %+v, want a loop error on the host", res.MX)
				}
			},
		},
		{
			name: "cname loop across answers",
			zone: dnstest.Zone{NoChase: true, Records: []string{
				"ex.test MX 10 mail.ex.test.",
				"mail.ex.test CNAME a.ex.test.", "a.ex.test CNAME mail.ex.test.",
			}},
			domain:  "ex.test",
			wantErr: []error{ErrNoHosts, ErrDNS},
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if !strings.Contains(res.MX[0].Error, "loop") {
					t.Errorf("error = %q, want a loop", res.MX[0].Error)
				}
			},
		},
		{
			name: "truncated udp answer is retried over tcp",
			zone: dnstest.Zone{
				Records: []string{"ex.test MX 10 mx.ex.test.", "mx.ex.test A 127.0.0.1"},
				Faults:  []dnstest.Fault{{Name: "mx.ex.test", Type: dns.TypeA, Action: dnstest.Truncate}},
			},
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if !slices.Equal(res.MX[0].Addresses, []string{"127.0.0.1"}) {
					t.Fatalf("addresses = %v", res.MX[0].Addresses)
				}
				var seq []string
				for _, q := range res.Queries {
					if q.Name == "mx.ex.test." && q.Type == "A" {
						seq = append(seq, q.Transport+map[bool]string{true: "/tc", false: ""}[q.Truncated])
					}
				}
				if !slices.Equal(seq, []string{"udp/tc", "tcp"}) {
					t.Errorf("A queries = %v, want udp/tc then tcp", seq)
				}
			},
		},
		{
			name: "large answer truncated for real",
			zone: func() dnstest.Zone {
				z := dnstest.Zone{Records: []string{"ex.test MX 10 mx.ex.test."}}
				for i := 1; i <= 120; i++ {
					z.Records = append(z.Records, "mx.ex.test A 127.0.1."+strconv.Itoa(i))
				}
				return z
			}(),
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if n := len(res.MX[0].Addresses); n != 120 {
					t.Fatalf("%d addresses, want 120", n)
				}
				if res.MX[0].Addresses[0] != "127.0.1.1" || res.MX[0].Addresses[119] != "127.0.1.120" {
					t.Errorf("addresses not sorted: %v", res.MX[0].Addresses[:3])
				}
				tcp := false
				for _, q := range res.Queries {
					tcp = tcp || (q.Transport == "tcp" && q.Type == "A")
				}
				if !tcp {
					t.Error("no TCP query after a truncated answer")
				}
			},
		},
		{
			name:    "nxdomain",
			zone:    dnstest.Zone{Records: []string{"other.test A 127.0.0.1"}},
			domain:  "missing.test",
			wantErr: []error{ErrNXDomain},
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if len(res.Queries) != 1 || res.Queries[0].Rcode != "NXDOMAIN" {
					t.Errorf("queries = %+v", res.Queries)
				}
			},
		},
		{
			name: "servfail",
			zone: dnstest.Zone{
				Records: []string{"ex.test MX 10 mx.ex.test."},
				Faults:  []dnstest.Fault{{Name: "ex.test", Action: dnstest.ServFail}},
			},
			domain:  "ex.test",
			wantErr: []error{ErrDNS},
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if len(res.Queries) != 2 { // Retries: 1
					t.Errorf("%d queries, want 2", len(res.Queries))
				}
			},
		},
		{
			name: "servfail once then answer",
			zone: dnstest.Zone{
				Records: []string{"ex.test MX 10 mx.ex.test.", "mx.ex.test A 127.0.0.1"},
				Faults:  []dnstest.Fault{{Name: "ex.test", Action: dnstest.ServFail, Times: 1}},
			},
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if res.Queries[0].Rcode != "SERVFAIL" || res.Queries[1].Rcode != "NOERROR" {
					t.Errorf("queries = %+v", res.Queries[:2])
				}
			},
		},
		{
			name: "formerr to edns is retried without edns",
			zone: dnstest.Zone{
				Records: []string{"ex.test MX 10 mx.ex.test.", "mx.ex.test A 127.0.0.1"},
				Faults:  []dnstest.Fault{{Name: "*", Action: dnstest.FormErr}},
			},
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, srv *dnstest.Server) {
				if !slices.Equal(res.MX[0].Addresses, []string{"127.0.0.1"}) {
					t.Errorf("addresses = %v", res.MX[0].Addresses)
				}
			},
		},
		{
			name:   "ipv6-only host",
			zone:   dnstest.Zone{Records: []string{"ex.test MX 10 mx6.ex.test.", "mx6.ex.test AAAA ::1", "mx6.ex.test AAAA ::2"}},
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if !slices.Equal(res.MX[0].Addresses, []string{"::1", "::2"}) || res.MX[0].Error != "" {
					t.Errorf("host = %+v", res.MX[0])
				}
			},
		},
		{
			name: "host with several a records",
			zone: dnstest.Zone{Records: []string{
				"ex.test MX 10 mx.ex.test.",
				"mx.ex.test A 127.0.0.3", "mx.ex.test A 127.0.0.1", "mx.ex.test A 127.0.0.2", "mx.ex.test AAAA ::1",
			}},
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if got := res.MX[0].Addresses; !slices.Equal(got, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"}) {
					t.Errorf("addresses = %v", got)
				}
			},
		},
		{
			name: "one mx host missing, another fine",
			zone: dnstest.Zone{Records: []string{
				"ex.test MX 10 gone.ex.test.", "ex.test MX 20 mx.ex.test.", "mx.ex.test A 127.0.0.1",
			}},
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if res.MX[0].Host != "gone.ex.test" || !strings.Contains(res.MX[0].Error, "NXDOMAIN") || len(res.MX[0].Addresses) != 0 {
					t.Errorf("gone host = %+v", res.MX[0])
				}
				if !slices.Equal(res.MX[1].Addresses, []string{"127.0.0.1"}) {
					t.Errorf("mx host = %+v", res.MX[1])
				}
			},
		},
		{
			name:    "no host has an address",
			zone:    dnstest.Zone{Records: []string{"ex.test MX 10 mx.ex.test.", "mx.ex.test TXT \"no address\""}},
			domain:  "ex.test",
			wantErr: []error{ErrNoHosts},
		},
		{
			name: "idn domain is asked as a-label",
			zone: dnstest.Zone{Records: []string{
				"xn--bcher-kva.test MX 10 mx.xn--bcher-kva.test.", "mx.xn--bcher-kva.test A 127.0.0.1",
			}},
			domain: "Bücher.test",
			check: func(t *testing.T, res *Resolution, srv *dnstest.Server) {
				if res.Domain != "xn--bcher-kva.test" {
					t.Errorf("Domain = %q", res.Domain)
				}
				if q := srv.Queries(); len(q) == 0 || q[0].Name != "xn--bcher-kva.test." {
					t.Errorf("queries = %+v", q)
				}
			},
		},
		{
			name: "domain that is an alias",
			zone: dnstest.Zone{Records: []string{
				"ex.test CNAME ex.net.", "ex.net MX 10 mx.ex.net.", "mx.ex.net A 127.0.0.1",
			}},
			domain: "ex.test",
			check: func(t *testing.T, res *Resolution, _ *dnstest.Server) {
				if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "ex.net") {
					t.Errorf("notes = %q", res.Notes)
				}
				if !slices.Equal(hostNames(res.MX), []string{"mx.ex.net"}) {
					t.Errorf("MX = %+v", res.MX)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := dnstest.ServeServer(t, tt.zone)
			r := newTestResolver(t, srv.Addr())
			res, err := r.MailHosts(context.Background(), tt.domain)
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatalf("MailHosts: %v", err)
			}
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("error %v is not %v", err, want)
				}
			}
			if res == nil {
				t.Fatal("nil Resolution")
			}
			checkEvidence(t, res.Queries, srv)
			if tt.check != nil {
				tt.check(t, res, srv)
			}
		})
	}
}

// checkEvidence proves that every query the server received is in the
// evidence, and nothing else (Drop faults included: the query is recorded
// with its timeout).
func checkEvidence(t *testing.T, got []DNSQuery, srvs ...*dnstest.Server) {
	t.Helper()
	var want []string
	for _, s := range srvs {
		for _, q := range s.Queries() {
			want = append(want, s.Addr()+" "+q.Net+" "+q.Name+" "+q.Type)
		}
	}
	var have []string
	for _, q := range got {
		have = append(have, q.Server+" "+q.Transport+" "+q.Name+" "+q.Type)
		if q.Time.IsZero() || q.Server == "" || q.Name == "" || q.Type == "" {
			t.Errorf("incomplete evidence %+v", q)
		}
		if q.Error == "" && q.Rcode == "" {
			t.Errorf("evidence without rcode or error: %+v", q)
		}
	}
	slices.Sort(want)
	slices.Sort(have)
	if !slices.Equal(have, want) {
		t.Errorf("evidence does not match the queries received:\n have %q\n want %q", have, want)
	}
}

func TestMailHostsServerFailover(t *testing.T) {
	zone := []string{"ex.test MX 10 mx.ex.test.", "mx.ex.test A 127.0.0.1"}
	t.Run("timeout retried on the same server", func(t *testing.T) {
		srv := dnstest.ServeServer(t, dnstest.Zone{Records: zone, Faults: []dnstest.Fault{
			{Name: "ex.test", Type: dns.TypeMX, Action: dnstest.Drop, Times: 1},
		}})
		r := newTestResolver(t, srv.Addr())
		res, err := r.MailHosts(context.Background(), "ex.test")
		if err != nil {
			t.Fatal(err)
		}
		if res.Queries[0].Error == "" || res.Queries[1].Rcode != "NOERROR" {
			t.Errorf("queries = %+v", res.Queries[:2])
		}
		checkEvidence(t, res.Queries, srv)
	})
	t.Run("dead server then next server", func(t *testing.T) {
		dead := dnstest.ServeServer(t, dnstest.Zone{Records: zone, Faults: []dnstest.Fault{{Name: "*", Action: dnstest.Drop}}})
		good := dnstest.ServeServer(t, dnstest.Zone{Records: zone})
		r := newTestResolver(t, dead.Addr(), good.Addr())
		res, err := r.MailHosts(context.Background(), "ex.test")
		if err != nil {
			t.Fatal(err)
		}
		if res.Queries[0].Server != dead.Addr() || res.Queries[0].Error == "" {
			t.Errorf("first query = %+v, want a timeout at the dead server", res.Queries[0])
		}
		if res.Queries[1].Server != good.Addr() || res.Queries[1].Rcode != "NOERROR" {
			t.Errorf("second query = %+v, want the answer of the next server", res.Queries[1])
		}
		if !slices.Equal(res.MX[0].Addresses, []string{"127.0.0.1"}) {
			t.Errorf("MX = %+v", res.MX)
		}
		checkEvidence(t, res.Queries, dead, good)
	})
	t.Run("refused goes to the next server and is not asked again", func(t *testing.T) {
		ref := dnstest.ServeServer(t, dnstest.Zone{Records: zone, Faults: []dnstest.Fault{{Name: "*", Action: dnstest.Refused}}})
		sf := dnstest.ServeServer(t, dnstest.Zone{Records: zone, Faults: []dnstest.Fault{{Name: "*", Action: dnstest.ServFail}}})
		r := newTestResolver(t, ref.Addr(), sf.Addr())
		res, err := r.MailHosts(context.Background(), "ex.test")
		var de *DNSError
		if !errors.Is(err, ErrDNS) || !errors.As(err, &de) {
			t.Fatalf("err = %v, want a DNSError", err)
		}
		if de.Rcode != "SERVFAIL" || len(de.Servers) != 2 {
			t.Errorf("DNSError = %+v", de)
		}
		if n := len(ref.Queries()); n != 1 {
			t.Errorf("refusing server asked %d times, want 1", n)
		}
		if n := len(sf.Queries()); n != 2 {
			t.Errorf("failing server asked %d times, want 2 (1 retry)", n)
		}
		checkEvidence(t, res.Queries, ref, sf)
	})
	t.Run("answer to another question is not used", func(t *testing.T) {
		bad := dnstest.ServeServer(t, dnstest.Zone{Records: zone, Faults: []dnstest.Fault{{Name: "*", Action: dnstest.WrongQuestion}}})
		good := dnstest.ServeServer(t, dnstest.Zone{Records: zone})
		r := newTestResolver(t, bad.Addr(), good.Addr())
		res, err := r.MailHosts(context.Background(), "ex.test")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.Queries[0].Error, "does not match") || res.Queries[1].Server != good.Addr() {
			t.Errorf("queries = %+v", res.Queries[:2])
		}
		checkEvidence(t, res.Queries, bad, good)
	})
	t.Run("all servers time out", func(t *testing.T) {
		dead := dnstest.ServeServer(t, dnstest.Zone{Records: zone, Faults: []dnstest.Fault{{Name: "*", Action: dnstest.Drop}}})
		r := newTestResolver(t, dead.Addr())
		res, err := r.MailHosts(context.Background(), "ex.test")
		if !errors.Is(err, ErrDNS) {
			t.Fatalf("err = %v, want ErrDNS", err)
		}
		if len(res.Queries) != 2 {
			t.Errorf("%d queries recorded, want 2", len(res.Queries))
		}
		checkEvidence(t, res.Queries, dead)
	})
	t.Run("cancelled context", func(t *testing.T) {
		slow := dnstest.ServeServer(t, dnstest.Zone{Records: zone, Faults: []dnstest.Fault{{Name: "*", Action: dnstest.Drop}}})
		r, err := NewDNSResolver(DNSConfig{Servers: []string{slow.Addr()}, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err = r.MailHosts(ctx, "ex.test")
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrDNS) {
			t.Errorf("err = %v, want context.Canceled and ErrDNS", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("cancellation took %v", d)
		}
	})
}

func TestHostAddrs(t *testing.T) {
	addr := dnstest.Serve(t, dnstest.Zone{
		Records: []string{"mx.ex.test A 127.0.0.2", "mx.ex.test A 127.0.0.1", "mx.ex.test AAAA ::1", "v4.ex.test A 127.0.0.1", "txt.ex.test TXT x"},
		Faults:  []dnstest.Fault{{Name: "v4.ex.test", Type: dns.TypeAAAA, Action: dnstest.ServFail}},
	})
	r := newTestResolver(t, addr)
	ctx := context.Background()

	got, qs, err := r.HostAddrs(ctx, "MX.ex.test.")
	if err != nil || len(qs) != 2 {
		t.Fatalf("HostAddrs = %v, %d queries, %v", got, len(qs), err)
	}
	if s := addrStrings(got); !slices.Equal(s, []string{"127.0.0.1", "127.0.0.2", "::1"}) {
		t.Errorf("addrs = %v", s)
	}
	// One family failing: the other family's addresses come with the error.
	got, _, err = r.HostAddrs(ctx, "v4.ex.test")
	if !errors.Is(err, ErrDNS) || !slices.Equal(addrStrings(got), []string{"127.0.0.1"}) {
		t.Errorf("partial: %v, %v", got, err)
	}
	if _, _, err = r.HostAddrs(ctx, "nope.ex.test"); !errors.Is(err, ErrNXDomain) {
		t.Errorf("missing host: %v, want ErrNXDomain", err)
	}
	if _, _, err = r.HostAddrs(ctx, "txt.ex.test"); !errors.Is(err, ErrNoHosts) {
		t.Errorf("host without address: %v, want ErrNoHosts", err)
	}
	if _, qs, err = r.HostAddrs(ctx, "bad..name"); !errors.Is(err, ErrInvalidName) || len(qs) != 0 {
		t.Errorf("invalid name: %v, %d queries", err, len(qs))
	}
}

func addrStrings[T interface{ String() string }](as []T) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "Example.COM", want: "example.com"},
		{in: "example.com.", want: "example.com"},
		{in: " example.com ", want: "example.com"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "BÜCHER.example", want: "xn--bcher-kva.example"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: "例え.テスト", want: "xn--r8jz45g.xn--zckzah"},
		{in: "", bad: true},
		{in: ".", bad: true},
		{in: "a..b", bad: true},
		{in: "-bad-.example", bad: true},
		{in: "under_score.example", bad: true},
		{in: "xn--zz.example", bad: true}, // invalid punycode
		{in: strings.Repeat("a", 64) + ".example", bad: true},
		{in: strings.Repeat("abcdefghi.", 26) + "example", bad: true},
		{in: "exa mple.com", bad: true},
		{in: "0\x82", bad: true}, // fuzz: invalid UTF-8 became an invalid A-label
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeDomain(tt.in)
			if tt.bad {
				if !errors.Is(err, ErrInvalidName) {
					t.Errorf("NormalizeDomain(%q) = %q, %v; want ErrInvalidName", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseDNSServer(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "192.0.2.53", want: "192.0.2.53:53"},
		{in: "192.0.2.53:5353", want: "192.0.2.53:5353"},
		{in: "::1", want: "[::1]:53"},
		{in: "[::1]", want: "[::1]:53"},
		{in: "[::1]:5353", want: "[::1]:5353"},
		{in: "ns.example.test", want: "ns.example.test:53"},
		{in: "ns.example.test:54", want: "ns.example.test:54"},
		{in: "", bad: true},
		{in: "192.0.2.1:0", bad: true},
		{in: "192.0.2.1:99999", bad: true},
		{in: "192.0.2.1:dns", bad: true},
		{in: ":53", bad: true},
		{in: "a:b:c", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDNSServer(tt.in)
			if tt.bad != (err != nil) || (!tt.bad && got != tt.want) {
				t.Errorf("ParseDNSServer(%q) = %q, %v; want %q (bad %v)", tt.in, got, err, tt.want, tt.bad)
			}
		})
	}
}

func TestNewDNSResolverDefaults(t *testing.T) {
	r, err := NewDNSResolver(DNSConfig{Servers: []string{"127.0.0.1", "127.0.0.1:53"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.timeout != DefaultDNSTimeout || r.retries != DefaultDNSRetries || cap(r.sem) != DefaultDNSMaxInFlight {
		t.Errorf("defaults: timeout %v retries %d inflight %d", r.timeout, r.retries, cap(r.sem))
	}
	if got := r.Servers(); !slices.Equal(got, []string{"127.0.0.1:53"}) {
		t.Errorf("servers = %v, want one deduplicated server", got)
	}
	if _, err := NewDNSResolver(DNSConfig{Servers: []string{"bad:port:x"}}); err == nil {
		t.Error("bad server accepted")
	}
}

// TestMaxInFlight checks that no more than MaxInFlight queries are open at
// once: with MaxInFlight 1 and a server that delays every answer, the
// server never sees two queries within one delay of each other.
func TestMaxInFlight(t *testing.T) {
	const delay = 40 * time.Millisecond
	zone := dnstest.Zone{
		Records: []string{"ex.test MX 10 a.ex.test.", "ex.test MX 20 b.ex.test.", "a.ex.test A 127.0.0.1", "b.ex.test A 127.0.0.2"},
		Faults:  []dnstest.Fault{{Name: "*", Action: dnstest.Delay, Delay: delay}},
	}
	srv := dnstest.ServeServer(t, zone)
	r, err := NewDNSResolver(DNSConfig{Servers: []string{srv.Addr()}, MaxInFlight: 1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.MailHosts(context.Background(), "ex.test"); err != nil {
		t.Fatal(err)
	}
	qs := srv.Queries()
	if len(qs) != 5 {
		t.Fatalf("%d queries, want 5", len(qs))
	}
	for i := 1; i < len(qs); i++ {
		if gap := qs[i].Time.Sub(qs[i-1].Time); gap < delay*3/4 {
			t.Errorf("queries %d and %d only %v apart: more than one in flight", i-1, i, gap)
		}
	}
}
