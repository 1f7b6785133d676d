package audit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// Probe errors. Test them with errors.Is; a *ProbeError wraps one of them
// (or a net/tls error) and says which command against which peer failed.
var (
	// ErrProtocol: the server broke SMTP (bad reply code, oversized or
	// endless reply, unexpected close during a reply).
	ErrProtocol = errors.New("SMTP protocol error")
	// ErrUnreachable: the TCP connection could not be made (refused, no
	// route, ...; connectFailure says which).
	ErrUnreachable = errors.New("cannot connect")
	// ErrTimeout: a connect, greeting or command deadline passed.
	ErrTimeout = errors.New("timed out")
	// ErrTLS: the TLS handshake (STARTTLS or implicit) failed.
	ErrTLS = errors.New("TLS handshake failed")
	// ErrDropped: the server closed the connection (or sent 421).
	ErrDropped = errors.New("connection dropped by server")
	// ErrBadTarget: a TARGET argument is not a domain, host or address.
	ErrBadTarget = errors.New("bad target")
	// ErrTooLong: a crafted address or command exceeds the RFC 5321
	// §4.5.3.1 limits.
	ErrTooLong = errors.New("exceeds RFC 5321 size limits")
)

// ProbeError records a failed step of a probe: which command, against
// which server, and the reply if there was one.
type ProbeError struct {
	Host     string // MX host name, if known
	Addr     string // address:port
	Command  string // "connect", "greeting", "EHLO", "STARTTLS", "MAIL", ...
	Code     int    // reply code, 0 if none
	Enhanced string // RFC 3463 code, if any
	Line     string // first reply line, if any
	Err      error
}

func (e *ProbeError) Error() string {
	s := fmt.Sprintf("%s %s", e.Addr, e.Command)
	if e.Host != "" && !sameHost(e.Host, e.Addr) {
		s = e.Host + " " + s
	}
	if e.Code != 0 {
		s += fmt.Sprintf(": %d %s", e.Code, e.Line)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ProbeError) Unwrap() error { return e.Err }

// sameHost reports whether host is the host part of addr ("ip:port"), as
// for a target given as an address: naming it twice says nothing more.
func sameHost(host, addr string) bool {
	h, _, err := net.SplitHostPort(addr)
	return err == nil && strings.EqualFold(strings.Trim(host, "[]"), h)
}

// connectFailure says why a TCP connect failed, classified by the error's
// type and errno (never its text), without the address the caller already
// names: refused, timed out, no route to the host or its network, or a
// DNS failure. It returns "" for an error that is not a failed connect.
func connectFailure(err error) string {
	var dnsErr *net.DNSError
	var ne net.Error
	is := func(targets []error) bool {
		return slices.ContainsFunc(targets, func(t error) bool { return errors.Is(err, t) })
	}
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Sprintf("DNS: %s does not exist", dnsErr.Name)
		}
		if dnsErr.IsTimeout {
			return fmt.Sprintf("DNS: the lookup of %s timed out", dnsErr.Name)
		}
		return fmt.Sprintf("DNS: the lookup of %s failed (%s)", dnsErr.Name, dnsErr.Err)
	case is(errnoRefused):
		return "connection refused: nothing listens on that port, or a firewall rejects the connection"
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded), is(errnoTimedOut),
		errors.As(err, &ne) && ne.Timeout():
		return "connect timed out: no answer (a firewall may be dropping the packets)"
	case is(errnoHostUnreach):
		return "no route to host (it is down, or a router says it cannot be reached)"
	case is(errnoNetUnreach):
		return "network unreachable: this machine has no route to that network"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" && oe.Err != nil {
		return "connect failed: " + oe.Err.Error()
	}
	return ""
}
