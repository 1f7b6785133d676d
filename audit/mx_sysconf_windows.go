//go:build windows

package audit

import "errors"

// systemDNSServers fails on Windows: there is no resolv.conf, and the Go
// resolver's DnsQuery path takes no server or context (net/lookup_windows.go),
// so the operator names the DNS server.
func systemDNSServers() ([]string, error) {
	return nil, errors.New("no DNS server given: Windows has no resolv.conf; pass --dns-server ADDRESS (for example the server shown by 'ipconfig /all')")
}
