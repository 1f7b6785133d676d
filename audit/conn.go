package audit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Transcript bounds: a hostile or chatty server cannot make one transcript
// grow without limit. Dropped lines are counted in Transcript.Truncated.
const (
	MaxTranscriptLines   = 2000
	MaxTranscriptLineLen = 1024
)

// client is one SMTP client connection with its transcript. It is not
// safe for concurrent use.
type client struct {
	p      *prober
	conn   net.Conn
	r      *bufio.Reader
	tr     *Transcript
	addr   string
	host   string
	stop   func() bool // stops the context.AfterFunc
	ctx    context.Context
	banner *Reply
	ext    map[string]string // EHLO keywords, upper case → parameters
	helo   string            // "EHLO" or "HELO": what the session used
	tls    *TLSInfo
	closed bool
	// used: a transaction may be open, so the next test starts with RSET.
	used       bool
	roundTrips int
	commands   int
	// rtt is how long the EHLO (or HELO) reply took: the link's round
	// trip plus the server's time for a cheap command.
	rtt time.Duration
	// cutAt, when set, is when pipeline gives up on a slow batch
	// (errSlow): the prober then spreads the unanswered tests over more
	// connections.
	cutAt time.Time
}

// errSlow: a pipelined batch was not answered by client.cutAt. The
// connection is closed; the unanswered tests are run elsewhere.
var errSlow = errors.New("replies slower than the batch allows")

// log appends a transcript line, bounded.
func (c *client) log(dir, text string) {
	if len(c.tr.Lines) >= MaxTranscriptLines {
		c.tr.Truncated++
		return
	}
	if len(text) > MaxTranscriptLineLen {
		text = fmt.Sprintf("%s... [%d bytes]", text[:MaxTranscriptLineLen], len(text))
	}
	c.tr.Lines = append(c.tr.Lines, TranscriptLine{T: c.p.now(), Dir: dir, Text: text})
}

// dial connects to addr ("ip:port"), reads the greeting and, for
// implicit TLS (port 465, RFC 8314 §3.3), handshakes first.
func (p *prober) dial(ctx context.Context, host, addr string, implicitTLS bool, conn int) (*client, error) {
	tr := &Transcript{Conn: conn, Remote: addr, Start: p.now()}
	c := &client{p: p, tr: tr, addr: addr, host: host, ctx: ctx}
	if err := p.limiter.wait(ctx); err != nil {
		c.log("*", "not connected: "+err.Error())
		return c, err
	}
	c.log("*", "connecting to "+addr)
	nc, err := p.connect(ctx, c, addr)
	if err != nil {
		c.log("*", "connect failed: "+err.Error())
		c.closed = true
		tr.End = p.now()
		if ctx.Err() != nil {
			return c, ctx.Err()
		}
		// The dial error stays wrapped (its errno tells refused from no
		// route, connectFailure), except a timeout's: that would read as
		// the run's own deadline.
		perr := fmt.Errorf("%w: %w", ErrUnreachable, err)
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			perr = fmt.Errorf("%w: %v", ErrTimeout, err)
		}
		return c, &ProbeError{Host: host, Addr: addr, Command: "connect", Err: perr}
	}
	c.conn = nc
	c.stop = context.AfterFunc(ctx, func() { nc.Close() })
	tr.Local = nc.LocalAddr().String()
	p.noteSource(nc.LocalAddr())
	c.log("*", "connected from "+tr.Local)
	c.r = bufio.NewReaderSize(nc, MaxReplyLine+8)
	if implicitTLS {
		if err := c.handshake(); err != nil {
			return c, err
		}
	}
	rep, err := c.read("greeting", p.opts.GreetingTimeout)
	if err != nil {
		return c, err
	}
	c.banner = rep
	return c, nil
}

// connect dials addr. A connect that fails on this machine (descriptors
// or source ports exhausted) says nothing about the server: the in-flight
// bound is lowered and the connect retried, with a growing pause, until
// ConnectTimeout has passed. Outcomes feed the adaptive bound.
func (p *prober) connect(ctx context.Context, c *client, addr string) (net.Conn, error) {
	start := time.Now()
	for try := 1; ; try++ {
		dctx, cancel := context.WithTimeout(ctx, p.opts.ConnectTimeout)
		nc, err := p.opts.Dialer(dctx, "tcp", addr)
		cancel()
		switch {
		case err == nil:
			p.gate.connected()
			return nc, nil
		case ctx.Err() != nil:
			return nil, err
		case isLocalDialError(err):
			p.gate.localError(err)
			pause := min(time.Duration(try)*50*time.Millisecond, time.Second)
			if time.Since(start)+pause >= p.opts.ConnectTimeout {
				return nil, err
			}
			c.log("*", fmt.Sprintf("connect failed on this machine (%v); retrying in %s", err, pause))
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, err
			case <-t.C:
			}
		default:
			if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
				p.gate.timedOut()
			}
			return nil, err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// fail turns an I/O error into a ProbeError with the right sentinel; the
// context's error wins, because AfterFunc closing the socket is what made
// the I/O fail.
func (c *client) fail(cmd string, err error) error {
	if c.ctx.Err() != nil {
		c.log("*", "cancelled: "+c.ctx.Err().Error())
		c.abort()
		return c.ctx.Err()
	}
	switch {
	case isTimeout(err):
		err = fmt.Errorf("%w: %v", ErrTimeout, err)
	case errors.Is(err, ErrProtocol), errors.Is(err, ErrDropped), errors.Is(err, ErrTLS):
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("%w: %v", ErrDropped, err)
	default:
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = fmt.Errorf("%w: %v", ErrDropped, err)
		}
	}
	c.log("*", cmd+" failed: "+err.Error())
	c.abort()
	return &ProbeError{Host: c.host, Addr: c.addr, Command: cmd, Err: err}
}

// read reads one reply within timeout.
func (c *client) read(cmd string, timeout time.Duration) (*Reply, error) {
	if c.closed {
		return nil, &ProbeError{Host: c.host, Addr: c.addr, Command: cmd, Err: ErrDropped}
	}
	deadline := time.Now().Add(timeout)
	cut := !c.cutAt.IsZero() && c.cutAt.Before(deadline)
	if cut {
		deadline = c.cutAt
	}
	c.conn.SetReadDeadline(deadline)
	rep, err := readReply(c.r, func(l string) { c.log("S", l) })
	if err != nil {
		if cut && isTimeout(err) && c.ctx.Err() == nil {
			c.abort()
			return nil, &ProbeError{Host: c.host, Addr: c.addr, Command: cmd, Err: errSlow}
		}
		return nil, c.fail(cmd, err)
	}
	if rep.Code == 421 {
		// RFC 5321 §3.8: the server is closing the channel.
		c.log("*", "server sent 421, closing")
		c.abort()
	}
	return rep, nil
}

// write sends lines in one write (one round trip when pipelined).
func (c *client) write(cmd string, lines ...string) error {
	b, err := c.prepare(cmd, lines)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(c.conn, b); err != nil {
		return c.fail(cmd, err)
	}
	return nil
}

// prepare checks that no reply is waiting, logs and counts lines, sets the
// write deadline and returns the bytes to send.
func (c *client) prepare(cmd string, lines []string) (string, error) {
	if c.closed {
		return "", &ProbeError{Host: c.host, Addr: c.addr, Command: cmd, Err: ErrDropped}
	}
	if n := c.r.Buffered(); n > 0 {
		// RFC 5321 §4.3.1 / RFC 2920 §3.1: every reply answers one command,
		// in order. Bytes already waiting before a command is sent answer
		// no command; reading on would pair every later reply with the
		// wrong command (and could turn a refusal into an acceptance).
		early, _ := c.r.Peek(min(n, 64))
		return "", c.fail(cmd, fmt.Errorf("%w: the server sent %q before the command (a reply to no command)", ErrProtocol, early))
	}
	var b strings.Builder
	for _, l := range lines {
		c.log("C", l)
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.p.opts.CommandTimeout))
	c.commands += len(lines)
	c.roundTrips++
	return b.String(), nil
}

// pipeline sends lines as one group and reads one reply per line (RFC 2920
// §3.1). It returns the replies read before an error. A group of more than
// one line is written while its replies are read, so a large batch cannot
// deadlock with a server whose replies fill the socket buffers before it
// has read every command (RFC 2920 §3.1's window caution). With cutAt set
// it gives up at that time with errSlow and closes the connection.
func (c *client) pipeline(lines []string) ([]*Reply, error) {
	cmd := verbOf(lines[0])
	var werr chan error
	if len(lines) == 1 {
		if err := c.write(cmd, lines...); err != nil {
			return nil, err
		}
	} else {
		b, err := c.prepare(cmd, lines)
		if err != nil {
			return nil, err
		}
		werr = make(chan error, 1)
		go func(conn net.Conn) {
			_, err := io.WriteString(conn, b)
			werr <- err
		}(c.conn)
	}
	reps := make([]*Reply, 0, len(lines))
	var err error
	for _, l := range lines {
		var rep *Reply
		if rep, err = c.read(verbOf(l), c.p.opts.CommandTimeout); err != nil {
			break
		}
		reps = append(reps, rep)
		if rep.Code == 421 {
			err = &ProbeError{Host: c.host, Addr: c.addr, Command: verbOf(l), Code: 421,
				Enhanced: rep.Enhanced, Line: rep.String(), Err: ErrDropped}
			break
		}
	}
	if werr != nil {
		if err != nil {
			c.abort() // unblocks the writer
		}
		if we := <-werr; we != nil && err == nil {
			err = c.fail(cmd, we)
		}
	}
	return reps, err
}

// cmd sends one command and reads its reply.
func (c *client) cmd(line string) (*Reply, error) {
	reps, err := c.pipeline([]string{line})
	if len(reps) == 1 {
		return reps[0], err
	}
	return nil, err
}

func verbOf(line string) string {
	v, _, _ := strings.Cut(line, " ")
	if strings.HasPrefix(strings.ToUpper(line), "MAIL FROM") || strings.HasPrefix(strings.ToUpper(line), "RCPT TO") {
		v, _, _ = strings.Cut(line, ":")
	}
	return strings.ToUpper(v)
}

// hello sends EHLO and falls back to HELO (RFC 5321 §3.2, §4.1.4) when
// EHLO gets 500, 501, 502 or 550. It returns the refusing reply, if any.
func (c *client) hello(name string) (*Reply, error) {
	start := time.Now()
	rep, err := c.cmd("EHLO " + name)
	if err != nil {
		return nil, err
	}
	c.rtt = time.Since(start)
	if rep.Code/100 == 2 {
		c.helo = "EHLO"
		c.ext = parseExtensions(rep)
		return nil, nil
	}
	switch rep.Code {
	case 500, 501, 502, 550, 504:
	default:
		return rep, nil
	}
	rep, err = c.cmd("HELO " + name)
	if err != nil {
		return nil, err
	}
	if rep.Code/100 == 2 {
		c.helo = "HELO"
		c.ext = map[string]string{}
		return nil, nil
	}
	return rep, nil
}

// parseExtensions reads the EHLO keywords (RFC 5321 §4.1.1.1): every line
// after the first is "keyword [params]".
func parseExtensions(rep *Reply) map[string]string {
	ext := map[string]string{}
	for _, l := range rep.Lines[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		if k != "" {
			ext[strings.ToUpper(k)] = v
		}
	}
	return ext
}

func (c *client) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// startTLS runs STARTTLS (RFC 3207) and the new EHLO that §4.2 requires.
func (c *client) startTLS(name string) error {
	rep, err := c.cmd("STARTTLS")
	if err != nil {
		return err
	}
	if rep.Code != 220 {
		c.abort()
		return &ProbeError{Host: c.host, Addr: c.addr, Command: "STARTTLS", Code: rep.Code,
			Enhanced: rep.Enhanced, Line: rep.String(), Err: ErrTLS}
	}
	if n := c.r.Buffered(); n > 0 {
		// Plaintext sent after the 220 would be read as if it came over
		// TLS (STARTTLS response injection, cf. CVE-2011-0411).
		early, _ := c.r.Peek(min(n, 64))
		return c.fail("STARTTLS", fmt.Errorf("%w: the server sent %q after its 220, before the TLS handshake", ErrTLS, early))
	}
	if err := c.handshake(); err != nil {
		return err
	}
	// RFC 3207 §4.2: discard knowledge from before TLS, EHLO again.
	c.ext, c.helo = nil, ""
	ref, err := c.hello(name)
	if err != nil {
		return err
	}
	if ref != nil {
		return &ProbeError{Host: c.host, Addr: c.addr, Command: "EHLO after STARTTLS", Code: ref.Code,
			Enhanced: ref.Enhanced, Line: ref.String(), Err: errHeloRefused}
	}
	return nil
}

var errHeloRefused = errors.New("EHLO and HELO refused")

// handshake runs a TLS client handshake and records TLSInfo. The peer's
// certificate is verified against the host name and recorded, but a
// failed verification does not stop the probe: relay policy is what we
// measure, and many MX certificates do not verify.
func (c *client) handshake() error {
	cfg := &tls.Config{}
	if c.p.opts.TLSConfig != nil {
		cfg = c.p.opts.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = c.host
	}
	roots := cfg.RootCAs
	cfg.InsecureSkipVerify = true
	tc := tls.Client(c.conn, cfg)
	c.conn.SetDeadline(time.Now().Add(c.p.opts.CommandTimeout))
	c.log("*", "TLS handshake")
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return c.fail("TLS handshake", fmt.Errorf("%w: %v", ErrTLS, err))
	}
	c.conn.SetDeadline(time.Time{})
	c.stop()
	c.conn = tc
	c.stop = context.AfterFunc(c.ctx, func() { tc.Close() })
	c.r = bufio.NewReaderSize(tc, MaxReplyLine+8)
	st := tc.ConnectionState()
	info := &TLSInfo{Version: tls.VersionName(st.Version), CipherSuite: tls.CipherSuiteName(st.CipherSuite),
		ServerName: cfg.ServerName}
	for _, cert := range st.PeerCertificates {
		sum := sha256.Sum256(cert.Raw)
		info.Certificates = append(info.Certificates, CertInfo{Subject: cert.Subject.String(),
			Issuer: cert.Issuer.String(), DNSNames: cert.DNSNames, NotBefore: cert.NotBefore,
			NotAfter: cert.NotAfter, SHA256: hex.EncodeToString(sum[:])})
	}
	if len(st.PeerCertificates) > 0 {
		inter := x509.NewCertPool()
		for _, ic := range st.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		_, err := st.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: cfg.ServerName,
			Roots: roots, Intermediates: inter, CurrentTime: c.p.now()})
		if err != nil {
			info.VerifyError = err.Error()
		} else {
			info.Verified = true
		}
	}
	c.tls = info
	c.log("*", fmt.Sprintf("TLS %s %s verified=%v", info.Version, info.CipherSuite, info.Verified))
	return nil
}

// quit ends the session politely (bounded by a short timeout) and closes.
func (c *client) quit() {
	if c.closed {
		return
	}
	c.conn.SetDeadline(time.Now().Add(min(c.p.opts.CommandTimeout, 5*time.Second)))
	if err := c.write("QUIT", "QUIT"); err == nil {
		if rep, err := readReply(c.r, func(l string) { c.log("S", l) }); err == nil && rep.Code == 221 {
			// RFC 5321 §4.1.1.10: the server closes after 221; wait
			// briefly for it so per-host connection limits hold exactly.
			c.conn.SetReadDeadline(time.Now().Add(min(c.p.opts.CommandTimeout, 2*time.Second)))
			io.Copy(io.Discard, io.LimitReader(c.r, 4096))
		}
	}
	c.abort()
}

// abort closes the connection without QUIT (after DATA's 354, so that
// the message is never completed).
func (c *client) abort() {
	if c.closed {
		return
	}
	c.closed = true
	if c.stop != nil {
		c.stop()
	}
	if c.conn != nil {
		c.conn.Close()
	}
	c.log("*", "connection closed")
	c.tr.End = c.p.now()
}

// limiter spaces new connections globally (Options.Rate per second).
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func (l *limiter) wait(ctx context.Context) error {
	if l == nil || l.interval <= 0 {
		return ctx.Err()
	}
	l.mu.Lock()
	now := time.Now()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(l.interval)
	l.mu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
