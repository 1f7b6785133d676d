package audit

import (
	"context"
	"testing"

	"github.com/relaylock/relaylock/audit/dnstest"
)

// BenchmarkMailHosts resolves a domain with two MX hosts (5 queries: MX,
// then A and AAAA of each host, concurrently) against the in-process
// server on loopback: the resolver's own overhead per domain.
func BenchmarkMailHosts(b *testing.B) {
	addr := dnstest.Serve(b, dnstest.Zone{Records: []string{
		"ex.test MX 10 a.ex.test.", "ex.test MX 20 b.ex.test.",
		"a.ex.test A 127.0.0.1", "a.ex.test AAAA ::1", "b.ex.test A 127.0.0.2",
	}})
	r, err := NewDNSResolver(DNSConfig{Servers: []string{addr}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.MailHosts(ctx, "ex.test"); err != nil {
			b.Fatal(err)
		}
	}
}
