package audit

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// target is a parsed TARGET argument.
type target struct {
	raw  string
	name string     // A-label domain or host name; "" for an address
	addr netip.Addr // for address targets
	port int        // 0: use Options.Ports
}

// parseTarget accepts a domain or host name (IDN converted to its A-label,
// RFC 5891), an IPv4 or IPv6 address, either with an optional port:
// "example.com", "mx.example.com:587", "192.0.2.1", "2001:db8::1",
// "[2001:db8::1]:2525". It never touches the network.
func parseTarget(s string) (target, error) {
	t := target{raw: s}
	s = strings.TrimSpace(s)
	if s == "" {
		return t, fmt.Errorf("%w: empty target", ErrBadTarget)
	}
	if strings.ContainsAny(s, "@/ \t") {
		if strings.Contains(s, "@") {
			return t, fmt.Errorf("%w %q: looks like a mail address; give its domain", ErrBadTarget, s)
		}
		return t, fmt.Errorf("%w %q: a domain, host name or address is expected", ErrBadTarget, s)
	}
	host := s
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		t.addr = a.Unmap()
		return t, checkAddr(t)
	}
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return t, fmt.Errorf("%w %q: %v", ErrBadTarget, s, err)
		}
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return t, fmt.Errorf("%w %q: bad port %q", ErrBadTarget, s, p)
		}
		t.port = port
		host = h
		if a, err := netip.ParseAddr(h); err == nil {
			t.addr = a.Unmap()
			return t, checkAddr(t)
		}
		if strings.HasPrefix(s, "[") {
			return t, fmt.Errorf("%w %q: brackets are for IPv6 addresses", ErrBadTarget, s)
		}
	}
	name, err := NormalizeDomain(host)
	if err != nil {
		return t, fmt.Errorf("%w: %w", ErrBadTarget, err)
	}
	if !strings.Contains(name, ".") && name != "localhost" {
		return t, fmt.Errorf("%w %q: not a fully qualified name", ErrBadTarget, s)
	}
	t.name = name
	return t, nil
}

func checkAddr(t target) error {
	if t.addr.IsUnspecified() || t.addr.IsMulticast() {
		return fmt.Errorf("%w %q: not a unicast address", ErrBadTarget, t.raw)
	}
	if t.addr.Zone() != "" {
		return fmt.Errorf("%w %q: zoned addresses are not supported", ErrBadTarget, t.raw)
	}
	return nil
}
