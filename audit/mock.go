package audit

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// MockResolver is a MailResolver from fixed tables, for tests and demos in
// this and other packages (cmd/relaylock). Names are compared in lower
// case without the trailing dot.
type MockResolver struct {
	// MX maps a domain to its mail hosts in preference order; "." alone
	// is a null MX (RFC 7505).
	MX map[string][]string
	// Addrs maps a host name to its addresses.
	Addrs map[string][]netip.Addr
	// Fail maps a name to the error its lookups return.
	Fail map[string]error
}

var _ MailResolver = (*MockResolver)(nil)

func mockKey(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

func (m *MockResolver) query(name, typ string, answers []string, err error) DNSQuery {
	q := DNSQuery{Time: time.Now().UTC(), Server: "mock", Transport: "udp", Name: name, Type: typ,
		Answers: answers, Rcode: "NOERROR"}
	if err != nil {
		q.Error, q.Rcode = err.Error(), ""
	}
	return q
}

// MailHosts implements MailResolver: the MX list, or the implicit MX
// (RFC 5321 §5.1) when the name has addresses but no MX.
func (m *MockResolver) MailHosts(ctx context.Context, domain string) (*Resolution, error) {
	d := mockKey(domain)
	res := &Resolution{Domain: d}
	if err := m.Fail[d]; err != nil {
		res.Queries = append(res.Queries, m.query(d, "MX", nil, err))
		return res, fmt.Errorf("mx %s: %w", d, err)
	}
	mx, ok := m.MX[d]
	res.Queries = append(res.Queries, m.query(d, "MX", mx, nil))
	if ok && len(mx) == 1 && mx[0] == "." {
		res.NullMX = true
		return res, nil
	}
	if !ok {
		addrs, q, err := m.HostAddrs(ctx, d)
		res.Queries = append(res.Queries, q...)
		if err != nil {
			return res, err
		}
		res.MX = []MXHost{{Host: d, Implicit: true, Addresses: mockAddrStrings(addrs)}}
		return res, nil
	}
	for i, h := range mx {
		addrs, q, err := m.HostAddrs(ctx, h)
		res.Queries = append(res.Queries, q...)
		host := MXHost{Host: mockKey(h), Preference: 10 * (i + 1), Addresses: mockAddrStrings(addrs)}
		if err != nil {
			host.Error = err.Error()
		}
		res.MX = append(res.MX, host)
	}
	return res, nil
}

// HostAddrs implements MailResolver.
func (m *MockResolver) HostAddrs(ctx context.Context, host string) ([]netip.Addr, []DNSQuery, error) {
	h := mockKey(host)
	if err := m.Fail[h]; err != nil {
		return nil, []DNSQuery{m.query(h, "A", nil, err)}, fmt.Errorf("address of %s: %w", h, err)
	}
	addrs, ok := m.Addrs[h]
	if !ok {
		return nil, []DNSQuery{m.query(h, "A", nil, ErrNXDomain)}, fmt.Errorf("address of %s: %w", h, ErrNXDomain)
	}
	return addrs, []DNSQuery{m.query(h, "A", mockAddrStrings(addrs), nil)}, nil
}

func mockAddrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}
