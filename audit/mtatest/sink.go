package mtatest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// SinkHostname is the name the Sink greets with; it differs from every
// instance's own name, so MTAs do not see a mail loop.
const SinkHostname = "sink.relaylock.test"

// Limits of the Sink per connection.
const (
	sinkMaxData = 1 << 20
	sinkTimeout = 30 * time.Second
)

// Message is one message the Sink received.
type Message struct {
	Time       time.Time
	RemoteAddr string
	Helo       string
	MailFrom   string
	RcptTo     []string
	Data       []byte // as received, dot-unstuffed, CRLF line ends
}

// Header returns the values of a header field of the message, in order
// (Received: top first), unfolded.
func (m Message) Header(name string) []string {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(m.Data)))
	h, err := r.ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return nil
	}
	return h.Values(name)
}

// Sink is a minimal SMTP receiver (RFC 5321 §4.1: EHLO/HELO, MAIL, RCPT,
// DATA, RSET, NOOP, QUIT) that accepts every message and records it. It
// is where the instances' outbound mail goes, so a test can tell a relay
// that really delivers from one that only says 250.
type Sink struct {
	ln     net.Listener
	mu     sync.Mutex
	msgs   []Message
	notify chan struct{} // closed and replaced on every message
	wg     sync.WaitGroup
}

// NewSink listens on 127.0.0.1 and a free port.
func NewSink() (*Sink, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mtatest: sink: %w", err)
	}
	s := &Sink{ln: ln, notify: make(chan struct{})}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// StartSink starts a Sink that is closed in t.Cleanup.
func StartSink(t testing.TB) *Sink {
	t.Helper()
	s, err := NewSink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Addr is where the Sink listens.
func (s *Sink) Addr() netip.AddrPort { return netip.MustParseAddrPort(s.ln.Addr().String()) }

// Close stops the Sink and waits for its connections to end.
func (s *Sink) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// Messages returns every message received so far.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait returns the first message for which match is true, waiting for it
// until ctx ends.
func (s *Sink) Wait(ctx context.Context, match func(Message) bool) (Message, error) {
	for {
		s.mu.Lock()
		for _, m := range s.msgs {
			if match(m) {
				s.mu.Unlock()
				return m, nil
			}
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("mtatest: sink: no matching message: %w", ctx.Err())
		}
	}
}

func (s *Sink) add(m Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

func (s *Sink) serve() {
	defer s.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			s.session(c)
		}()
	}
}

func (s *Sink) session(c net.Conn) {
	defer c.Close()
	tp := textproto.NewConn(c)
	reply := func(format string, args ...any) error {
		c.SetDeadline(time.Now().Add(sinkTimeout))
		return tp.PrintfLine(format, args...)
	}
	if reply("220 %s ESMTP relaylock test sink", SinkHostname) != nil {
		return
	}
	var m Message
	m.RemoteAddr = c.RemoteAddr().String()
	for {
		c.SetDeadline(time.Now().Add(sinkTimeout))
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			m.Helo = arg
			err = reply("250-%s\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE %d", SinkHostname, sinkMaxData)
		case "HELO":
			m.Helo = arg
			err = reply("250 %s", SinkHostname)
		case "MAIL":
			m.MailFrom, m.RcptTo = pathArg(arg, "FROM:"), nil
			err = reply("250 2.1.0 ok")
		case "RCPT":
			m.RcptTo = append(m.RcptTo, pathArg(arg, "TO:"))
			err = reply("250 2.1.5 ok")
		case "DATA":
			if len(m.RcptTo) == 0 {
				err = reply("503 5.5.1 no recipients")
				break
			}
			if err = reply("354 go ahead"); err != nil {
				return
			}
			var data []byte
			data, err = io.ReadAll(io.LimitReader(tp.DotReader(), sinkMaxData))
			if err != nil {
				return
			}
			m.Data = bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
			m.Time = time.Now()
			s.add(m)
			m = Message{RemoteAddr: m.RemoteAddr, Helo: m.Helo}
			err = reply("250 2.0.0 stored")
		case "RSET":
			m = Message{RemoteAddr: m.RemoteAddr, Helo: m.Helo}
			err = reply("250 2.0.0 ok")
		case "NOOP":
			err = reply("250 2.0.0 ok")
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			err = reply("502 5.5.2 not implemented")
		}
		if err != nil {
			return
		}
	}
}

// pathArg returns the address of "FROM:<a> PARAMS" or "TO:<a>".
func pathArg(arg, prefix string) string {
	if len(arg) >= len(prefix) && strings.EqualFold(arg[:len(prefix)], prefix) {
		arg = arg[len(prefix):]
	}
	arg = strings.TrimSpace(arg)
	if strings.HasPrefix(arg, "<") {
		if end := strings.IndexByte(arg, '>'); end > 0 {
			return arg[1:end]
		}
	}
	addr, _, _ := strings.Cut(arg, " ")
	return addr
}

var errNoGreeting = errors.New("no 220 greeting")
