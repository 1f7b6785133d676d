package audit

import (
	"context"
	"errors"
	"net/netip"
)

// MailResolver finds where a domain's mail goes (RFC 5321 §5.1). The
// miekg/dns implementation is DNSResolver (mx.go); tests and the lab use
// an in-process DNS server (audit/dnstest) behind the same resolver.
type MailResolver interface {
	// MailHosts returns the domain's mail exchangers in preference order,
	// each with every A and AAAA address; the implicit MX when there is
	// no MX; NullMX set (and no hosts) for RFC 7505 null MX. Every query
	// made is in Resolution.Queries, also when an error is returned.
	MailHosts(ctx context.Context, domain string) (*Resolution, error)
	// HostAddrs returns every A and AAAA address of a host name.
	HostAddrs(ctx context.Context, host string) ([]netip.Addr, []DNSQuery, error)
}

// Resolution is the answer of MailResolver.MailHosts.
type Resolution struct {
	Domain  string     // A-label form
	NullMX  bool       // RFC 7505: the domain accepts no mail
	MX      []MXHost   // sorted by preference
	Queries []DNSQuery // every question asked, in order
	// Notes are findings about the DNS setup worth reporting: a null MX
	// published together with other MX records (RFC 7505 §3), the domain
	// being an alias (CNAME). Plain sentences, deterministic.
	Notes []string
}

// DNS errors. A Resolution with partial answers may come with them.
var (
	ErrNXDomain = errors.New("domain does not exist (NXDOMAIN)")
	ErrNoHosts  = errors.New("no mail host has an address")
	ErrDNS      = errors.New("DNS lookup failed") // SERVFAIL, REFUSED, timeout, ...
)

// Catcher receives relayed test messages (catch mode, issue 3). The probe
// engine asks it for the address that relayed messages should go to and
// reports each message it sends; at the end of the run it waits for the
// tokens to arrive.
type Catcher interface {
	// Recipient returns the address to send test token to: "<token>@<catch domain>".
	Recipient(token string) string
	// BounceAddress returns the MAIL FROM for tests whose bounce should come
	// back to the catcher: inside the catch domain, unique per token.
	BounceAddress(token string) string
	// Wait blocks until every token has arrived (or bounced) or ctx ends,
	// and returns what arrived, by token.
	Wait(ctx context.Context, tokens []string) map[string]*CatchEvidence
}
