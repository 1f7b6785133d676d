package audit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// This file finds where a domain's mail goes, with miekg/dns, following
// RFC 5321 §5.1 (MX, implicit MX, CNAME) and RFC 7505 (null MX). Every
// question and answer is kept as evidence (Resolution.Queries).

// DNSConfig configures a DNSResolver. Zero values take the documented
// defaults.
type DNSConfig struct {
	// Servers are "HOST" or "HOST:PORT" ("[::1]:53" for IPv6; the port
	// defaults to 53). Empty means the system configuration
	// (/etc/resolv.conf on unix; Windows has none: --dns-server is
	// required there).
	Servers []string
	// Timeout bounds one query to one server (default 5 s).
	Timeout time.Duration
	// Retries is how many more rounds over all servers a question gets
	// after the first one fails with a timeout or SERVFAIL (default 2;
	// a negative value means none).
	Retries int
	// MaxInFlight bounds the queries in flight at once (default 64):
	// resolvers drop bursts.
	MaxInFlight int
	// Now stamps DNSQuery.Time (default time.Now).
	Now func() time.Time
}

// Defaults of DNSConfig.
const (
	DefaultDNSTimeout     = 5 * time.Second
	DefaultDNSRetries     = 2
	DefaultDNSMaxInFlight = 64
)

const (
	// maxCNAMEDepth bounds a CNAME chain (RFC 1034 §3.6.2 allows chains;
	// resolvers bound them too, e.g. BIND at 16; mail hosts behind more
	// than 8 aliases are a misconfiguration).
	maxCNAMEDepth = 8
	// ednsUDPSize is the EDNS0 buffer size advertised (RFC 6891 §6.2.5;
	// 1232 is the DNS Flag Day 2020 value that avoids fragmentation).
	ednsUDPSize = 1232
)

// ErrInvalidName is returned for a name that is not a valid domain name
// (including IDN names that do not convert to A-labels).
var ErrInvalidName = errors.New("invalid domain name")

// DNSError is a failed DNS question: SERVFAIL, REFUSED, a timeout or a
// network error from every server tried. errors.Is(err, ErrDNS) holds,
// and errors.Is also sees the last underlying error (for example
// context.DeadlineExceeded).
type DNSError struct {
	Name  string // the question's name (A-label, with trailing dot)
	Type  string // "MX", "A", "AAAA"
	Rcode string // last rcode received ("SERVFAIL", "REFUSED"), empty if none
	// Servers lists the servers asked, in order.
	Servers []string
	Err     error // last error, nil when a server answered with Rcode
}

func (e *DNSError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lookup %s %s", strings.TrimSuffix(e.Name, "."), e.Type)
	if e.Rcode != "" {
		fmt.Fprintf(&b, ": %s", e.Rcode)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if len(e.Servers) > 0 {
		fmt.Fprintf(&b, " (asked %s)", strings.Join(e.Servers, ", "))
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrDNS) and errors.Is(err, e.Err) hold.
func (e *DNSError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrDNS}
	}
	return []error{ErrDNS, e.Err}
}

// DNSResolver is the miekg/dns MailResolver. It is safe for concurrent use.
type DNSResolver struct {
	servers []string
	timeout time.Duration
	retries int
	sem     chan struct{}
	now     func() time.Time
}

var _ MailResolver = (*DNSResolver)(nil)

// NewDNSResolver checks cfg and returns a resolver. With no servers it
// reads the system configuration and fails clearly where there is none.
func NewDNSResolver(cfg DNSConfig) (*DNSResolver, error) {
	r := &DNSResolver{timeout: cfg.Timeout, retries: cfg.Retries, now: cfg.Now}
	if r.timeout <= 0 {
		r.timeout = DefaultDNSTimeout
	}
	if cfg.Retries == 0 {
		r.retries = DefaultDNSRetries
	} else if cfg.Retries < 0 {
		r.retries = 0
	}
	n := cfg.MaxInFlight
	if n <= 0 {
		n = DefaultDNSMaxInFlight
	}
	r.sem = make(chan struct{}, n)
	if r.now == nil {
		r.now = time.Now
	}
	servers := cfg.Servers
	if len(servers) == 0 {
		sys, err := systemDNSServers()
		if err != nil {
			return nil, err
		}
		servers = sys
	}
	for _, s := range servers {
		addr, err := ParseDNSServer(s)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(r.servers, addr) {
			r.servers = append(r.servers, addr)
		}
	}
	return r, nil
}

// Servers returns the servers asked, as HOST:PORT, in order.
func (r *DNSResolver) Servers() []string { return slices.Clone(r.servers) }

// ParseDNSServer turns "HOST", "HOST:PORT", "[IPv6]:PORT" or a bare IPv6
// address into "HOST:PORT" (default port 53).
func ParseDNSServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("dns server: empty address")
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return net.JoinHostPort(a.String(), "53"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(s, ":") {
			return "", fmt.Errorf("dns server %q: %w", s, err)
		}
		host, port = s, "53"
	}
	if host == "" {
		return "", fmt.Errorf("dns server %q: empty host", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("dns server %q: invalid port %q", s, port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String()
	} else if _, ok := dns.IsDomainName(host); !ok {
		return "", fmt.Errorf("dns server %q: invalid host", s)
	}
	return net.JoinHostPort(host, port), nil
}

// NormalizeDomain returns the A-label form of a domain name given by an
// operator: IDN U-labels are converted with the IDNA2008 lookup profile
// (RFC 5890/5891, UTS #46), case is folded, one trailing dot is dropped,
// and the DNS length limits (RFC 1035 §2.3.4) are checked.
func NormalizeDomain(name string) (string, error) {
	in := name
	name = strings.TrimSpace(name)
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return "", fmt.Errorf("%w: empty name", ErrInvalidName)
	}
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("%w %q: not UTF-8", ErrInvalidName, in)
	}
	a, err := idna.Lookup.ToASCII(name)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrInvalidName, in, err)
	}
	a = strings.ToLower(a)
	// The A-labels produced must themselves be valid (round trip), so
	// that what is asked and reported is a name the DNS can hold.
	if again, err := idna.Lookup.ToASCII(a); err != nil || again != a {
		return "", fmt.Errorf("%w %q: does not convert to valid A-labels", ErrInvalidName, in)
	}
	if len(a) > 253 {
		return "", fmt.Errorf("%w %q: longer than 253 octets", ErrInvalidName, in)
	}
	for _, l := range strings.Split(a, ".") {
		if l == "" {
			return "", fmt.Errorf("%w %q: empty label", ErrInvalidName, in)
		}
		if len(l) > 63 {
			return "", fmt.Errorf("%w %q: label longer than 63 octets", ErrInvalidName, in)
		}
	}
	if _, ok := dns.IsDomainName(a); !ok {
		return "", fmt.Errorf("%w %q", ErrInvalidName, in)
	}
	return a, nil
}

// MailHosts implements MailResolver (RFC 5321 §5.1, RFC 7505).
func (r *DNSResolver) MailHosts(ctx context.Context, domain string) (*Resolution, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return &Resolution{Domain: domain}, err
	}
	res := &Resolution{Domain: d}
	log := &queryLog{}
	defer func() { res.Queries = log.q }()

	ans, err := r.lookup(ctx, dns.Fqdn(d), dns.TypeMX, log)
	if len(ans.chain) > 0 {
		// RFC 5321 §5.1: "If a CNAME RR is found instead, the resulting
		// domain is processed as if it were the initial domain."
		res.Notes = append(res.Notes, fmt.Sprintf("%s is an alias (CNAME) of %s; its MX records were used (RFC 5321 §5.1)",
			d, strings.Join(trimDots(ans.chain), " -> ")))
	}
	if err != nil {
		return res, fmt.Errorf("mx %s: %w", d, err)
	}

	var mxs []*dns.MX
	var null, other []string
	for _, rr := range ans.rrs {
		mx := rr.(*dns.MX)
		if mx.Mx == "." {
			null = append(null, rr.String())
			continue
		}
		mxs = append(mxs, mx)
		other = append(other, trimDot(mx.Mx))
	}
	if len(null) > 0 {
		// RFC 7505 §3: a single "MX 0 ." says the domain accepts no
		// mail; there is no fallback to A/AAAA. "A domain that
		// advertises a null MX MUST NOT advertise any other MX RR": when
		// it does anyway, the null MX still states the owner's intent,
		// so it wins and the other hosts are only reported.
		res.NullMX = true
		if len(other) > 0 {
			slices.Sort(other)
			res.Notes = append(res.Notes, fmt.Sprintf("misconfiguration: %s publishes a null MX together with other MX records (%s); RFC 7505 §3 forbids this; treated as null MX, the other hosts were not probed",
				d, strings.Join(other, ", ")))
		}
		return res, nil
	}

	var hosts []MXHost
	if len(mxs) == 0 {
		// RFC 5321 §5.1: no MX records: the domain itself is the implicit
		// MX, preference 0.
		hosts = []MXHost{{Host: d, Preference: 0, Implicit: true}}
	} else {
		hosts = sortMX(mxs)
		for i := range hosts {
			// RFC 5321 §5.1: equal preferences are to be randomised by
			// senders; we list them by name and probe all of them.
			if (i > 0 && hosts[i-1].Preference == hosts[i].Preference) ||
				(i+1 < len(hosts) && hosts[i+1].Preference == hosts[i].Preference) {
				hosts[i].EqualPreference = true
			}
		}
	}

	// Resolve every host concurrently; logs are merged in host order so
	// that the evidence is deterministic.
	logs := make([]*queryLog, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i := range hosts {
		logs[i] = &queryLog{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			addrs, cnames, err := r.hostAddrs(ctx, dns.Fqdn(hosts[i].Host), logs[i])
			hosts[i].CNAMEs = trimDots(cnames)
			hosts[i].Addresses = []string{}
			for _, a := range addrs {
				hosts[i].Addresses = append(hosts[i].Addresses, a.String())
			}
			if err != nil {
				hosts[i].Error = err.Error()
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	total := 0
	var dnsErr error
	for i := range hosts {
		log.q = append(log.q, logs[i].q...)
		total += len(hosts[i].Addresses)
		if dnsErr == nil && errors.Is(errs[i], ErrDNS) {
			dnsErr = errs[i]
		}
	}
	res.MX = hosts
	if total == 0 {
		if hosts[0].Implicit && errors.Is(errs[0], ErrNXDomain) {
			return res, fmt.Errorf("%s: %w", d, ErrNXDomain)
		}
		if dnsErr != nil {
			return res, fmt.Errorf("mail hosts of %s: %w: %w", d, ErrNoHosts, dnsErr)
		}
		return res, fmt.Errorf("mail hosts of %s: %w", d, ErrNoHosts)
	}
	return res, nil
}

// HostAddrs implements MailResolver: every A and AAAA address of host,
// IPv4 first, each family sorted. When one family fails and the other
// answers, the addresses come back together with the error.
func (r *DNSResolver) HostAddrs(ctx context.Context, host string) ([]netip.Addr, []DNSQuery, error) {
	h, err := NormalizeDomain(host)
	if err != nil {
		return nil, nil, err
	}
	log := &queryLog{}
	addrs, _, err := r.hostAddrs(ctx, dns.Fqdn(h), log)
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("%s: %w", h, ErrNoHosts)
	}
	return addrs, log.q, err
}

// sortMX sorts by preference, then by name, so that equal preferences
// keep a deterministic order; a host listed twice keeps its best
// preference.
func sortMX(mxs []*dns.MX) []MXHost {
	best := map[string]int{}
	for _, mx := range mxs {
		h := strings.ToLower(trimDot(mx.Mx))
		if p, ok := best[h]; !ok || int(mx.Preference) < p {
			best[h] = int(mx.Preference)
		}
	}
	hosts := make([]MXHost, 0, len(best))
	for h, p := range best {
		hosts = append(hosts, MXHost{Host: h, Preference: p})
	}
	slices.SortStableFunc(hosts, func(a, b MXHost) int {
		if a.Preference != b.Preference {
			return a.Preference - b.Preference
		}
		return strings.Compare(a.Host, b.Host)
	})
	return hosts
}

// hostAddrs asks A and AAAA of name (FQDN) at once. The CNAME chain is the
// one seen for A, or for AAAA when A saw none.
func (r *DNSResolver) hostAddrs(ctx context.Context, name string, log *queryLog) ([]netip.Addr, []string, error) {
	var (
		ans  [2]answer
		errs [2]error
		logs [2]queryLog
		wg   sync.WaitGroup
	)
	for i, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ans[i], errs[i] = r.lookup(ctx, name, t, &logs[i])
		}()
	}
	wg.Wait()
	log.q = append(log.q, logs[0].q...)
	log.q = append(log.q, logs[1].q...)

	var addrs []netip.Addr
	for _, a := range ans {
		var fam []netip.Addr
		for _, rr := range a.rrs {
			var ip net.IP
			switch rr := rr.(type) {
			case *dns.A:
				ip = rr.A
			case *dns.AAAA:
				ip = rr.AAAA
			}
			if addr, ok := netip.AddrFromSlice(ip); ok {
				if _, is4 := rr.(*dns.A); is4 {
					addr = addr.Unmap()
				}
				if !slices.Contains(fam, addr) {
					fam = append(fam, addr)
				}
			}
		}
		slices.SortFunc(fam, netip.Addr.Compare)
		addrs = append(addrs, fam...)
	}
	chain := ans[0].chain
	if len(chain) == 0 {
		chain = ans[1].chain
	}
	switch {
	case errors.Is(errs[0], ErrNXDomain) && errors.Is(errs[1], ErrNXDomain):
		return nil, chain, errs[0]
	case errs[0] != nil && errs[1] != nil:
		return addrs, chain, errors.Join(errs[0], errs[1])
	case errs[0] != nil:
		return addrs, chain, errs[0]
	case errs[1] != nil:
		return addrs, chain, errs[1]
	}
	return addrs, chain, nil
}

// answer is the part of a response relaylock uses.
type answer struct {
	rcode int
	chain []string // CNAME targets followed from the question's name
	final string   // the name the records belong to
	rrs   []dns.RR // records of the asked type owned by final
}

// lookup asks name/qtype and follows CNAMEs, asking again for the target
// of a chain that the answer does not complete.
func (r *DNSResolver) lookup(ctx context.Context, name string, qtype uint16, log *queryLog) (answer, error) {
	var out answer
	seen := map[string]bool{strings.ToLower(name): true}
	cur := name
	for range maxCNAMEDepth + 1 {
		m, err := r.query(ctx, cur, qtype, log)
		if err != nil {
			return out, err
		}
		a, err := parseAnswer(m, cur, qtype)
		for _, c := range a.chain {
			if seen[strings.ToLower(c)] {
				return out, fmt.Errorf("%w: CNAME loop at %s", ErrDNS, trimDot(c))
			}
			seen[strings.ToLower(c)] = true
		}
		out.chain = append(out.chain, a.chain...)
		out.rcode, out.final, out.rrs = a.rcode, a.final, a.rrs
		if err != nil {
			return out, err
		}
		if len(out.chain) > maxCNAMEDepth {
			break
		}
		if a.rcode == dns.RcodeNameError {
			return out, fmt.Errorf("%s: %w", trimDot(a.final), ErrNXDomain)
		}
		if len(a.rrs) > 0 || len(a.chain) == 0 {
			return out, nil
		}
		// The answer ended in an alias without its records: ask for the
		// target (RFC 1034 §5.3.3 step 3c).
		cur = a.final
	}
	return out, fmt.Errorf("%w: CNAME chain from %s longer than %d", ErrDNS, trimDot(name), maxCNAMEDepth)
}

var errCNAMELoop = errors.New("CNAME loop")

// parseAnswer reads a response to qname/qtype: it follows the CNAME chain
// inside the answer section and returns the records of qtype owned by
// the end of the chain. Records owned by other names are ignored
// (RFC 2181 §5.4.1: only data relevant to the question is trusted).
func parseAnswer(m *dns.Msg, qname string, qtype uint16) (answer, error) {
	a := answer{rcode: m.Rcode, final: qname}
	if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, qname) || m.Question[0].Qtype != qtype {
		return a, fmt.Errorf("%w: response does not match the question %s %s", ErrDNS, qname, dns.TypeToString[qtype])
	}
	cur := qname
	seen := map[string]bool{strings.ToLower(qname): true}
	for range len(m.Answer) + 1 {
		var next string
		for _, rr := range m.Answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, cur) {
				continue
			}
			if h.Rrtype == qtype {
				a.rrs = append(a.rrs, rr)
			} else if c, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME && next == "" {
				next = c.Target
			}
		}
		if len(a.rrs) > 0 || next == "" {
			a.final = cur
			return a, nil
		}
		if seen[strings.ToLower(next)] {
			return a, fmt.Errorf("%w: %w at %s", ErrDNS, errCNAMELoop, trimDot(next))
		}
		seen[strings.ToLower(next)] = true
		a.chain = append(a.chain, next)
		cur = next
		a.final = cur
	}
	return a, nil
}

// queryLog collects DNSQuery evidence; one goroutine writes each log.
type queryLog struct{ q []DNSQuery }

// query asks one question until a server gives a usable answer (NOERROR
// or NXDOMAIN): UDP with EDNS0 first, TCP when the answer is truncated
// (RFC 7766 §5, RFC 1035 §4.2.1); all servers in order, Retries more rounds
// after timeouts and SERVFAIL; REFUSED and NOTIMP are not asked again.
func (r *DNSResolver) query(ctx context.Context, name string, qtype uint16, log *queryLog) (*dns.Msg, error) {
	derr := &DNSError{Name: name, Type: dns.TypeToString[qtype]}
	done := map[string]bool{}
	for round := 0; round <= r.retries; round++ {
		for _, srv := range r.servers {
			if done[srv] {
				continue
			}
			if err := ctx.Err(); err != nil {
				derr.Err = err
				return nil, derr
			}
			if !slices.Contains(derr.Servers, srv) {
				derr.Servers = append(derr.Servers, srv)
			}
			m, err := r.exchange(ctx, srv, "udp", name, qtype, true, log)
			if err == nil && m.Truncated {
				m, err = r.exchange(ctx, srv, "tcp", name, qtype, true, log)
			}
			if err == nil && m.Rcode == dns.RcodeFormatError {
				// RFC 6891 §7: a server that does not know EDNS may
				// answer FORMERR; ask once more without the OPT record.
				m, err = r.exchange(ctx, srv, "udp", name, qtype, false, log)
				if err == nil && m.Truncated {
					m, err = r.exchange(ctx, srv, "tcp", name, qtype, false, log)
				}
			}
			if err != nil {
				derr.Err, derr.Rcode = err, ""
				continue
			}
			switch m.Rcode {
			case dns.RcodeSuccess, dns.RcodeNameError:
				return m, nil
			case dns.RcodeServerFailure:
				derr.Rcode, derr.Err = dns.RcodeToString[m.Rcode], nil
			default:
				derr.Rcode, derr.Err = rcodeString(m.Rcode), nil
				done[srv] = true
			}
		}
		if len(done) == len(r.servers) {
			break
		}
	}
	return nil, derr
}

// exchange sends one message over one transport and records it.
func (r *DNSResolver) exchange(ctx context.Context, server, network, name string, qtype uint16, edns bool, log *queryLog) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	if edns {
		q.SetEdns0(ednsUDPSize, false)
	}
	rec := DNSQuery{
		Time:      r.now().UTC(),
		Server:    server,
		Transport: network,
		Name:      name,
		Type:      dns.TypeToString[qtype],
	}
	m, rtt, err := r.exchangeConn(ctx, server, network, q)
	if err == nil && (len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, name) || m.Question[0].Qtype != qtype) {
		// RFC 5452 §9.1: an answer must match the question asked.
		err = errors.New("answer does not match the question")
	}
	rec.RTT = Duration(rtt)
	if m != nil {
		rec.Rcode = rcodeString(m.Rcode)
		rec.Truncated = m.Truncated
		for _, rr := range m.Answer {
			rec.Answers = append(rec.Answers, rr.String())
		}
	}
	if err != nil {
		rec.Error = err.Error()
	}
	log.q = append(log.q, rec)
	if err != nil {
		return nil, fmt.Errorf("%s over %s: %w", server, network, err)
	}
	return m, nil
}

// exchangeConn is dns.Client.ExchangeContext with cancellation: miekg/dns
// only honours ctx deadlines, so the connection is closed when ctx ends.
func (r *DNSResolver) exchangeConn(ctx context.Context, server, network string, q *dns.Msg) (*dns.Msg, time.Duration, error) {
	select {
	case r.sem <- struct{}{}:
		defer func() { <-r.sem }()
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	start := time.Now()
	c := &dns.Client{Net: network, Timeout: r.timeout, UDPSize: ednsUDPSize}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, time.Since(start), err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	m, _, err := c.ExchangeWithConnContext(ctx, q, conn)
	rtt := time.Since(start)
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return m, rtt, err
	}
	return m, rtt, nil
}

func rcodeString(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rc)
}

func trimDot(s string) string { return strings.TrimSuffix(s, ".") }

func trimDots(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = trimDot(s)
	}
	return out
}
