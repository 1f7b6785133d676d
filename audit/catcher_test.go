package audit

import (
	"bufio"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const catchDomain = "catch.test"

// startCatcher runs a catcher on 127.0.0.1:0 until the test ends.
func startCatcher(t *testing.T, cfg CatcherConfig) *CatchServer {
	t.Helper()
	if cfg.Domain == "" {
		cfg.Domain = catchDomain
	}
	cfg.Listen = "127.0.0.1:0"
	s, err := NewCatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// smtpClient is a minimal test client that speaks raw lines.
type smtpClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialCatcher(t *testing.T, s *CatchServer) *smtpClient {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	cl := &smtpClient{t: t, c: c, r: bufio.NewReader(c)}
	cl.expect(220)
	return cl
}

// read reads one (multi-line) reply: code and the last line.
func (cl *smtpClient) read() (int, string, error) {
	for {
		line, err := cl.r.ReadString('\n')
		if err != nil {
			return 0, "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return 0, line, fmt.Errorf("short reply %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			return 0, line, err
		}
		if len(line) > 3 && line[3] == '-' {
			continue
		}
		return code, line, nil
	}
}

func (cl *smtpClient) expect(code int) string {
	cl.t.Helper()
	got, line, err := cl.read()
	if err != nil {
		cl.t.Fatalf("read reply: %v", err)
	}
	if got != code {
		cl.t.Fatalf("reply %q, want %d", line, code)
	}
	return line
}

func (cl *smtpClient) send(line string) {
	cl.t.Helper()
	if _, err := fmt.Fprintf(cl.c, "%s\r\n", line); err != nil {
		cl.t.Fatal(err)
	}
}

func (cl *smtpClient) cmd(line string, code int) string {
	cl.t.Helper()
	cl.send(line)
	return cl.expect(code)
}

// deliver sends one message and returns the final reply code.
func (cl *smtpClient) deliver(from string, rcpts []string, msg string) int {
	cl.t.Helper()
	cl.cmd("MAIL FROM:<"+from+">", 250)
	for _, r := range rcpts {
		cl.cmd("RCPT TO:<"+r+">", 250)
	}
	cl.cmd("DATA", 354)
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSuffix(msg, "\n"), "\n") {
		if strings.HasPrefix(l, ".") {
			l = "." + l // dot-stuffing, RFC 5321 §4.5.2
		}
		b.WriteString(l + "\r\n")
	}
	b.WriteString(".\r\n")
	if _, err := cl.c.Write([]byte(b.String())); err != nil {
		cl.t.Fatal(err)
	}
	code, _, err := cl.read()
	if err != nil {
		cl.t.Fatal(err)
	}
	return code
}

func testMessage(token string) string {
	return "Received: from relay.example (relay.example [192.0.2.7])\n" +
		"\tby mx.catch.test; Sun, 29 Nov 2026 06:00:01 +0000\n" +
		"Received: from prober (prober [192.0.2.1])\n by relay.example; Sun, 29 Nov 2026 06:00:00 +0000\n" +
		"From: <probe@probe.test>\nTo: <" + token + "@" + catchDomain + ">\n" +
		"Subject: relaylock relay test " + token + "\n" +
		"X-Relaylock-Token: " + token + "\n\n" +
		"This message tests whether the server relays.\n.leading dot line\n"
}

func TestCatcherRecipients(t *testing.T) {
	s := startCatcher(t, CatcherConfig{})
	cl := dialCatcher(t, s)
	cl.cmd("EHLO prober.test", 250)
	cl.cmd("MAIL FROM:<probe@probe.test>", 250)
	tests := []struct {
		rcpt string
		code int
	}{
		{"victim@example.com", 550},
		{"tok@sub.catch.test", 550},
		{"tok@catch.test.evil.example", 550},
		{"tok@xcatch.test", 550},
		{"tok@[127.0.0.1]", 550},
		{"tok@[IPv6:::1]", 550},
		{"@catch.test:victim@example.com", 550}, // source route: the last element counts
		{"victim%example.com", 550},
		{"example.com!victim", 550},
		{"victim@example.com@catch.test", 250}, // local part "victim@example.com": stays here
		{"\"victim@example.com\"@catch.test", 250},
		{"victim%example.com@catch.test", 250},
		{"tok@catch.test", 250},
		{"TOK@CATCH.TEST", 250},
		{"tok@catch.test.", 250},
		{"postmaster", 250},
		{"", 501},
	}
	for _, tt := range tests {
		t.Run(tt.rcpt, func(t *testing.T) {
			line := cl.cmd("RCPT TO:<"+tt.rcpt+">", tt.code)
			if tt.code == 550 && !strings.Contains(line, "5.7.1") {
				t.Errorf("reply %q lacks 5.7.1", line)
			}
		})
	}
	if got := s.Stats().RejectedRecipients; got != 9 {
		t.Errorf("RejectedRecipients = %d, want 9", got)
	}
}

// TestCatcherHasNoClientCode is the proof that the catcher cannot relay:
// catcher.go never dials, never imports an SMTP client, and never calls
// anything that opens an outbound connection.
func TestCatcherHasNoClientCode(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "catcher.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range f.Imports {
		switch p, _ := strconv.Unquote(imp.Path.Value); p {
		case "net/smtp", "net/http", "os/exec", "syscall", "golang.org/x/sys/unix":
			t.Errorf("catcher.go imports %s", p)
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if strings.HasPrefix(sel.Sel.Name, "Dial") || sel.Sel.Name == "Exchange" || sel.Sel.Name == "ExchangeContext" {
				t.Errorf("catcher.go calls %s", sel.Sel.Name)
			}
		}
		return true
	})
}

func TestCatcherDeliveryEvidence(t *testing.T) {
	fixed := time.Date(2026, 11, 29, 6, 0, 2, 0, time.UTC)
	s := startCatcher(t, CatcherConfig{Now: func() time.Time { return fixed }})
	rcpt := s.Recipient("Tok1")
	if rcpt != "Tok1@catch.test" {
		t.Fatalf("Recipient = %q", rcpt)
	}
	cl := dialCatcher(t, s)
	cl.cmd("EHLO relay.example", 250)
	if code := cl.deliver("probe@probe.test", []string{rcpt}, testMessage("Tok1")); code != 250 {
		t.Fatalf("delivery: %d", code)
	}
	got := s.Wait(context.Background(), []string{"Tok1"})
	ev := got["Tok1"]
	if ev == nil {
		t.Fatal("token not caught")
	}
	if !ev.Arrived || ev.Bounce || !ev.Time.Equal(fixed) || ev.Helo != "relay.example" || ev.MailFrom != "probe@probe.test" {
		t.Errorf("evidence = %+v", ev)
	}
	if ev.RemoteAddr != cl.c.LocalAddr().String() {
		t.Errorf("RemoteAddr = %q, want %q", ev.RemoteAddr, cl.c.LocalAddr())
	}
	if len(ev.RcptTo) != 1 || ev.RcptTo[0] != rcpt {
		t.Errorf("RcptTo = %q", ev.RcptTo)
	}
	wantRecv := []string{
		"from relay.example (relay.example [192.0.2.7]) by mx.catch.test; Sun, 29 Nov 2026 06:00:01 +0000",
		"from prober (prober [192.0.2.1]) by relay.example; Sun, 29 Nov 2026 06:00:00 +0000",
	}
	if strings.Join(ev.Received, "|") != strings.Join(wantRecv, "|") {
		t.Errorf("Received = %q\nwant %q", ev.Received, wantRecv)
	}
	if !strings.HasPrefix(ev.Headers, "Received: from relay.example") || !strings.Contains(ev.Headers, "X-Relaylock-Token: Tok1\r\n") ||
		strings.Contains(ev.Headers, "tests whether") {
		t.Errorf("Headers = %q", ev.Headers)
	}
	// The map holds copies: changing them does not change the catcher.
	ev.RcptTo[0] = "changed"
	if again := s.Wait(context.Background(), []string{"tok1"}); again["tok1"].RcptTo[0] != rcpt {
		t.Error("Wait returned shared evidence")
	}
}

func TestCatcherTokenMatching(t *testing.T) {
	tests := []struct {
		name  string
		token string
		rcpt  string
		msg   string
	}{
		{"recipient local part", "rcptonly", "rcptonly@catch.test", "Subject: hello\n\nbody\n"},
		{"x-relaylock-token header", "hdronly", "inbox@catch.test", "Subject: hello\nX-Relaylock-Token: hdronly\n\nbody\n"},
		{"subject", "subjonly", "inbox@catch.test", "Subject: Fwd: relaylock relay test subjonly\n\nbody\n"},
		{"folded subject", "foldsubj", "inbox@catch.test", "Subject: Fwd:\n relaylock relay test foldsubj\n\nbody\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startCatcher(t, CatcherConfig{})
			cl := dialCatcher(t, s)
			cl.cmd("HELO relay.example", 250)
			if code := cl.deliver("someone@example.com", []string{tt.rcpt}, tt.msg); code != 250 {
				t.Fatalf("delivery: %d", code)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got := s.Wait(ctx, []string{tt.token})
			if ev := got[tt.token]; ev == nil || !ev.Arrived || ev.Bounce {
				t.Fatalf("token %q: %+v", tt.token, ev)
			}
		})
	}
}

func TestCatcherBounces(t *testing.T) {
	dsn := func(tok string) string {
		return "From: MAILER-DAEMON@relay.example\nSubject: Undelivered Mail Returned to Sender\n" +
			"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\n\nThe message could not be delivered.\n" +
			"--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; victim@example.com\nAction: failed\n" +
			"--b\nContent-Type: text/rfc822-headers\n\nSubject: relaylock relay test " + tok + "\nX-Relaylock-Token: " + tok + "\n--b--\n"
	}
	t.Run("to the bounce address", func(t *testing.T) {
		s := startCatcher(t, CatcherConfig{})
		addr := s.BounceAddress("b1")
		if addr != "bounce-b1@catch.test" {
			t.Fatalf("BounceAddress = %q", addr)
		}
		cl := dialCatcher(t, s)
		cl.cmd("EHLO relay.example", 250)
		cl.deliver("", []string{addr}, "Subject: failure notice\n\nSorry.\n")
		ev := s.Wait(context.Background(), []string{"b1"})["b1"]
		if ev == nil || !ev.Bounce || ev.Arrived || ev.MailFrom != "<>" {
			t.Fatalf("evidence = %+v", ev)
		}
		if st := s.Stats(); st.Bounces != 1 {
			t.Errorf("stats = %+v", st)
		}
	})
	t.Run("null sender dsn naming the token", func(t *testing.T) {
		s := startCatcher(t, CatcherConfig{})
		s.Recipient("b2")
		cl := dialCatcher(t, s)
		cl.cmd("EHLO relay.example", 250)
		cl.deliver("", []string{"postmaster@catch.test"}, dsn("b2"))
		ev := s.Wait(context.Background(), []string{"b2"})["b2"]
		if ev == nil || !ev.Bounce || ev.Arrived {
			t.Fatalf("evidence = %+v", ev)
		}
	})
	t.Run("null sender test message is a delivery", func(t *testing.T) {
		s := startCatcher(t, CatcherConfig{})
		cl := dialCatcher(t, s)
		cl.cmd("EHLO relay.example", 250)
		cl.deliver("", []string{s.Recipient("s1tok")}, testMessage("s1tok"))
		ev := s.Wait(context.Background(), []string{"s1tok"})["s1tok"]
		if ev == nil || !ev.Arrived || ev.Bounce || ev.MailFrom != "<>" {
			t.Fatalf("evidence = %+v", ev)
		}
	})
	t.Run("delivery then bounce keeps the delivery", func(t *testing.T) {
		s := startCatcher(t, CatcherConfig{})
		cl := dialCatcher(t, s)
		cl.cmd("EHLO relay.example", 250)
		cl.deliver("probe@probe.test", []string{s.Recipient("both")}, testMessage("both"))
		cl.cmd("EHLO other.example", 250)
		cl.deliver("", []string{s.BounceAddress("both")}, dsn("both"))
		ev := s.Wait(context.Background(), []string{"both"})["both"]
		if ev == nil || !ev.Arrived || !ev.Bounce || ev.Helo != "relay.example" {
			t.Fatalf("evidence = %+v", ev)
		}
	})
}

func TestCatcherSizeLimit(t *testing.T) {
	s := startCatcher(t, CatcherConfig{MaxMessage: 1024})
	cl := dialCatcher(t, s)
	cl.cmd("EHLO relay.example", 250)
	cl.cmd("MAIL FROM:<a@example.com> SIZE=2048", 552)
	big := "Subject: relaylock relay test big\n\n" + strings.Repeat("0123456789abcdef\n", 200)
	if code := cl.deliver("a@example.com", []string{s.Recipient("big")}, big); code != 552 {
		t.Fatalf("oversize message: %d, want 552", code)
	}
	// A single long line without a line break is bounded too.
	cl.cmd("MAIL FROM:<a@example.com>", 250)
	cl.cmd("RCPT TO:<big2@catch.test>", 250)
	cl.cmd("DATA", 354)
	fmt.Fprintf(cl.c, "Subject: x\r\n\r\n%s\r\n.\r\n", strings.Repeat("x", 100000))
	cl.expect(552)
	// The session is still usable, and the discarded messages left no evidence.
	if code := cl.deliver("a@example.com", []string{s.Recipient("small")}, testMessage("small")); code != 250 {
		t.Fatalf("small message after oversize: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	got := s.Wait(ctx, []string{"big", "big2", "small"})
	if len(got) != 1 || got["small"] == nil {
		t.Errorf("caught %v, want only small", got)
	}
	if st := s.Stats(); st.Oversize != 2 || st.Messages != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestCatcherConnectionLimit(t *testing.T) {
	s := startCatcher(t, CatcherConfig{MaxConns: 2})
	a := dialCatcher(t, s)
	dialCatcher(t, s)
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	third := &smtpClient{t: t, c: c, r: bufio.NewReader(c)}
	third.expect(421)
	if _, err := third.r.ReadByte(); err == nil {
		t.Error("connection over the limit stayed open")
	}
	a.cmd("QUIT", 221)
	// Once a slot is free a new connection is served (the server notices
	// the QUIT asynchronously, so poll).
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		cl := &smtpClient{t: t, c: c, r: bufio.NewReader(c)}
		code, _, _ := cl.read()
		c.Close()
		if code == 220 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot freed: last reply %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := s.Stats(); st.RefusedConnections < 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestCatcherTimeLimit(t *testing.T) {
	s := startCatcher(t, CatcherConfig{ConnTimeout: time.Second})
	cl := dialCatcher(t, s)
	cl.cmd("EHLO slow.example", 250)
	start := time.Now()
	line := cl.expect(421) // nothing sent: the catcher gives up
	if !strings.Contains(line, "4.4.2") {
		t.Errorf("reply %q", line)
	}
	if _, err := cl.r.ReadByte(); err == nil {
		t.Error("connection stayed open after the time limit")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("time limit took %v", d)
	}
}

func TestCatcherProtocol(t *testing.T) {
	s := startCatcher(t, CatcherConfig{MaxRecipients: 2})
	cl := dialCatcher(t, s)
	cl.cmd("MAIL FROM:<a@example.com>", 503) // before EHLO
	cl.cmd("EHLO", 501)
	cl.send("EHLO relay.example")
	var ext []string
	for {
		line, err := cl.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		ext = append(ext, strings.TrimSpace(line[4:]))
		if line[3] == ' ' {
			break
		}
	}
	for _, want := range []string{"SIZE 65536", "8BITMIME", "PIPELINING"} {
		if !strings.Contains(strings.Join(ext, "\n"), want) {
			t.Errorf("EHLO lacks %s: %q", want, ext)
		}
	}
	if strings.Contains(strings.Join(ext, "\n"), "STARTTLS") || strings.Contains(strings.Join(ext, "\n"), "AUTH") {
		t.Errorf("EHLO offers more than it implements: %q", ext)
	}
	cl.cmd("RCPT TO:<x@catch.test>", 503) // before MAIL
	cl.cmd("DATA", 503)
	cl.cmd("MAIL FROM:<a@example.com>", 250)
	cl.cmd("MAIL FROM:<a@example.com>", 503)
	cl.cmd("RCPT TO:<r1@catch.test>", 250)
	cl.cmd("RCPT TO:<r2@catch.test>", 250)
	cl.cmd("RCPT TO:<r3@catch.test>", 452)
	cl.cmd("RSET", 250)
	cl.cmd("DATA", 503)
	cl.cmd("NOOP", 250)
	cl.cmd("VRFY x", 252)
	cl.cmd("STARTTLS", 502)
	cl.cmd("AUTH PLAIN AGFhAGI=", 502)
	cl.cmd(strings.Repeat("X", 5000), 500)
	// Pipelined commands (RFC 2920) get their replies in order.
	fmt.Fprintf(cl.c, "MAIL FROM:<a@example.com>\r\nRCPT TO:<pipe@catch.test>\r\nDATA\r\n")
	cl.expect(250)
	cl.expect(250)
	cl.expect(354)
	fmt.Fprintf(cl.c, "Subject: relaylock relay test pipe\r\n\r\n..stuffed\r\n.\r\n")
	cl.expect(250)
	cl.cmd("QUIT", 221)
	if s.Wait(context.Background(), []string{"pipe"})["pipe"] == nil {
		t.Error("pipelined message not caught")
	}
}

func TestCatcherTooManyErrors(t *testing.T) {
	s := startCatcher(t, CatcherConfig{})
	cl := dialCatcher(t, s)
	for i := 0; i < catchMaxErrors-1; i++ {
		cl.cmd("BOGUS", 500)
	}
	cl.send("BOGUS")
	cl.expect(500)
	cl.expect(421)
}

func TestCatcherConcurrentArrivals(t *testing.T) {
	const n = 40
	s := startCatcher(t, CatcherConfig{MaxConns: n})
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("conc%02d", i)
	}
	var wg sync.WaitGroup
	for _, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			r := bufio.NewReader(c)
			script := "EHLO " + tok + ".example\r\nMAIL FROM:<p@probe.test>\r\nRCPT TO:<" + tok + "@catch.test>\r\nDATA\r\n"
			fmt.Fprint(c, script)
			body := strings.ReplaceAll(testMessage(tok), "\n", "\r\n") + ".\r\nQUIT\r\n"
			replies := 0
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					break
				}
				if len(line) > 3 && line[3] == '-' {
					continue
				}
				replies++
				if strings.HasPrefix(line, "354") {
					fmt.Fprint(c, body)
				}
			}
			if replies != 7 { // 220, EHLO, MAIL, RCPT, 354, 250, 221
				t.Errorf("%s: %d replies", tok, replies)
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := s.Wait(ctx, tokens)
	wg.Wait()
	if len(got) != n {
		t.Fatalf("caught %d of %d", len(got), n)
	}
	for _, tok := range tokens {
		if ev := got[tok]; ev.Helo != tok+".example" || ev.RcptTo[0] != tok+"@catch.test" {
			t.Errorf("%s: evidence mixed up: %+v", tok, ev)
		}
	}
}

func TestCatcherWait(t *testing.T) {
	s := startCatcher(t, CatcherConfig{})
	go func() {
		time.Sleep(50 * time.Millisecond)
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprint(c, "HELO r.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<w1@catch.test>\r\nRCPT TO:<w2@catch.test>\r\nDATA\r\nSubject: x\r\n\r\nx\r\n.\r\nQUIT\r\n")
		bufio.NewReader(c).ReadString(0) // until the catcher closes
	}()
	t.Run("returns early when all arrived", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		got := s.Wait(ctx, []string{"w1", "W2"})
		if len(got) != 2 || got["W2"] == nil {
			t.Fatalf("got %v", got)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Wait took %v", d)
		}
	})
	t.Run("returns what arrived when ctx ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		got := s.Wait(ctx, []string{"w1", "never"})
		if len(got) != 1 || got["w1"] == nil || ctx.Err() == nil {
			t.Fatalf("got %v, ctx %v", got, ctx.Err())
		}
	})
	t.Run("returns when closed", func(t *testing.T) {
		done := make(chan map[string]*CatchEvidence)
		go func() { done <- s.Wait(context.Background(), []string{"never"}) }()
		time.Sleep(20 * time.Millisecond)
		s.Close()
		select {
		case got := <-done:
			if len(got) != 0 {
				t.Errorf("got %v", got)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Wait did not return after Close")
		}
	})
}

func TestCatcherUnknownTokensBounded(t *testing.T) {
	s := startCatcher(t, CatcherConfig{MaxRecipients: 400})
	cl := dialCatcher(t, s)
	cl.cmd("EHLO r.example", 250)
	var rcpts []string
	for i := 0; i < catchMaxUnknown+50; i++ {
		rcpts = append(rcpts, fmt.Sprintf("unk%d@catch.test", i))
	}
	cl.deliver("a@example.com", rcpts, "Subject: spam\n\nx\n")
	s.mu.Lock()
	stored := len(s.got)
	s.mu.Unlock()
	if st := s.Stats(); st.UnknownTokens != catchMaxUnknown+50 || stored != catchMaxUnknown {
		t.Errorf("unknown %d, stored %d; want %d counted, %d stored", st.UnknownTokens, stored, catchMaxUnknown+50, catchMaxUnknown)
	}
	// Issued tokens are always stored.
	cl.deliver("a@example.com", []string{s.Recipient("issued")}, "Subject: x\n\nx\n")
	if s.Wait(context.Background(), []string{"issued"})["issued"] == nil {
		t.Error("issued token dropped after the unknown bound")
	}
}

func TestCatcherHeadersBounded(t *testing.T) {
	s := startCatcher(t, CatcherConfig{MaxMessage: 256 << 10})
	cl := dialCatcher(t, s)
	cl.cmd("EHLO r.example", 250)
	msg := "Subject: relaylock relay test hb\n" + strings.Repeat("X-Filler: "+strings.Repeat("y", 70)+"\n", 400) + "\nbody\n"
	cl.deliver("a@example.com", []string{"hb@catch.test"}, msg)
	ev := s.Wait(context.Background(), []string{"hb"})["hb"]
	if ev == nil || len(ev.Headers) != catchMaxHeaders {
		t.Fatalf("headers len %d, want %d", len(ev.Headers), catchMaxHeaders)
	}
}

// catcherGoroutines counts goroutines running catcher code. It looks at
// stacks rather than runtime.NumGoroutine so that other tests' background
// goroutines cannot make the check flaky.
func catcherGoroutines() int {
	buf := make([]byte, 1<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "audit.(*CatchServer)") && !strings.Contains(g, "audit.catcherGoroutines") {
			n++
		}
	}
	return n
}

// TestCatcherCloseLeavesNoGoroutines closes a catcher with idle and
// half-finished connections and checks that every goroutine it started
// has ended.
func TestCatcherCloseLeavesNoGoroutines(t *testing.T) {
	if n := catcherGoroutines(); n != 0 {
		t.Fatalf("%d catcher goroutines before the test", n)
	}
	s, err := NewCatcher(CatcherConfig{Domain: catchDomain, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		bufio.NewReader(c).ReadString('\n')
		if i%2 == 0 {
			fmt.Fprint(c, "EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<t@catch.test>\r\nDATA\r\nSubject: partial\r\n")
		}
	}
	if n := catcherGoroutines(); n < 6 { // accept loop + 5 sessions
		t.Fatalf("%d catcher goroutines while serving, want at least 6", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Close() // idempotent
	// Close waited for every goroutine's last statement (wg.Done); give
	// them a moment to leave their frames.
	for start := time.Now(); catcherGoroutines() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("%d catcher goroutines left after Close", catcherGoroutines())
		}
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := bufio.NewReader(c).ReadString(0); err == nil {
			t.Error("connection still open after Close")
		}
		c.Close()
	}
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Error("catcher still accepts connections after Close")
	}
}

func TestCatcherStopsWithContext(t *testing.T) {
	s, err := NewCatcher(CatcherConfig{Domain: catchDomain, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung after ctx ended")
	}
}

func TestNewCatcherConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  CatcherConfig
		ok   bool
	}{
		{"defaults", CatcherConfig{Domain: "Catch.Example."}, true},
		{"idn domain", CatcherConfig{Domain: "fänger.example"}, true},
		{"empty domain", CatcherConfig{}, false},
		{"single label", CatcherConfig{Domain: "localhost"}, false},
		{"bad domain", CatcherConfig{Domain: "a..b"}, false},
		{"hostname with CRLF", CatcherConfig{Domain: "c.example", Hostname: "x\r\n250 injected"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewCatcher(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				return
			}
			if s.cfg.Listen != ":25" || s.cfg.MaxMessage != 64<<10 || s.cfg.MaxConns != 32 || s.cfg.ConnTimeout != time.Minute {
				t.Errorf("defaults = %+v", s.cfg)
			}
		})
	}
	s, _ := NewCatcher(CatcherConfig{Domain: "fänger.example"})
	if got := s.Recipient("t"); got != "t@xn--fnger-gra.example" {
		t.Errorf("Recipient = %q", got)
	}
}
