// Package smtptest is a scripted SMTP server for tests and the lab. It is
// written on plain net.Conn with hand parsing, so that a Policy can make it
// answer anything, malformed replies included.
//
// A Server implements the relay-relevant part of RFC 5321 (EHLO/HELO,
// MAIL, RCPT, DATA, RSET, NOOP, QUIT), PIPELINING (RFC 2920: replies are
// flushed only when the client's input is drained, so a pipelined group
// costs one round trip), STARTTLS (RFC 3207) with a generated self-signed
// certificate, and AUTH PLAIN/LOGIN (RFC 4954, RFC 4616). Relay decisions
// come from the Policy: either the named policies (Open, Closed554, ...)
// or a Decide hook, which the lab uses to make a simulated Windows host's
// SMTP face obey its simulated state.
//
// Every session is recorded (Server.Sessions) so tests can assert what the
// client sent and how many round trips it needed. Memory and time per
// connection are bounded (MaxLine, MaxData, IdleTimeout, MaxCommands).
package smtptest

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits per connection.
const (
	MaxLine     = 4096    // bytes per command line (RFC 5321 §4.5.3.1.4 says 512; we are lenient)
	MaxData     = 1 << 20 // bytes of message data kept
	MaxCommands = 2000
	IdleTimeout = 30 * time.Second
)

// Policy decides how the server answers. The zero Policy is a closed
// server for LocalDomains that refuses to relay with 554 5.7.1.
type Policy struct {
	// Hostname is the name in the greeting and EHLO reply; default
	// "mx.example.com".
	Hostname string
	// Banner replaces the greeting text after "220 ".
	Banner string
	// GreetingCode replaces 220 (e.g. 554 "no service", RFC 5321 §3.1).
	GreetingCode int
	// LocalDomains are the domains delivered locally; default
	// ["example.com"]. Local recipients are postmaster (and bare
	// <postmaster>, RFC 5321 §4.5.1) plus Users, or any local part when
	// AcceptAllLocal.
	LocalDomains   []string
	Users          []string
	AcceptAllLocal bool

	// Relay rules used when Decide is nil. A foreign recipient is
	// accepted when RelayOpen, or the session matches one of the rules.
	RelayOpen        bool // anyone may relay
	RelayNullSender  bool // MAIL FROM:<> may relay
	RelayLocalSender bool // a sender in LocalDomains may relay (sendmail relay_local_from)
	PercentHack      bool // L%V@local and V!L@local are relayed
	RelayTLS         bool // relay only after STARTTLS
	AcceptAll        bool // every RCPT is accepted, whatever it is
	// DenyCode and DenyText answer a refused relay; default 554
	// "5.7.1 Relay access denied".
	DenyCode int
	DenyText string
	// RequireAuth answers MAIL with 530 5.7.0 until AUTH succeeded.
	RequireAuth bool

	// Decide, when set, answers every RCPT. Code 0 means "use the rules".
	Decide func(s *Session, rcpt string) (code int, text string)
	// Auth checks AUTH PLAIN/LOGIN credentials; nil disables AUTH.
	// An authenticated session may relay under the default rules.
	Auth func(user, pass string) bool
	// NTLM offers AUTH NTLM; NullSession accepts an anonymous NTLM
	// login (no user, no password) as a login, the Windows 2000 SMTP bug
	// MS02-011 (CVE-2002-0054). Other NTLM logins fail (the server has no
	// account database). CRAMMD5 offers AUTH CRAM-MD5, which always fails
	// for the same reason.
	NTLM        bool
	NullSession bool
	CRAMMD5     bool
	// GuestAuth, when set and true at the time of a failed login, turns
	// it into a login as Guest, as an enabled Guest account does on
	// Exchange 5.5-2003 and IIS SMTP (docs/windows-relay.md §1.3): the session
	// is authenticated and, with the default rules, may relay.
	GuestAuth func() bool
	// Deliver is called for each message accepted after ".".
	Deliver func(Message)
	// Discard drops the connection after "." instead of answering 250
	// (accept-then-discard) and does not call Deliver.
	Discard bool
	// DataCode replaces the 354 answer to DATA (e.g. 554 late reject).
	DataCode int

	// HeloOnly answers EHLO with 502 (RFC 5321 §3.2: the client falls
	// back to HELO).
	HeloOnly bool
	// Pipelining advertises PIPELINING (RFC 2920).
	Pipelining bool
	// StartTLS advertises STARTTLS; TLSConfig defaults to a generated
	// self-signed certificate for Hostname.
	StartTLS  bool
	TLSConfig *tls.Config

	// Greylist answers the first attempt of each (client IP, MAIL FROM,
	// RCPT) triplet with 450 4.2.0; later attempts go through the rules.
	Greylist bool
	// Delay is server time spent before every reply, one reply after the
	// other (a slow server); Tarpit is added before every 5xx reply.
	Delay  time.Duration
	Tarpit time.Duration
	// Latency delays every write of the server by this much, as a slow
	// link would: each reply arrives Latency after the server sent it, a
	// pipelined group's replies (flushed together) together, so a client
	// that waits for every reply pays Latency per reply and a pipelining
	// one per group.
	Latency time.Duration
	// DropAfterErrors answers the command after the Nth error reply of a
	// session with "421 4.7.0 too many errors" and closes (0: never).
	DropAfterErrors int
	// Override, when it returns ok, sends raw (CRLFs included) instead of
	// the normal reply to a command line, for malformed-reply tests.
	// The line "" is the greeting.
	Override func(s *Session, line string) (raw string, ok bool)
}

// Open relays for anyone.
func Open() Policy { return Policy{RelayOpen: true, Pipelining: true} }

// Closed554 refuses relay with 554 5.7.1 at RCPT (Postfix relay_domains_reject_code).
func Closed554() Policy { return Policy{Pipelining: true} }

// Closed454 refuses relay with Postfix's default "454 4.7.1 Relay access
// denied" (defer_unauth_destination): closed, not greylisting.
func Closed454() Policy {
	return Policy{Pipelining: true, DenyCode: 454, DenyText: "4.7.1 Relay access denied"}
}

// NullSenderOpen relays only for MAIL FROM:<>.
func NullSenderOpen() Policy { return Policy{Pipelining: true, RelayNullSender: true} }

// SpoofedLocalSenderOpen relays when the sender claims a local domain.
func SpoofedLocalSenderOpen() Policy { return Policy{Pipelining: true, RelayLocalSender: true} }

// PercentHackOpen relays user%remote@local and remote!user@local forms.
func PercentHackOpen() Policy { return Policy{Pipelining: true, PercentHack: true} }

// AcceptThenDiscard accepts every RCPT and the DATA, then drops the
// connection after "." without delivering.
func AcceptThenDiscard() Policy {
	return Policy{Pipelining: true, AcceptAll: true, Discard: true}
}

// Greylist defers the first attempt of each triplet with 450 4.2.0.
func Greylist() Policy { return Policy{Pipelining: true, Greylist: true} }

// Tarpit is Closed554 with every 5xx reply delayed.
func Tarpit(delay time.Duration) Policy { return Policy{Pipelining: true, Tarpit: delay} }

// DropAfterErrors is Closed554 that hangs up after n error replies, like
// Postfix's smtpd_hard_error_limit.
func DropAfterErrors(n int) Policy { return Policy{DropAfterErrors: n} }

// HeloOnly is Closed554 that does not know EHLO.
func HeloOnly() Policy { return Policy{HeloOnly: true} }

// OpenAfterSTARTTLS relays only for TLS sessions.
func OpenAfterSTARTTLS() Policy { return Policy{Pipelining: true, StartTLS: true, RelayTLS: true} }

// Session is the state of one SMTP session, as Decide sees it.
type Session struct {
	ID            int
	RemoteAddr    netip.Addr
	Authenticated bool
	AuthUser      string
	Helo          string
	MailFrom      string // without angle brackets; "" for <>
	Rcpts         []string
	TLS           bool
}

// Message is one accepted message.
type Message struct {
	RemoteAddr    netip.Addr
	Helo          string
	MailFrom      string
	RcptTo        []string
	Data          []byte // dot-unstuffed, CRLF line ends
	TLS           bool
	Authenticated bool
	Time          time.Time
}

// Record is what the server saw in one session.
type Record struct {
	ID         int
	RemoteAddr string
	Start, End time.Time
	Helo       string
	TLS        bool
	// Lines are "C: ..." and "S: ..." lines in order.
	Lines []string
	// Commands counts command lines read; Flushes counts reply flushes,
	// i.e. round trips (greeting included).
	Commands int
	Flushes  int
	Messages int
}

// Server is a running test SMTP server.
type Server struct {
	p   Policy
	tls *tls.Config

	mu        sync.Mutex
	l         net.Listener
	conns     map[net.Conn]struct{}
	records   []*Record
	grey      map[string]bool
	active    int
	maxActive int
	closed    bool
	done      chan struct{}
	wg        sync.WaitGroup
}

// NewServer returns a server for p; start it with Serve or ListenAndServe.
func NewServer(p Policy) *Server {
	if p.Hostname == "" {
		p.Hostname = "mx.example.com"
	}
	if p.LocalDomains == nil {
		p.LocalDomains = []string{"example.com"}
	}
	if p.DenyCode == 0 {
		p.DenyCode = 554
		if p.DenyText == "" {
			p.DenyText = "5.7.1 Relay access denied"
		}
	}
	if p.DenyText == "" {
		p.DenyText = "Relay access denied"
	}
	s := &Server{p: p, conns: map[net.Conn]struct{}{}, grey: map[string]bool{}, done: make(chan struct{})}
	if p.StartTLS {
		s.tls = p.TLSConfig
		if s.tls == nil {
			s.tls = selfSigned(p.Hostname)
		}
	}
	return s
}

// Serve accepts connections on l until Close. It returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return errors.New("smtptest: server closed")
	}
	s.l = l
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("smtptest: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.active++
		if s.active > s.maxActive {
			s.maxActive = s.active
		}
		rec := &Record{ID: len(s.records) + 1, RemoteAddr: c.RemoteAddr().String(), Start: time.Now()}
		s.records = append(s.records, rec)
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c, rec)
			s.gone(c, rec)
			c.Close()
		}()
	}
}

// ListenAndServe listens on addr (e.g. "127.0.0.1:0") and serves in the
// background; Addr reports the address.
func (s *Server) ListenAndServe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("smtptest: listen: %w", err)
	}
	s.mu.Lock()
	s.l = l
	s.mu.Unlock()
	go s.Serve(l)
	return nil
}

// Addr is the listening address, or "" before Serve/ListenAndServe.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l == nil {
		return ""
	}
	return s.l.Addr().String()
}

// Close closes the listener and every connection and waits for the
// connection goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		close(s.done)
	}
	s.closed = true
	var err error
	if s.l != nil {
		err = s.l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Sessions returns a copy of every session record so far.
func (s *Server) Sessions() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, len(s.records))
	for i, r := range s.records {
		out[i] = *r
		out[i].Lines = append([]string(nil), r.Lines...)
	}
	return out
}

// MaxConcurrent is the highest number of simultaneous connections seen.
func (s *Server) MaxConcurrent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxActive
}

// TB is the part of testing.TB that Serve and Start use (*testing.T and
// *testing.B satisfy it). Taking it instead of testing.TB keeps package
// testing out of the relaylock binary, whose lab and demo commands serve
// this package's server.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Serve starts a server for p on 127.0.0.1:0, closes it when the test
// ends, and returns its address.
func Serve(t TB, p Policy) string {
	t.Helper()
	s := Start(t, p)
	return s.Addr()
}

// Start is Serve returning the Server, for assertions on its records.
func Start(t TB, p Policy) *Server {
	t.Helper()
	s := NewServer(p)
	if err := s.ListenAndServe("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// conn is one server-side connection.
type conn struct {
	s      *Server
	c      net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	rec    *Record
	sess   Session
	errors int
	inTxn  bool
	// dead: a write failed (the client is gone); the session ends
	// instead of answering what it had buffered, as a real server would.
	dead bool
}

// gone counts a connection as ended (once). The server calls it before
// the last reply of a session it ends (221, 421) is sent, and before the
// close, so a client reacting to either cannot see the old session still
// counted: MaxConcurrent is exact.
func (s *Server) gone(nc net.Conn, rec *Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[nc]; !ok {
		return
	}
	delete(s.conns, nc)
	s.active--
	rec.End = time.Now()
}

func (s *Server) handle(nc net.Conn, rec *Record) {
	orig := nc
	if s.p.Latency > 0 {
		lc := newLatencyConn(nc, s.p.Latency)
		defer lc.Close()
		nc = lc
	}
	c := &conn{s: s, c: nc, rec: rec}
	c.r = bufio.NewReaderSize(nc, MaxLine)
	c.w = bufio.NewWriter(nc)
	c.sess.ID = rec.ID
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.sess.RemoteAddr = ap.Addr().Unmap()
	}
	p := &s.p
	if raw, ok := c.override(""); ok {
		c.raw(raw)
	} else if p.GreetingCode != 0 && p.GreetingCode != 220 {
		c.reply(p.GreetingCode, "5.3.2 "+p.Hostname+" no SMTP service here")
	} else {
		banner := p.Banner
		if banner == "" {
			banner = p.Hostname + " ESMTP smtptest"
		}
		c.reply(220, banner)
	}
	if c.flush() != nil {
		return
	}
	for n := 0; n < MaxCommands; n++ {
		line, err := c.readLine()
		if err != nil {
			return
		}
		select {
		case <-s.done:
			return
		default:
		}
		if !c.command(line) || c.dead {
			s.gone(orig, rec)
			c.flush()
			return
		}
		if c.r.Buffered() == 0 {
			if c.flush() != nil {
				return
			}
		}
	}
	c.reply(421, "4.7.0 too many commands")
	c.flush()
}

func (c *conn) log(dir, text string) {
	c.s.mu.Lock()
	if len(c.rec.Lines) < 5000 {
		c.rec.Lines = append(c.rec.Lines, dir+": "+text)
	}
	c.s.mu.Unlock()
}

func (c *conn) readLine() (string, error) {
	c.c.SetReadDeadline(time.Now().Add(IdleTimeout))
	var b []byte
	for {
		frag, isPrefix, err := c.r.ReadLine()
		if err != nil {
			return "", err
		}
		if len(b)+len(frag) > MaxLine {
			c.reply(500, "5.5.2 line too long")
			c.flush()
			return "", errors.New("line too long")
		}
		b = append(b, frag...)
		if !isPrefix {
			break
		}
	}
	line := string(b)
	c.s.mu.Lock()
	c.rec.Commands++
	c.s.mu.Unlock()
	c.log("C", line)
	return line, nil
}

func (c *conn) flush() error {
	if c.w.Buffered() == 0 {
		return nil
	}
	c.s.mu.Lock()
	c.rec.Flushes++
	c.s.mu.Unlock()
	c.c.SetWriteDeadline(time.Now().Add(IdleTimeout))
	err := c.w.Flush()
	if err != nil {
		c.dead = true
	}
	return err
}

func (c *conn) override(line string) (string, bool) {
	if c.s.p.Override == nil {
		return "", false
	}
	return c.s.p.Override(&c.sess, line)
}

func (c *conn) raw(s string) {
	c.log("S", strings.TrimRight(s, "\r\n"))
	c.w.WriteString(s)
}

// sleep waits d or until the server is closed.
func (c *conn) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.s.done:
	}
}

// reply writes a (possibly multi-line) reply; text lines are split on "\n".
func (c *conn) reply(code int, text string) {
	p := &c.s.p
	if p.Delay > 0 {
		c.flush()
		c.sleep(p.Delay)
	}
	if code >= 500 && p.Tarpit > 0 {
		c.flush()
		c.sleep(p.Tarpit)
	}
	if code >= 400 {
		c.errors++
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		s := fmt.Sprintf("%03d%s%s", code, sep, l)
		c.log("S", s)
		c.w.WriteString(s + "\r\n")
	}
}

// command handles one line; false ends the session.
func (c *conn) command(line string) bool {
	p := &c.s.p
	if p.DropAfterErrors > 0 && c.errors >= p.DropAfterErrors {
		c.reply(421, "4.7.0 "+p.Hostname+" Error: too many errors")
		return false
	}
	if raw, ok := c.override(line); ok {
		c.raw(raw)
		return !strings.HasPrefix(raw, "421")
	}
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	switch verb {
	case "EHLO":
		if p.HeloOnly {
			c.reply(502, "5.5.2 Error: command not recognized")
			return true
		}
		if arg == "" {
			c.reply(501, "5.5.4 Syntax: EHLO hostname")
			return true
		}
		c.resetSession(arg)
		ext := []string{p.Hostname}
		if p.Pipelining {
			ext = append(ext, "PIPELINING")
		}
		ext = append(ext, "SIZE 10240000", "8BITMIME")
		if c.s.tls != nil && !c.sess.TLS {
			ext = append(ext, "STARTTLS")
		}
		if mechs := c.mechanisms(); len(mechs) > 0 {
			ext = append(ext, "AUTH "+strings.Join(mechs, " "))
		}
		ext = append(ext, "ENHANCEDSTATUSCODES")
		c.reply(250, strings.Join(ext, "\n"))
	case "HELO":
		if arg == "" {
			c.reply(501, "5.5.4 Syntax: HELO hostname")
			return true
		}
		c.resetSession(arg)
		c.reply(250, p.Hostname)
	case "STARTTLS":
		if c.s.tls == nil || c.sess.TLS {
			c.reply(502, "5.5.1 STARTTLS not available")
			return true
		}
		c.reply(220, "2.0.0 Ready to start TLS")
		if c.flush() != nil {
			return false
		}
		tc := tls.Server(c.c, c.s.tls)
		tc.SetDeadline(time.Now().Add(IdleTimeout))
		if err := tc.Handshake(); err != nil {
			c.log("*", "TLS handshake failed: "+err.Error())
			return false
		}
		c.c = tc
		c.r = bufio.NewReaderSize(tc, MaxLine)
		c.w = bufio.NewWriter(tc)
		// RFC 3207 §4.2: forget everything learnt before TLS.
		c.sess = Session{ID: c.sess.ID, RemoteAddr: c.sess.RemoteAddr, TLS: true}
		c.inTxn = false
		c.s.mu.Lock()
		c.rec.TLS = true
		c.s.mu.Unlock()
	case "AUTH":
		c.auth(arg)
	case "MAIL":
		c.mail(arg)
	case "RCPT":
		c.rcpt(arg)
	case "DATA":
		return c.data()
	case "RSET":
		c.inTxn = false
		c.sess.MailFrom, c.sess.Rcpts = "", nil
		c.reply(250, "2.0.0 Ok")
	case "NOOP":
		c.reply(250, "2.0.0 Ok")
	case "QUIT":
		c.reply(221, "2.0.0 Bye")
		return false
	case "VRFY", "EXPN":
		c.reply(502, "5.5.1 command not implemented")
	default:
		c.reply(500, "5.5.2 Error: command not recognized")
	}
	return true
}

func (c *conn) resetSession(helo string) {
	c.sess.Helo = helo
	c.sess.MailFrom, c.sess.Rcpts = "", nil
	c.inTxn = false
	c.s.mu.Lock()
	c.rec.Helo = helo
	c.s.mu.Unlock()
}

// path extracts the address from "FROM:<a>" / "TO:<a>" arguments,
// leniently (missing brackets allowed, parameters after ">" dropped).
func path(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	a := strings.TrimSpace(arg[len(prefix):])
	if strings.HasPrefix(a, "<") {
		end := strings.LastIndex(a, ">")
		if end < 0 {
			return "", false
		}
		return a[1:end], true
	}
	a, _, _ = strings.Cut(a, " ")
	return a, a != ""
}

func (c *conn) mail(arg string) {
	p := &c.s.p
	if c.sess.Helo == "" {
		c.reply(503, "5.5.1 Error: send HELO/EHLO first")
		return
	}
	if c.inTxn {
		c.reply(503, "5.5.1 Error: nested MAIL command")
		return
	}
	from, ok := path(arg, "FROM:")
	if !ok {
		c.reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
		return
	}
	if p.RequireAuth && !c.sess.Authenticated {
		c.reply(530, "5.7.0 Authentication required")
		return
	}
	c.inTxn = true
	c.sess.MailFrom, c.sess.Rcpts = from, nil
	c.reply(250, "2.1.0 Ok")
}

func (c *conn) rcpt(arg string) {
	p := &c.s.p
	if !c.inTxn {
		c.reply(503, "5.5.1 Error: need MAIL command")
		return
	}
	rcpt, ok := path(arg, "TO:")
	if !ok {
		c.reply(501, "5.5.4 Syntax: RCPT TO:<address>")
		return
	}
	code, text := 0, ""
	if p.Decide != nil {
		code, text = p.Decide(&c.sess, rcpt)
	}
	if code == 0 {
		code, text = c.rules(rcpt)
	}
	if code/100 == 2 {
		c.sess.Rcpts = append(c.sess.Rcpts, rcpt)
	}
	c.reply(code, text)
}

// rules is the default relay decision.
func (c *conn) rules(rcpt string) (int, string) {
	p := &c.s.p
	if p.Greylist {
		key := c.sess.RemoteAddr.String() + "|" + c.sess.MailFrom + "|" + rcpt
		c.s.mu.Lock()
		seen := c.s.grey[key]
		c.s.grey[key] = true
		c.s.mu.Unlock()
		if !seen {
			return 450, "4.2.0 <" + rcpt + ">: Recipient address rejected: Greylisted, try again later"
		}
	}
	if p.AcceptAll {
		return 250, "2.1.5 Ok"
	}
	local, domain := splitAddr(rcpt)
	if domain == "" && strings.EqualFold(local, "postmaster") {
		return 250, "2.1.5 Ok" // RFC 5321 §4.5.1
	}
	if c.isLocal(domain) {
		if p.PercentHack && (strings.Contains(local, "%") || strings.Contains(local, "!")) {
			return 250, "2.1.5 Ok"
		}
		if p.AcceptAllLocal || strings.EqualFold(local, "postmaster") || containsFold(p.Users, local) {
			return 250, "2.1.5 Ok"
		}
		return 550, "5.1.1 <" + rcpt + ">: Recipient address rejected: User unknown"
	}
	if domain == "" {
		return 501, "5.1.3 Bad recipient address syntax"
	}
	_, fromDomain := splitAddr(c.sess.MailFrom)
	switch {
	case p.RelayOpen,
		p.RelayNullSender && c.sess.MailFrom == "",
		p.RelayLocalSender && c.isLocal(fromDomain),
		p.RelayTLS && c.sess.TLS,
		c.sess.Authenticated:
		return 250, "2.1.5 Ok"
	}
	return p.DenyCode, "<" + rcpt + ">: " + p.DenyText
}

func (c *conn) isLocal(domain string) bool {
	if domain == "" {
		return false
	}
	if strings.HasPrefix(domain, "[") {
		// The server's own address literal is local (RFC 5321 §4.1.3).
		lit := strings.TrimPrefix(strings.Trim(domain, "[]"), "IPv6:")
		if a, err := netip.ParseAddr(lit); err == nil {
			if la, err := netip.ParseAddrPort(c.c.LocalAddr().String()); err == nil {
				return la.Addr().Unmap() == a.Unmap()
			}
		}
		return false
	}
	return containsFold(c.s.p.LocalDomains, domain) || strings.EqualFold(domain, c.s.p.Hostname)
}

// splitAddr splits at the last "@" outside quotes.
func splitAddr(a string) (local, domain string) {
	i := strings.LastIndex(a, "@")
	if i < 0 || strings.Count(a[i:], "\"") > 0 {
		return a, ""
	}
	return a[:i], a[i+1:]
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func (c *conn) data() bool {
	p := &c.s.p
	if !c.inTxn || len(c.sess.Rcpts) == 0 {
		c.reply(554, "5.5.1 Error: no valid recipients")
		return true
	}
	if p.DataCode != 0 && p.DataCode != 354 {
		c.reply(p.DataCode, "5.7.1 Message refused")
		return true
	}
	c.reply(354, "End data with <CR><LF>.<CR><LF>")
	if c.flush() != nil {
		return false
	}
	var data []byte
	for {
		line, err := c.readDataLine()
		if err != nil {
			c.log("*", "connection closed during DATA")
			return false
		}
		if line == "." {
			break
		}
		line = strings.TrimPrefix(line, ".") // RFC 5321 §4.5.2
		if len(data)+len(line)+2 <= MaxData {
			data = append(data, line...)
			data = append(data, '\r', '\n')
		}
	}
	c.inTxn = false
	if p.Discard {
		c.log("*", "message discarded, dropping connection")
		return false
	}
	msg := Message{RemoteAddr: c.sess.RemoteAddr, Helo: c.sess.Helo, MailFrom: c.sess.MailFrom,
		RcptTo: append([]string(nil), c.sess.Rcpts...), Data: data, TLS: c.sess.TLS,
		Authenticated: c.sess.Authenticated, Time: time.Now()}
	c.s.mu.Lock()
	c.rec.Messages++
	c.s.mu.Unlock()
	if p.Deliver != nil {
		p.Deliver(msg)
	}
	c.reply(250, "2.0.0 Ok: queued")
	return true
}

func (c *conn) readDataLine() (string, error) {
	c.c.SetReadDeadline(time.Now().Add(IdleTimeout))
	var b []byte
	for {
		frag, isPrefix, err := c.r.ReadLine()
		if err != nil {
			return "", err
		}
		if len(b) < MaxLine {
			b = append(b, frag...)
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

// mechanisms are the SASL mechanisms offered after EHLO.
func (c *conn) mechanisms() []string {
	p := &c.s.p
	var m []string
	if p.Auth != nil {
		m = append(m, "PLAIN", "LOGIN")
	}
	if p.CRAMMD5 {
		m = append(m, "CRAM-MD5")
	}
	if p.NTLM {
		m = append(m, "NTLM")
	}
	return m
}

// auth implements AUTH PLAIN (RFC 4616), AUTH LOGIN, and the failing side
// of AUTH CRAM-MD5 and AUTH NTLM (see Policy.NTLM).
func (c *conn) auth(arg string) {
	p := &c.s.p
	mech, initial, _ := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	if len(c.mechanisms()) == 0 {
		c.reply(502, "5.5.1 AUTH not supported")
		return
	}
	if !slices.Contains(c.mechanisms(), mech) {
		c.reply(504, "5.5.4 unrecognized authentication type")
		return
	}
	if c.sess.Authenticated {
		c.reply(503, "5.5.1 Already authenticated")
		return
	}
	read := func(prompt string) (string, bool) {
		c.reply(334, prompt)
		if c.flush() != nil {
			return "", false
		}
		l, err := c.readLine()
		if err != nil || l == "*" {
			return "", false
		}
		return l, true
	}
	dec := func(s string) (string, bool) {
		b, err := base64.StdEncoding.DecodeString(s)
		return string(b), err == nil
	}
	cancelled := func() { c.reply(501, "5.7.0 authentication cancelled") }
	var user, pass string
	ok := false // the credentials are good
	switch mech {
	case "PLAIN":
		if initial == "" {
			var got bool
			if initial, got = read(""); !got {
				cancelled()
				return
			}
		}
		s, good := dec(initial)
		parts := strings.Split(s, "\x00")
		if !good || len(parts) != 3 {
			c.reply(501, "5.5.2 malformed PLAIN response")
			return
		}
		user, pass = parts[1], parts[2]
		ok = p.Auth(user, pass)
	case "LOGIN":
		u64 := initial
		var got bool
		if u64 == "" {
			if u64, got = read("VXNlcm5hbWU6"); !got {
				cancelled()
				return
			}
		}
		p64, got := read("UGFzc3dvcmQ6")
		if !got {
			cancelled()
			return
		}
		var ok1, ok2 bool
		user, ok1 = dec(u64)
		pass, ok2 = dec(p64)
		if !ok1 || !ok2 {
			c.reply(501, "5.5.2 malformed LOGIN response")
			return
		}
		ok = p.Auth(user, pass)
	case "CRAM-MD5":
		resp, got := read(base64.StdEncoding.EncodeToString([]byte("<" + strconv.Itoa(c.sess.ID) + ".relaylock@" + p.Hostname + ">")))
		if !got {
			cancelled()
			return
		}
		s, good := dec(resp)
		if !good {
			c.reply(501, "5.5.2 malformed CRAM-MD5 response")
			return
		}
		user, _, _ = strings.Cut(s, " ")
	case "NTLM":
		null, good := c.ntlm(initial, read)
		if !good {
			return // answered
		}
		ok = null && p.NullSession
		if null {
			user = "ANONYMOUS LOGON"
		}
	}
	switch {
	case ok:
	case p.GuestAuth != nil && p.GuestAuth():
		user = "Guest"
	default:
		c.reply(535, "5.7.8 Authentication credentials invalid")
		return
	}
	c.sess.Authenticated, c.sess.AuthUser = true, user
	c.reply(235, "2.7.0 Authentication successful")
}

// ntlmMessage decodes a base64 NTLM message of type typ, at least min
// bytes long.
func ntlmMessage(b64 string, typ uint32, min int) ([]byte, bool) {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) < min || string(b[:8]) != "NTLMSSP\x00" || binary.LittleEndian.Uint32(b[8:]) != typ {
		return nil, false
	}
	return b, true
}

// ntlm runs the NEGOTIATE/CHALLENGE/AUTHENTICATE exchange (MS-NLMP 2.2.1)
// far enough to see whether the AUTHENTICATE is a null session (no user,
// no NT response). It answers malformed exchanges itself (good false).
func (c *conn) ntlm(initial string, read func(string) (string, bool)) (null, good bool) {
	if initial == "" {
		var got bool
		if initial, got = read(""); !got {
			c.reply(501, "5.7.0 authentication cancelled")
			return false, false
		}
	}
	if _, ok := ntlmMessage(initial, 1, 16); !ok {
		c.reply(501, "5.5.2 malformed NTLM NEGOTIATE")
		return false, false
	}
	// A minimal CHALLENGE_MESSAGE: no target name, no target info.
	ch := make([]byte, 48)
	copy(ch, "NTLMSSP\x00")
	binary.LittleEndian.PutUint32(ch[8:], 2)
	binary.LittleEndian.PutUint32(ch[16:], 48)                    // TargetName offset (empty)
	binary.LittleEndian.PutUint32(ch[20:], 0x00008201)            // UNICODE | NTLM | ALWAYS_SIGN
	copy(ch[24:32], []byte{1, 2, 3, 4, 5, 6, 7, byte(c.sess.ID)}) // ServerChallenge
	binary.LittleEndian.PutUint32(ch[44:], 48)                    // TargetInfo offset (empty)
	resp, got := read(base64.StdEncoding.EncodeToString(ch))
	if !got {
		c.reply(501, "5.7.0 authentication cancelled")
		return false, false
	}
	auth, ok := ntlmMessage(resp, 3, 52)
	if !ok {
		c.reply(501, "5.5.2 malformed NTLM AUTHENTICATE")
		return false, false
	}
	ntLen := binary.LittleEndian.Uint16(auth[20:])
	userLen := binary.LittleEndian.Uint16(auth[36:])
	return ntLen == 0 && userLen == 0, true
}

var _ io.Closer = (*Server)(nil)
