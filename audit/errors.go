package audit

import (
	"errors"
	"fmt"
)

// Probe errors. Test them with errors.Is; a *ProbeError wraps one of them
// (or a net/tls error) and says which command against which peer failed.
var (
	// ErrProtocol: the server broke SMTP (bad reply code, oversized or
	// endless reply, unexpected close during a reply).
	ErrProtocol = errors.New("SMTP protocol error")
	// ErrUnreachable: the TCP connection could not be made.
	ErrUnreachable = errors.New("host unreachable")
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
	if e.Host != "" {
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
