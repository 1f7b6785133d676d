package mtatest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"strings"
	"time"
)

// Reply is one SMTP reply: the code and the text lines joined by "\n".
type Reply struct {
	Code int
	Text string
}

func (r Reply) String() string { return fmt.Sprintf("%d %s", r.Code, r.Text) }

// Dialog is a raw SMTP client for checking an instance without the probe
// engine: one command, one reply, nothing interpreted, so a test sees
// exactly what the MTA answered.
type Dialog struct {
	Greeting Reply
	conn     net.Conn
	tp       *textproto.Conn
	timeout  time.Duration
}

// Dial connects to addr and reads the greeting.
func Dial(ctx context.Context, addr netip.AddrPort) (*Dialog, error) {
	return DialFrom(ctx, netip.Addr{}, addr)
}

// DialFrom is Dial from a given local address (say TrustedAddr, to
// connect as a trusted client); the zero Addr lets the system choose.
func DialFrom(ctx context.Context, local netip.Addr, addr netip.AddrPort) (*Dialog, error) {
	var d net.Dialer
	if local.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	dl := &Dialog{conn: c, tp: textproto.NewConn(c), timeout: 30 * time.Second}
	if dl.Greeting, err = dl.read(); err != nil {
		c.Close()
		return nil, err
	}
	if dl.Greeting.Code != 220 {
		c.Close()
		return nil, fmt.Errorf("%w: %v", errNoGreeting, dl.Greeting)
	}
	return dl, nil
}

func (d *Dialog) read() (Reply, error) {
	d.conn.SetDeadline(time.Now().Add(d.timeout))
	code, msg, err := d.tp.ReadResponse(0)
	if code == 0 && err != nil {
		return Reply{}, fmt.Errorf("read reply: %w", err)
	}
	// A non-2xx reply comes back as a *textproto.Error, which is not an
	// error here: the code is what the test asserts.
	return Reply{Code: code, Text: msg}, nil
}

// Cmd sends one command line and returns the reply.
func (d *Dialog) Cmd(format string, args ...any) (Reply, error) {
	d.conn.SetDeadline(time.Now().Add(d.timeout))
	if err := d.tp.PrintfLine(format, args...); err != nil {
		return Reply{}, fmt.Errorf("send: %w", err)
	}
	return d.read()
}

// Data sends DATA and, after 354, the message (dot-stuffed, RFC 5321
// §4.5.2) and returns the reply to the final ".". A DATA reply other than
// 354 is returned as is.
func (d *Dialog) Data(msg string) (Reply, error) {
	r, err := d.Cmd("DATA")
	if err != nil || r.Code != 354 {
		return r, err
	}
	d.conn.SetDeadline(time.Now().Add(d.timeout))
	w := d.tp.DotWriter()
	if _, err := w.Write([]byte(strings.ReplaceAll(msg, "\r\n", "\n"))); err != nil {
		return Reply{}, fmt.Errorf("send data: %w", err)
	}
	if err := w.Close(); err != nil {
		return Reply{}, fmt.Errorf("send data: %w", err)
	}
	return d.read()
}

// StartTLS sends STARTTLS and, after 220, does the TLS handshake without
// verifying the certificate (the instances' are self-signed). As RFC 3207
// §4.2 requires, the caller must send EHLO again.
func (d *Dialog) StartTLS() (*tls.ConnectionState, error) {
	r, err := d.Cmd("STARTTLS")
	if err != nil {
		return nil, err
	}
	if r.Code != 220 {
		return nil, fmt.Errorf("STARTTLS: %v", r)
	}
	tc := tls.Client(d.conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	tc.SetDeadline(time.Now().Add(d.timeout))
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	d.conn, d.tp = tc, textproto.NewConn(tc)
	st := tc.ConnectionState()
	return &st, nil
}

// Close sends QUIT and closes the connection.
func (d *Dialog) Close() error {
	d.conn.SetDeadline(time.Now().Add(5 * time.Second))
	d.tp.PrintfLine("QUIT")
	d.tp.ReadResponse(221)
	return d.conn.Close()
}
