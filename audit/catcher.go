package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file is catch mode's receiving side (issue 3): a small SMTP server
// (RFC 5321) that accepts mail only for the operator's catch domain and
// records the relayed test messages that reach it. It has no client code:
// it cannot forward, relay or answer mail, so it can never become a relay.
//
// Why it is hand-written and not github.com/emersion/go-smtp's server (the
// module proxy here serves go-smtp v0.13.0 to v0.26.0, so it could be
// used): the catcher faces the Internet on port 25, and what it must NOT
// do matters more than what it does. It has no sending code, no AUTH, no
// STARTTLS, no BDAT/CHUNKING, and tight limits on lines, headers, message
// size, recipients, errors, connections and time (the catchMax* constants
// and CatcherConfig). TestCatcherHasNoClientCode checks the first of these
// on this file's syntax tree (go/ast). go-smtp's server would bring AUTH,
// STARTTLS, LMTP and CHUNKING code paths into the binary that we would
// then have to prove unreachable, and its limits and replies would change
// with its releases; the few hundred lines here are the whole attack
// surface, and the tests read all of it.

// CatcherConfig configures a CatchServer. Zero values take the documented
// defaults.
type CatcherConfig struct {
	// Domain is the catch domain: an MX record for it points at this
	// machine. Only recipients in exactly this domain are accepted.
	Domain string
	// Listen is the address to listen on (default ":25").
	Listen string
	// MaxMessage bounds a message in octets (default 64 KiB); larger
	// messages are refused with 552 and discarded.
	MaxMessage int
	// MaxConns bounds simultaneous connections (default 32); more get 421.
	MaxConns int
	// ConnTimeout bounds one connection's whole life (default 60 s).
	ConnTimeout time.Duration
	// Hostname is the name in the greeting (default: Domain).
	Hostname string
	// Now stamps arrivals (default time.Now).
	Now func() time.Time
	// MaxRecipients bounds RCPTs per message (default 100, the minimum
	// RFC 5321 §4.5.3.1.8 asks servers to accept).
	MaxRecipients int
}

// Defaults of CatcherConfig.
const (
	DefaultCatchListen        = ":25"
	DefaultCatchMaxMessage    = 64 << 10
	DefaultCatchMaxConns      = 32
	DefaultCatchConnTimeout   = 60 * time.Second
	DefaultCatchMaxRecipients = 100
)

const (
	catchMaxHeaders   = 16 << 10 // CatchEvidence.Headers bound
	catchMaxLine      = 2048     // command line bound (RFC 5321 §4.5.3.1.4 asks for 512)
	catchMaxErrors    = 10       // bad commands before the catcher hangs up
	catchMaxUnknown   = 256      // tokens stored that were never issued
	catchMaxTokenLen  = 128
	catchBouncePrefix = "bounce-"
)

// CatchStats counts what the catcher saw.
type CatchStats struct {
	Connections        int `json:"connections"`         // accepted connections
	RefusedConnections int `json:"refused_connections"` // 421: over MaxConns
	Messages           int `json:"messages"`            // messages accepted (250 after DATA)
	Oversize           int `json:"oversize"`            // messages refused with 552
	RejectedRecipients int `json:"rejected_recipients"` // RCPTs outside the catch domain
	Bounces            int `json:"bounces"`             // messages recognised as DSNs
	UnknownTokens      int `json:"unknown_tokens"`      // tokens seen that were never issued
	Unmatched          int `json:"unmatched"`           // messages with no token at all
}

// CatchServer is the catch-mode receiver. It implements Catcher.
type CatchServer struct {
	cfg    CatcherConfig
	domain string // A-label, lower case

	mu      sync.Mutex
	issued  map[string]bool           // lower-case tokens handed out
	got     map[string]*CatchEvidence // by lower-case token
	unknown int                       // stored tokens that were not issued
	stats   CatchStats
	changed chan struct{} // closed and replaced on each arrival
	ln      net.Listener
	conns   map[net.Conn]struct{}
	closed  bool
	done    chan struct{}
	stopCtx func() bool
	wg      sync.WaitGroup
}

var _ Catcher = (*CatchServer)(nil)

// NewCatcher checks cfg and returns a catcher; Start makes it listen.
func NewCatcher(cfg CatcherConfig) (*CatchServer, error) {
	d, err := NormalizeDomain(cfg.Domain)
	if err != nil {
		return nil, fmt.Errorf("catch domain: %w", err)
	}
	if !strings.Contains(d, ".") {
		return nil, fmt.Errorf("catch domain %q: %w: not a fully qualified name", cfg.Domain, ErrInvalidName)
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultCatchListen
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultCatchMaxMessage
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultCatchMaxConns
	}
	if cfg.ConnTimeout <= 0 {
		cfg.ConnTimeout = DefaultCatchConnTimeout
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = DefaultCatchMaxRecipients
	}
	if cfg.Hostname == "" {
		cfg.Hostname = d
	}
	if strings.ContainsAny(cfg.Hostname, "\r\n") {
		return nil, errors.New("catch hostname: contains a line break")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &CatchServer{
		cfg:     cfg,
		domain:  d,
		issued:  map[string]bool{},
		got:     map[string]*CatchEvidence{},
		changed: make(chan struct{}),
		conns:   map[net.Conn]struct{}{},
		done:    make(chan struct{}),
	}, nil
}

// Domain returns the catch domain (A-label).
func (s *CatchServer) Domain() string { return s.domain }

// Start listens on cfg.Listen and serves in the background. When ctx ends
// the catcher stops as if Close were called; Close must still be called
// (it waits for the goroutines).
func (s *CatchServer) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("catcher: listen %s: %w", s.cfg.Listen, err)
	}
	s.mu.Lock()
	if s.closed || s.ln != nil {
		s.mu.Unlock()
		ln.Close()
		return errors.New("catcher: already started or closed")
	}
	s.ln = ln
	s.stopCtx = context.AfterFunc(ctx, func() { s.shutdown() })
	s.wg.Add(1)
	s.mu.Unlock()
	go s.acceptLoop(ln)
	return nil
}

// Addr returns the address the catcher listens on ("" before Start).
func (s *CatchServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops listening, closes every connection and waits for all
// goroutines. It is safe to call more than once.
func (s *CatchServer) Close() error {
	s.shutdown()
	s.mu.Lock()
	stop := s.stopCtx
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.wg.Wait()
	return nil
}

func (s *CatchServer) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	close(s.done)
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
}

// Stats returns the counters so far.
func (s *CatchServer) Stats() CatchStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Recipient returns "<token>@<catch domain>" and remembers the token.
func (s *CatchServer) Recipient(token string) string {
	s.issue(token)
	return token + "@" + s.domain
}

// BounceAddress returns "bounce-<token>@<catch domain>": a MAIL FROM whose
// DSNs (RFC 3464) come back to the catcher, tied to the test.
func (s *CatchServer) BounceAddress(token string) string {
	s.issue(token)
	return catchBouncePrefix + token + "@" + s.domain
}

func (s *CatchServer) issue(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued[normToken(token)] = true
}

// Wait blocks until every token has arrived or bounced, ctx ends or the
// catcher is closed, and returns copies of the evidence by token (as the
// caller spelled it). Tokens with nothing are absent.
func (s *CatchServer) Wait(ctx context.Context, tokens []string) map[string]*CatchEvidence {
	for {
		s.mu.Lock()
		out := make(map[string]*CatchEvidence, len(tokens))
		for _, t := range tokens {
			if ev := s.got[normToken(t)]; ev != nil {
				out[t] = cloneEvidence(ev)
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if len(out) == len(tokens) {
			return out
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return out
		case <-s.done:
			return out
		}
	}
}

func cloneEvidence(ev *CatchEvidence) *CatchEvidence {
	c := *ev
	c.RcptTo = append([]string(nil), ev.RcptTo...)
	c.Received = append([]string(nil), ev.Received...)
	return &c
}

func normToken(t string) string { return strings.ToLower(strings.TrimSpace(t)) }

func (s *CatchServer) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			case <-time.After(50 * time.Millisecond):
				continue // EMFILE and friends: back off, keep serving
			}
		}
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			c.Close()
			return
		case len(s.conns) >= s.cfg.MaxConns:
			s.stats.RefusedConnections++
			s.mu.Unlock()
			// RFC 5321 §3.8: 421 closes the transmission channel.
			c.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(c, "421 4.7.0 "+s.cfg.Hostname+" too many connections, try again later\r\n")
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.stats.Connections++
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serve(c)
		}()
	}
}

// session is one SMTP connection's state.
type session struct {
	s      *CatchServer
	c      net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	remote string
	helo   string
	// transaction
	inMail   bool
	mailFrom string
	rcpts    []string
	errors   int
}

var errLineTooLong = errors.New("line too long")

func (s *CatchServer) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(s.cfg.ConnTimeout))
	ss := &session{s: s, c: c, r: bufio.NewReaderSize(c, 4096), w: bufio.NewWriter(c), remote: c.RemoteAddr().String()}
	if !ss.reply("220 " + s.cfg.Hostname + " ESMTP relaylock catcher (accepts mail for " + s.domain + " only)") {
		return
	}
	for {
		line, err := ss.readLine()
		if errors.Is(err, errLineTooLong) {
			// RFC 5321 §4.5.3.1.4: command line too long → 500.
			if !ss.fail("500 5.5.2 line too long") {
				return
			}
			continue
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				ss.reply("421 4.4.2 " + s.cfg.Hostname + " connection time limit reached, closing")
			}
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			arg = strings.TrimSpace(arg)
			if arg == "" {
				if !ss.fail("501 5.5.4 " + strings.ToUpper(verb) + " needs a domain or address literal") {
					return
				}
				continue
			}
			ss.helo = bound(arg, 255)
			ss.resetTx()
			if strings.EqualFold(verb, "HELO") {
				ss.reply("250 " + s.cfg.Hostname)
				continue
			}
			// RFC 5321 §4.1.1.1; SIZE (RFC 1870), 8BITMIME (RFC 6152),
			// ENHANCEDSTATUSCODES (RFC 2034), PIPELINING (RFC 2920).
			ss.reply("250-" + s.cfg.Hostname + " hello " + ss.remote + "\r\n" +
				"250-SIZE " + strconv.Itoa(s.cfg.MaxMessage) + "\r\n" +
				"250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 PIPELINING")
		case "MAIL":
			ss.mail(arg)
		case "RCPT":
			ss.rcpt(arg)
		case "DATA":
			if !ss.data() {
				return
			}
		case "RSET":
			ss.resetTx()
			ss.reply("250 2.0.0 reset")
		case "NOOP":
			ss.reply("250 2.0.0 ok")
		case "QUIT":
			ss.reply("221 2.0.0 " + s.cfg.Hostname + " closing connection")
			return
		case "VRFY":
			ss.reply("252 2.5.0 cannot verify, send mail to find out")
		case "STARTTLS", "AUTH", "BDAT", "EXPN", "TURN", "ETRN", "ATRN":
			// Not offered: the catcher needs none of them, and offers no
			// way to send mail anywhere.
			if !ss.fail("502 5.5.1 command not implemented") {
				return
			}
		default:
			if !ss.fail("500 5.5.2 command not recognized") {
				return
			}
		}
		if ss.errors >= catchMaxErrors {
			ss.reply("421 4.7.0 " + s.cfg.Hostname + " too many errors, closing")
			return
		}
	}
}

// reply writes a reply (lines separated by CRLF) and flushes it.
func (ss *session) reply(text string) bool {
	if _, err := ss.w.WriteString(text + "\r\n"); err != nil {
		return false
	}
	return ss.w.Flush() == nil
}

// fail replies with an error and counts it; the session hangs up after
// catchMaxErrors of them.
func (ss *session) fail(text string) bool {
	ss.errors++
	return ss.reply(text)
}

func (ss *session) resetTx() {
	ss.inMail, ss.mailFrom, ss.rcpts = false, "", nil
}

// readLine reads one command line without its line ending, bounded.
func (ss *session) readLine() (string, error) {
	var buf []byte
	tooLong := false
	for {
		frag, err := ss.r.ReadSlice('\n')
		if !tooLong {
			buf = append(buf, frag...)
			if len(buf) > catchMaxLine {
				tooLong, buf = true, nil
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", err
		}
		break
	}
	if tooLong {
		return "", errLineTooLong
	}
	return strings.TrimRight(string(buf), "\r\n"), nil
}

// parsePath reads "<path> params" after "FROM:" or "TO:" (RFC 5321
// §4.1.2). It drops an obsolete source route ("@a,@b:", §4.1.1.3 / §C)
// and returns the mailbox ("" for the null path) and the parameters.
func parsePath(arg, prefix string) (addr string, params []string, err error) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", nil, fmt.Errorf("expected %s", prefix)
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	if strings.HasPrefix(rest, "<") {
		end := strings.LastIndex(rest, ">")
		if end < 0 {
			return "", nil, errors.New("missing '>'")
		}
		addr, rest = rest[1:end], rest[end+1:]
	} else {
		// Lenient: some clients omit the brackets.
		addr, rest, _ = strings.Cut(rest, " ")
	}
	if strings.HasPrefix(addr, "@") {
		if i := strings.Index(addr, ":"); i >= 0 {
			addr = addr[i+1:]
		}
	}
	if strings.ContainsAny(addr, "\x00\r\n<>") || len(addr) > 256 {
		return "", nil, errors.New("invalid path")
	}
	return addr, strings.Fields(rest), nil
}

// splitAddr splits a mailbox at its last "@"; a quoted local part is
// unquoted (RFC 5321 §4.1.2 Quoted-string).
func splitAddr(addr string) (local, domain string) {
	i := strings.LastIndex(addr, "@")
	if i < 0 {
		return addr, ""
	}
	local, domain = addr[:i], addr[i+1:]
	if len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"' {
		if u, err := strconv.Unquote(local); err == nil {
			local = u
		} else {
			local = local[1 : len(local)-1]
		}
	}
	return local, domain
}

func (ss *session) mail(arg string) {
	if ss.helo == "" {
		ss.fail("503 5.5.1 say EHLO first")
		return
	}
	if ss.inMail {
		ss.fail("503 5.5.1 nested MAIL command")
		return
	}
	addr, params, err := parsePath(arg, "FROM:")
	if err != nil {
		ss.fail("501 5.5.4 syntax: MAIL FROM:<address>: " + err.Error())
		return
	}
	for _, p := range params {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(k, "SIZE") {
			// RFC 1870 §6.2: a declared size over the limit gets 552.
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > int64(ss.s.cfg.MaxMessage) {
				ss.reply("552 5.3.4 message size exceeds fixed maximum message size")
				return
			}
		}
	}
	ss.inMail, ss.mailFrom, ss.rcpts = true, addr, nil
	ss.reply("250 2.1.0 sender ok")
}

func (ss *session) rcpt(arg string) {
	if !ss.inMail {
		ss.fail("503 5.5.1 need MAIL before RCPT")
		return
	}
	addr, _, err := parsePath(arg, "TO:")
	if err != nil || addr == "" {
		ss.fail("501 5.5.4 syntax: RCPT TO:<address>")
		return
	}
	local, domain := splitAddr(addr)
	// RFC 5321 §4.5.1: "postmaster" without a domain must be accepted.
	postmaster := domain == "" && strings.EqualFold(local, "postmaster")
	// Only the catch domain, compared exactly (case-insensitive, one
	// trailing dot allowed). Everything else is a relay attempt: RFC 5321
	// §3.6.2 says 550; RFC 3463 X.7.1 "delivery not authorized".
	if !postmaster && !strings.EqualFold(strings.TrimSuffix(domain, "."), ss.s.domain) {
		ss.s.mu.Lock()
		ss.s.stats.RejectedRecipients++
		ss.s.mu.Unlock()
		ss.fail("550 5.7.1 relaying denied: this catcher accepts mail for " + ss.s.domain + " only")
		return
	}
	if len(local) == 0 || len(local) > 64 {
		ss.fail("501 5.1.3 bad local part")
		return
	}
	if len(ss.rcpts) >= ss.s.cfg.MaxRecipients {
		// RFC 5321 §4.5.3.1.10: too many recipients → 452.
		ss.reply("452 4.5.3 too many recipients")
		return
	}
	ss.rcpts = append(ss.rcpts, addr)
	ss.reply("250 2.1.5 recipient ok")
}

// data reads the message (RFC 5321 §4.1.1.4, dot-stuffing §4.5.2). It
// returns false when the connection is gone.
func (ss *session) data() bool {
	if !ss.inMail || len(ss.rcpts) == 0 {
		return ss.fail("503 5.5.1 need RCPT before DATA")
	}
	if !ss.reply("354 end data with <CR><LF>.<CR><LF>") {
		return false
	}
	max := ss.s.cfg.MaxMessage
	var msg bytes.Buffer
	oversize := false
	lineStart := true
	for {
		frag, err := ss.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return false
		}
		complete := err == nil
		if lineStart && complete && (string(frag) == ".\r\n" || string(frag) == ".\n") {
			break
		}
		if lineStart && len(frag) > 0 && frag[0] == '.' {
			frag = frag[1:]
		}
		lineStart = complete
		if oversize {
			continue // keep reading to the final "." but discard
		}
		if msg.Len()+len(frag) > max {
			oversize = true
			msg.Reset()
			continue
		}
		msg.Write(frag)
	}
	from, rcpts, helo := ss.mailFrom, ss.rcpts, ss.helo
	ss.resetTx()
	if oversize {
		ss.s.mu.Lock()
		ss.s.stats.Oversize++
		ss.s.mu.Unlock()
		// RFC 1870 §6.3 / RFC 5321 §4.5.3.1.10.
		return ss.reply("552 5.3.4 message too big, discarded")
	}
	ss.s.deliver(ss.remote, helo, from, rcpts, msg.Bytes())
	return ss.reply("250 2.0.0 caught (nothing is forwarded)")
}

var (
	// The test message of the probe engine says "relaylock relay test
	// TOKEN" in its Subject and carries "X-Relaylock-Token: TOKEN".
	subjectTokenRe = regexp.MustCompile(`(?i)relaylock relay test ([A-Za-z0-9._=+-]+)`)
	headerTokenRe  = regexp.MustCompile(`(?i)x-relaylock-token:[ \t]*([A-Za-z0-9._=+-]+)`)
	tokenCharsRe   = regexp.MustCompile(`^[A-Za-z0-9._=+-]+$`)
)

// headerField is one unfolded header field (RFC 5322 §2.2.3).
type headerField struct{ name, value string }

// splitMessage returns the raw header section and its fields in order.
func splitMessage(msg []byte) (raw string, fields []headerField) {
	end := len(msg)
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		end = i + 2
	} else if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		end = i + 1
	}
	raw = string(msg[:end])
	for _, line := range strings.Split(strings.ReplaceAll(raw, "\r\n", "\n"), "\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			f := &fields[len(fields)-1]
			f.value += " " + strings.TrimSpace(line)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.ContainsAny(name, " \t") {
			continue
		}
		fields = append(fields, headerField{name: name, value: strings.TrimSpace(value)})
	}
	return raw, fields
}

// deliver matches a message to tokens and stores the evidence.
func (s *CatchServer) deliver(remote, helo, from string, rcpts []string, msg []byte) {
	now := s.cfg.Now().UTC()
	raw, fields := splitMessage(msg)
	var received []string
	var contentType string
	var headerTokens []string
	for _, f := range fields {
		switch strings.ToLower(f.name) {
		case "received":
			received = append(received, f.value)
		case "content-type":
			contentType = strings.ToLower(f.value)
		case "x-relaylock-token":
			if t := strings.Fields(f.value); len(t) > 0 {
				headerTokens = append(headerTokens, t[0])
			}
		case "subject":
			for _, m := range subjectTokenRe.FindAllStringSubmatch(f.value, -1) {
				headerTokens = append(headerTokens, m[1])
			}
		}
	}

	// Recipients: "<token>@domain" is a delivery; "bounce-<token>@domain"
	// receives DSNs (the probe's MAIL FROM).
	var rcptTokens, bounceTokens []string
	for _, r := range rcpts {
		local, _ := splitAddr(r)
		if strings.EqualFold(local, "postmaster") {
			continue
		}
		if len(local) > len(catchBouncePrefix) && strings.EqualFold(local[:len(catchBouncePrefix)], catchBouncePrefix) {
			bounceTokens = append(bounceTokens, local[len(catchBouncePrefix):])
		} else {
			rcptTokens = append(rcptTokens, local)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	nullSender := from == ""
	// A DSN (RFC 3464) comes with a null reverse path (RFC 5321 §4.5.5)
	// and as multipart/report (RFC 6522). A relayed test message with a
	// null sender (test S1) is addressed to "<token>@domain" instead.
	bounce := len(bounceTokens) > 0 ||
		(nullSender && (strings.HasPrefix(contentType, "multipart/report") || len(rcptTokens) == 0))
	var tokens []string
	if bounce {
		tokens = append(tokens, bounceTokens...)
		body := string(msg)
		for _, m := range subjectTokenRe.FindAllStringSubmatch(body, -1) {
			tokens = append(tokens, m[1])
		}
		for _, m := range headerTokenRe.FindAllStringSubmatch(body, -1) {
			tokens = append(tokens, m[1])
		}
		lower := strings.ToLower(body)
		for t := range s.issued {
			if strings.Contains(lower, t) {
				tokens = append(tokens, t)
			}
		}
		s.stats.Bounces++
	} else {
		tokens = append(tokens, rcptTokens...)
		tokens = append(tokens, headerTokens...)
	}

	mailFrom := from
	if nullSender {
		mailFrom = "<>"
	}
	headers := raw
	if len(headers) > catchMaxHeaders {
		headers = headers[:catchMaxHeaders]
	}
	seen := map[string]bool{}
	matched := false
	for _, t := range tokens {
		t = normToken(t)
		if t == "" || len(t) > catchMaxTokenLen || !tokenCharsRe.MatchString(t) || seen[t] {
			continue
		}
		seen[t] = true
		matched = true
		ev := s.got[t]
		if ev == nil {
			if !s.issued[t] {
				s.stats.UnknownTokens++
				if s.unknown >= catchMaxUnknown {
					continue
				}
				s.unknown++
			}
			ev = &CatchEvidence{}
			s.got[t] = ev
		}
		if bounce {
			ev.Bounce = true
			if ev.Arrived {
				continue // keep the delivery's details
			}
		} else {
			if ev.Arrived {
				continue // the first delivery is the evidence
			}
			ev.Arrived = true
		}
		ev.Time = now
		ev.RemoteAddr = remote
		ev.Helo = helo
		ev.MailFrom = mailFrom
		ev.RcptTo = append([]string(nil), rcpts...)
		ev.Received = append([]string(nil), received...)
		ev.Headers = headers
	}
	s.stats.Messages++
	if !matched {
		s.stats.Unmatched++
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func bound(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
