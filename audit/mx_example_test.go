package audit_test

import (
	"context"
	"fmt"
	"log"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/audit/dnstest"
)

// ExampleDNSResolver_MailHosts resolves a domain against the in-process
// DNS server, as the lab and the demo do.
func ExampleDNSResolver_MailHosts() {
	srv, err := dnstest.NewServer(dnstest.Zone{Records: []string{
		"demo.test. MX 20 backup.demo.test.",
		"demo.test. MX 10 mx.demo.test.",
		"mx.demo.test. A 127.0.0.1",
		"mx.demo.test. AAAA ::1",
		"backup.demo.test. CNAME mx.demo.test.",
	}})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.ListenAndServe("127.0.0.1:0"); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	r, err := audit.NewDNSResolver(audit.DNSConfig{Servers: []string{srv.Addr()}})
	if err != nil {
		log.Fatal(err)
	}
	res, err := r.MailHosts(context.Background(), "Demo.Test")
	if err != nil {
		log.Fatal(err)
	}
	for _, mx := range res.MX {
		fmt.Println(mx.Preference, mx.Host, mx.Addresses, mx.CNAMEs)
	}
	fmt.Println(len(res.Queries), "queries recorded")
	// Output:
	// 10 mx.demo.test [127.0.0.1 ::1] []
	// 20 backup.demo.test [127.0.0.1 ::1] [mx.demo.test]
	// 5 queries recorded
}

// ExampleCatchServer shows catch mode's receiver: the probe sends relayed
// test messages to Recipient(token) and waits for them.
func ExampleCatchServer() {
	c, err := audit.NewCatcher(audit.CatcherConfig{Domain: "catch.example", Listen: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.Recipient("rl7k2rqz"))
	fmt.Println(c.BounceAddress("rl7k2rqz"))
	// Output:
	// rl7k2rqz@catch.example
	// bounce-rl7k2rqz@catch.example
}
