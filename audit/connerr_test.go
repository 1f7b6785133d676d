package audit

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// native is the errno this platform's connect reports (the last of the
// list: Winsock's on Windows).
func native(errs []error) error { return errs[len(errs)-1] }

// dialErr is a failed connect as net.Dialer returns it.
func dialErr(addr string, errno error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 25},
		Err: os.NewSyscallError("connect", errno)}
}

// TestReasonForConnect: each way a connect fails gets its own words,
// chosen by the error's errno or type, and the address is not repeated
// inside the reason (the endpoint already names it).
func TestReasonForConnect(t *testing.T) {
	const addr = "192.0.2.1:25"
	wrap := func(err error) error {
		return &ProbeError{Host: "192.0.2.1", Addr: addr, Command: "connect", Err: fmt.Errorf("%w: %w", ErrUnreachable, err)}
	}
	tests := []struct {
		name, word, want string
		err              error
	}{
		{"refused", ReasonUnreachable, "connection refused", wrap(dialErr(addr, native(errnoRefused)))},
		{"no route to host", ReasonUnreachable, "no route to host", wrap(dialErr(addr, native(errnoHostUnreach)))},
		{"network unreachable", ReasonUnreachable, "network unreachable", wrap(dialErr(addr, native(errnoNetUnreach)))},
		{"errno timed out", ReasonUnreachable, "connect timed out", wrap(dialErr(addr, native(errnoTimedOut)))},
		{"connect timeout", ReasonTimeout, "connect timed out",
			&ProbeError{Host: "192.0.2.1", Addr: addr, Command: "connect", Err: fmt.Errorf("%w: %v", ErrTimeout, "dial tcp "+addr+": i/o timeout")}},
		{"DNS not found", ReasonUnreachable, "DNS: mx.example.invalid does not exist",
			wrap(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "mx.example.invalid", IsNotFound: true}})},
		{"DNS timeout", ReasonUnreachable, "DNS: the lookup of mx.example timed out",
			wrap(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "i/o timeout", Name: "mx.example", IsTimeout: true}})},
		{"other errno", ReasonUnreachable, "connect failed: connect: " + os.ErrPermission.Error(),
			wrap(dialErr(addr, os.ErrPermission))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := reasonFor(tc.err)
			if reasonWord(r) != tc.word || !strings.Contains(r, tc.want) {
				t.Errorf("reason %q, want %q with %q", r, tc.word, tc.want)
			}
			if strings.Contains(r, "192.0.2.1") || strings.Contains(r, "host unreachable") {
				t.Errorf("reason %q repeats the address or says host unreachable", r)
			}
		})
	}
}

// TestRunRefusedReason: a real refused connect on loopback, end to end:
// "connection refused", and the address once in the target's reason.
func TestRunRefusedReason(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	res, err := Run(context.Background(), Options{Targets: []string{addr}, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tg := res.Targets[0]
	ep := tg.Endpoints[0]
	if !strings.Contains(ep.Reason, "connection refused") || strings.Contains(ep.Reason, "host unreachable") {
		t.Errorf("endpoint reason %q, want connection refused", ep.Reason)
	}
	if n := strings.Count(tg.Reason, "127.0.0.1"); n != 1 {
		t.Errorf("target reason %q names the address %d times, want once", tg.Reason, n)
	}
}

// TestProbeErrorHostOnce: a target given as an address is its own host.
func TestProbeErrorHostOnce(t *testing.T) {
	for _, tc := range []struct{ host, addr, want string }{
		{"127.0.0.1", "127.0.0.1:25", "127.0.0.1:25 greeting: x"},
		{"::1", "[::1]:25", "[::1]:25 greeting: x"},
		{"mx.example", "192.0.2.1:25", "mx.example 192.0.2.1:25 greeting: x"},
	} {
		if got := (&ProbeError{Host: tc.host, Addr: tc.addr, Command: "greeting", Err: fmt.Errorf("x")}).Error(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
}
