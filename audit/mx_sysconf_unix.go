//go:build !windows

package audit

import (
	"fmt"
	"net"

	"github.com/miekg/dns"
)

// resolvConf is the system resolver configuration (resolv.conf(5)).
var resolvConf = "/etc/resolv.conf"

// systemDNSServers returns the name servers of the system configuration.
func systemDNSServers() ([]string, error) {
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil, fmt.Errorf("read system DNS configuration: %w (pass --dns-server)", err)
	}
	if len(cc.Servers) == 0 {
		return nil, fmt.Errorf("no nameserver in %s (pass --dns-server)", resolvConf)
	}
	out := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out, nil
}
