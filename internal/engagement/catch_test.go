package engagement

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/audit/dnstest"
)

func TestCheckCatchDNS(t *testing.T) {
	addr := dnstest.Serve(t, dnstest.Zone{Records: []string{
		"here.test MX 10 mx.here.test.", "mx.here.test A 127.0.0.1",
		"there.test MX 10 mx.there.test.", "mx.there.test A 192.0.2.25",
		"null.test MX 0 .",
	}})
	r, err := audit.NewDNSResolver(audit.DNSConfig{Servers: []string{addr}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	local := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	tests := []struct {
		domain, want string
	}{
		{"here.test", ""},
		{"there.test", "192.0.2.25, not an address of this machine"},
		{"null.test", "null MX"},
		{"missing.test", "publish an MX record"},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			w := checkCatchDNS(context.Background(), r, tt.domain, local)
			if tt.want == "" {
				if len(w) != 0 {
					t.Errorf("warnings %q, want none", w)
				}
				return
			}
			if len(w) != 1 || !strings.Contains(w[0], tt.want) {
				t.Errorf("warnings %q, want one containing %q", w, tt.want)
			}
		})
	}
}
