// Package dnstest runs an in-process DNS server for tests, the lab and the
// demo. It answers from a small zone like a recursive resolver would
// (following CNAMEs inside the zone), on UDP and TCP on the same port, and
// can inject faults: truncation over UDP (so that clients retry over TCP),
// SERVFAIL, REFUSED, NXDOMAIN, dropped queries and delays. It records every
// query it receives.
//
// Typical use in a test:
//
//	addr := dnstest.Serve(t, dnstest.Zone{Records: []string{
//		"example.test. MX 10 mx.example.test.",
//		"mx.example.test. A 127.0.0.1",
//	}})
//
// and in the lab or the demo:
//
//	srv, err := dnstest.NewServer(dnstest.MailZone("demo.test", "mx.demo.test", "127.0.0.1"))
//	err = srv.ListenAndServe("127.0.0.1:0")
//	defer srv.Close()
//	// resolver: audit.DNSConfig{Servers: []string{srv.Addr()}}
//
// The server only listens where it is told; it never sends a query.
package dnstest

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Action is a fault injected for matching queries.
type Action int

const (
	// Truncate answers over UDP with the TC bit set and no records
	// (RFC 1035 §4.1.1); TCP queries get the normal answer.
	Truncate      Action = iota + 1
	ServFail             // answer SERVFAIL (rcode 2)
	Refused              // answer REFUSED (rcode 5)
	NXDomain             // answer NXDOMAIN (rcode 3) even if the name exists
	Drop                 // send nothing: the client times out
	FormErr              // answer FORMERR to queries carrying EDNS0 (old servers)
	Delay                // only wait Fault.Delay, then answer normally
	WrongQuestion        // answer with another name in the question section (spoofing, broken middleboxes)
)

// faultRcode is the answer code of each fault that answers with an empty
// reply.
var faultRcode = map[Action]int{
	ServFail: dns.RcodeServerFailure,
	Refused:  dns.RcodeRefused,
	NXDomain: dns.RcodeNameError,
	FormErr:  dns.RcodeFormatError,
}

func (a Action) String() string {
	switch a {
	case Truncate:
		return "truncate"
	case ServFail:
		return "servfail"
	case Refused:
		return "refused"
	case NXDomain:
		return "nxdomain"
	case Drop:
		return "drop"
	case FormErr:
		return "formerr"
	case Delay:
		return "delay"
	case WrongQuestion:
		return "wrong-question"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Fault describes a misbehaviour for queries matching Name (and Type).
type Fault struct {
	Name   string // owner name, case-insensitive; trailing dot optional; "*" = any
	Type   uint16 // dns.TypeMX, ...; 0 = any type
	Action Action
	// Times limits the fault to the first Times matching queries; 0
	// means every query.
	Times int
	// Delay is waited before acting (for Delay, before answering).
	Delay time.Duration
}

// Zone is the data the server answers from.
type Zone struct {
	// Records in presentation format, e.g. "example.test. MX 10 mx.example.test.".
	// Names without a trailing dot are made absolute. TTL defaults to 300.
	Records []string
	// RRs are records given as values.
	RRs []dns.RR
	// Faults are checked in order; the first match applies.
	Faults []Fault
	// NoChase makes the server answer a CNAME without the target's
	// records, as an authoritative server does when the target lives in
	// another zone; clients must ask again for the target.
	NoChase bool
}

// MailZone returns a zone where domain has one MX, host, whose A (or AAAA)
// record is addr, e.g. MailZone("demo.test", "mx.demo.test", "127.0.0.1").
func MailZone(domain, host, addr string) Zone {
	t := "A"
	if strings.Contains(addr, ":") {
		t = "AAAA"
	}
	return Zone{Records: []string{
		fmt.Sprintf("%s 300 IN MX 10 %s", dns.Fqdn(domain), dns.Fqdn(host)),
		fmt.Sprintf("%s 300 IN %s %s", dns.Fqdn(host), t, addr),
	}}
}

// Query is one query the server received.
type Query struct {
	Time   time.Time
	Net    string // "udp" or "tcp"
	Remote string
	Name   string // as asked (lower-cased, absolute)
	Type   string // "MX", "A", ...
	EDNS   bool   // the query carried an OPT record
	Action string // fault applied, empty for a normal answer
}

// Server is an in-process DNS server.
type Server struct {
	mu      sync.Mutex
	rrs     []dns.RR
	faults  []Fault
	hits    []int // per fault: matching queries seen
	noChase bool
	queries []Query

	addr    string
	udp     *dns.Server
	tcp     *dns.Server
	closing chan struct{}
	closed  bool
	wg      sync.WaitGroup
}

// NewServer parses the zone. Call ListenAndServe (or Start) to serve it.
func NewServer(z Zone) (*Server, error) {
	s := &Server{closing: make(chan struct{})}
	if err := s.add(z); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) add(z Zone) error {
	var rrs []dns.RR
	for _, r := range z.Records {
		rr, err := dns.NewRR(absolute(r))
		if err != nil {
			return fmt.Errorf("dnstest: record %q: %w", r, err)
		}
		if rr == nil {
			continue
		}
		rrs = append(rrs, rr)
	}
	for _, rr := range z.RRs {
		rrs = append(rrs, dns.Copy(rr))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rrs = append(s.rrs, rrs...)
	s.faults = append(s.faults, z.Faults...)
	s.hits = append(s.hits, make([]int, len(z.Faults))...)
	s.noChase = s.noChase || z.NoChase
	return nil
}

// Add adds records and faults while the server runs (the lab uses it to
// publish a demo domain).
func (s *Server) Add(z Zone) error { return s.add(z) }

// absolute makes the owner name of a presentation-format record absolute,
// so that "mx.test A 1.2.3.4" works as well as "mx.test. A 1.2.3.4".
func absolute(r string) string {
	f := strings.Fields(r)
	if len(f) == 0 || strings.HasPrefix(f[0], ";") {
		return r
	}
	if !strings.HasSuffix(f[0], ".") {
		i := strings.Index(r, f[0])
		return r[:i] + f[0] + "." + r[i+len(f[0]):]
	}
	return r
}

// TB is the part of testing.TB that Serve and Start use (*testing.T and
// *testing.B satisfy it). Taking it instead of testing.TB keeps package
// testing out of the relaylock binary, whose lab and demo commands serve
// this package's server.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Serve starts a server for z on 127.0.0.1 (UDP and TCP, same port) and
// returns its address; it stops when the test ends.
func Serve(t TB, z Zone) string {
	t.Helper()
	return ServeServer(t, z).Addr()
}

// ServeServer is Serve returning the server, for tests that look at the
// queries it received.
func ServeServer(t TB, z Zone) *Server {
	t.Helper()
	s, err := NewServer(z)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ListenAndServe("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ListenAndServe binds UDP and TCP on addr (port 0: a free port, the same
// for both) and serves in the background until Close. It returns once
// both listeners are up.
func (s *Server) ListenAndServe(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("dnstest: listen %s: %w", addr, err)
	}
	var (
		ln net.Listener
		pc net.PacketConn
	)
	// With port 0 the TCP port may be taken on UDP: try a few ports.
	for try := 0; ; try++ {
		ln, err = net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return fmt.Errorf("dnstest: listen tcp %s: %w", addr, err)
		}
		pc, err = net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			break
		}
		ln.Close()
		if port != "0" || try >= 20 {
			return fmt.Errorf("dnstest: listen udp %s: %w", addr, err)
		}
	}
	s.mu.Lock()
	if s.closed || s.udp != nil {
		s.mu.Unlock()
		ln.Close()
		pc.Close()
		return errors.New("dnstest: server already started or closed")
	}
	s.addr = ln.Addr().String()
	h := dns.HandlerFunc(s.serveDNS)
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	s.udp = &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: notify}
	s.tcp = &dns.Server{Listener: ln, Handler: h, NotifyStartedFunc: notify}
	s.mu.Unlock()
	errc := make(chan error, 2)
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				errc <- err
			}
		}()
	}
	for range 2 {
		select {
		case <-started:
		case err := <-errc:
			s.Close()
			return fmt.Errorf("dnstest: serve: %w", err)
		}
	}
	return nil
}

// Start is ListenAndServe.
func (s *Server) Start(addr string) error { return s.ListenAndServe(addr) }

// Addr returns "127.0.0.1:PORT", the address of both listeners.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops the server and waits for its goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	udp, tcp := s.udp, s.tcp
	s.mu.Unlock()
	var errs []error
	for _, srv := range []*dns.Server{udp, tcp} {
		if srv != nil {
			if err := srv.Shutdown(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// Queries returns the queries received so far, in arrival order.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.queries)
}

// serveDNS answers one query.
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	opt := req.IsEdns0()
	rec := Query{
		Time: time.Now(), Net: network, Remote: w.RemoteAddr().String(),
		Name: name, Type: dns.TypeToString[q.Qtype], EDNS: opt != nil,
	}

	s.mu.Lock()
	var fault *Fault
	for i := range s.faults {
		f := &s.faults[i]
		if (f.Name == "*" || strings.EqualFold(dns.Fqdn(f.Name), name)) && (f.Type == 0 || f.Type == q.Qtype) {
			if f.Action == FormErr && opt == nil {
				continue
			}
			if f.Action == Truncate && network != "udp" {
				continue
			}
			if f.Times > 0 && s.hits[i] >= f.Times {
				continue
			}
			s.hits[i]++
			c := *f
			fault = &c
			break
		}
	}
	if fault != nil {
		rec.Action = fault.Action.String()
	}
	s.queries = append(s.queries, rec)
	s.mu.Unlock()

	if fault != nil && fault.Delay > 0 {
		select {
		case <-time.After(fault.Delay):
		case <-s.closing:
			return
		}
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = false
	m.RecursionAvailable = true
	if fault != nil {
		switch fault.Action {
		case Drop:
			return
		case Truncate:
			m.Truncated = true
			w.WriteMsg(m)
			return
		}
		if rc, ok := faultRcode[fault.Action]; ok {
			m.Rcode = rc
			w.WriteMsg(m)
			return
		}
	}
	s.answer(m, name, q.Qtype)
	if fault != nil && fault.Action == WrongQuestion {
		m.Question[0].Name = "wrong." + m.Question[0].Name
	}
	if opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	if network == "udp" {
		// RFC 1035 §4.2.1 / RFC 6891 §7: answers larger than the
		// client's buffer are truncated and flagged TC.
		size := dns.MinMsgSize
		if opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// answer fills m like a recursive resolver: records of the asked type, or
// the CNAME chain inside the zone followed by the target's records;
// NODATA when the name exists without that type; NXDOMAIN otherwise.
func (s *Server) answer(m *dns.Msg, name string, qtype uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := name
	seen := map[string]bool{}
	for range 16 {
		var found []dns.RR
		var cname *dns.CNAME
		exists := false
		for _, rr := range s.rrs {
			h := rr.Header()
			if !strings.EqualFold(h.Name, cur) {
				if strings.HasSuffix(strings.ToLower(h.Name), "."+cur) {
					exists = true // empty non-terminal
				}
				continue
			}
			exists = true
			if h.Rrtype == qtype || qtype == dns.TypeANY {
				c := dns.Copy(rr)
				found = append(found, c)
			} else if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if len(found) > 0 {
			m.Answer = append(m.Answer, found...)
			return
		}
		if cname == nil || seen[strings.ToLower(cname.Target)] {
			if !exists {
				m.Rcode = dns.RcodeNameError
			}
			return
		}
		seen[strings.ToLower(cur)] = true
		m.Answer = append(m.Answer, dns.Copy(cname))
		if s.noChase {
			return
		}
		cur = strings.ToLower(cname.Target)
	}
}
