package audit_test

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/audit/smtptest"
)

func ExampleRun() {
	// A test server that refuses to relay (554 5.7.1), standing in for
	// the MX of example.com.
	srv := smtptest.NewServer(smtptest.Closed554())
	if err := srv.ListenAndServe("127.0.0.1:0"); err != nil {
		panic(err)
	}
	defer srv.Close()
	port, _ := strconv.Atoi(srv.Addr()[strings.LastIndex(srv.Addr(), ":")+1:])

	res, err := audit.Run(context.Background(), audit.Options{
		Targets: []string{"example.com"},
		Resolver: &audit.MockResolver{
			MX:    map[string][]string{"example.com": {"mx.example.com"}},
			Addrs: map[string][]netip.Addr{"mx.example.com": {netip.MustParseAddr("127.0.0.1")}},
		},
		Ports:    []int{port},
		HeloName: "probe.example.net",
	})
	if err != nil {
		panic(err)
	}
	ep := res.Targets[0].Endpoints[0]
	fmt.Println(res.Verdict, ep.Verdict, ep.TLS)
	// Output: closed closed none
}
