package audit

// Hostile SMTP servers (issue 9): relaylock talks to servers it does not
// control. Each hostile behaviour below must end in a per-host verdict
// that is inconclusive with a reason (never open, never closed on
// garbage), within bounded time and memory, while the other hosts of the
// same run are judged as usual.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/relaylock/relaylock/audit/smtptest"
	"github.com/relaylock/relaylock/internal/heapwatch"
)

// rawServer serves handle on 127.0.0.1:0, one goroutine per connection
// (n counts connections from 0), and closes everything when the test ends.
func rawServer(t *testing.T, handle func(c net.Conn, n int, done <-chan struct{})) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	var n atomic.Int32
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer c.Close()
				handle(c, i, done)
			}(int(n.Add(1) - 1))
		}
	}()
	t.Cleanup(func() {
		close(done)
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// write writes s, giving up when the client is gone or the test ends.
func writeAll(c net.Conn, done <-chan struct{}, s string) bool {
	select {
	case <-done:
		return false
	default:
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Write([]byte(s))
	return err == nil
}

// lines calls fn for each line the client sends.
func eachLine(c net.Conn, fn func(line string) bool) {
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		k, err := c.Read(tmp)
		if err != nil {
			return
		}
		buf = append(buf, tmp[:k]...)
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			line := strings.TrimRight(string(buf[:i]), "\r")
			buf = buf[i+1:]
			if !fn(line) {
				return
			}
		}
		if len(buf) > 1<<16 {
			return
		}
	}
}

// reset closes c with a TCP RST (SO_LINGER 0).
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

type hostile struct {
	name string
	addr string
	// want: the endpoint's reason word(s) any of which is acceptable.
	reasons []string
}

func TestHostileServersInOneRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a dozen hostile servers")
	}
	var servers []hostile
	add := func(name string, addr string, reasons ...string) {
		servers = append(servers, hostile{name, addr, reasons})
	}

	// Endless multi-line reply: "220-" continuation lines forever.
	add("endless multi-line greeting", rawServer(t, func(c net.Conn, _ int, done <-chan struct{}) {
		line := "220-mx.example.com " + strings.Repeat("x", 60) + "\r\n"
		chunk := strings.Repeat(line, 64)
		for writeAll(c, done, chunk) {
		}
	}), ReasonProtocol)

	// 1 MB without a newline, then silence.
	add("1 MB line without a newline", rawServer(t, func(c net.Conn, _ int, done <-chan struct{}) {
		if writeAll(c, done, "220 "+strings.Repeat("A", 1<<20)) {
			<-done
		}
	}), ReasonProtocol)

	// One byte per second.
	add("one byte per second", rawServer(t, func(c net.Conn, _ int, done <-chan struct{}) {
		for _, b := range []byte("220 slow.example.com ESMTP\r\n") {
			if !writeAll(c, done, string(b)) {
				return
			}
			select {
			case <-done:
				return
			case <-time.After(time.Second):
			}
		}
	}), ReasonTimeout)

	// Invalid UTF-8, NUL bytes and reply codes that are not codes.
	add("invalid UTF-8 and NUL bytes", rawServer(t, func(c net.Conn, _ int, done <-chan struct{}) {
		if !writeAll(c, done, "220 mx\xff\xfe\x00\x01 ESMTP \xc3\x28\r\n") {
			return
		}
		eachLine(c, func(string) bool { return writeAll(c, done, "2\xff0-\x00\x00\r\n25\x00 \xff\r\n") })
	}), ReasonProtocol)

	// Replies before commands: the greeting comes with answers to
	// commands not sent yet (a desynchronising or injecting server).
	add("replies before commands", rawServer(t, func(c net.Conn, _ int, done <-chan struct{}) {
		if !writeAll(c, done, "220 mx.example.com ESMTP\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n") {
			return
		}
		eachLine(c, func(l string) bool {
			if strings.HasPrefix(strings.ToUpper(l), "QUIT") {
				writeAll(c, done, "221 bye\r\n")
				return false
			}
			return writeAll(c, done, "250 2.0.0 Ok\r\n")
		})
	}), ReasonProtocol)

	// The same, subtler: a closed server whose greeting carries one
	// extra "250" (so every later answer is one command late).
	early := smtptest.Closed554()
	early.Override = func(_ *smtptest.Session, line string) (string, bool) {
		if line == "" {
			return "220 mx.example.com ESMTP\r\n250 2.1.5 Ok\r\n", true
		}
		return "", false
	}
	add("one reply before its command", smtptest.Serve(t, early), ReasonProtocol)

	// Connection reset at each step: right after accept, after the
	// greeting, after EHLO, after MAIL, after RCPT.
	for step := 0; step <= 4; step++ {
		step := step
		reasons := []string{ReasonDropped, ReasonTimeout}
		if step == 0 {
			// A reset as soon as the server accepts can reach a loaded
			// client while its connect is still completing.
			reasons = append(reasons, ReasonUnreachable)
		}
		add("reset at step "+string(rune('0'+step)), rawServer(t, func(c net.Conn, _ int, done <-chan struct{}) {
			if step == 0 {
				reset(c)
				return
			}
			if !writeAll(c, done, "220 mx.example.com ESMTP\r\n") {
				return
			}
			n := 1
			eachLine(c, func(l string) bool {
				if n >= step {
					reset(c)
					return false
				}
				n++
				switch {
				case strings.HasPrefix(l, "EHLO"):
					return writeAll(c, done, "250-mx.example.com\r\n250 ENHANCEDSTATUSCODES\r\n")
				default:
					return writeAll(c, done, "250 2.1.0 Ok\r\n")
				}
			})
		}), reasons...)
	}

	// STARTTLS advertised, then a handshake that fails (no certificate).
	// The plain session is a normal closed server; the TLS rerun must
	// be inconclusive(tls).
	tlsFail := smtptest.Closed554()
	tlsFail.StartTLS = true
	tlsFail.TLSConfig = &tls.Config{} // no certificate: every handshake fails
	tlsFailAddr := smtptest.Serve(t, tlsFail)
	// STARTTLS answered with 220 plus plaintext meant to be read as if it
	// came over TLS (response injection).
	inject := smtptest.Closed554()
	inject.StartTLS = true
	inject.Override = func(_ *smtptest.Session, line string) (string, bool) {
		if strings.EqualFold(line, "STARTTLS") {
			return "220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 AUTH PLAIN\r\n", true
		}
		return "", false
	}
	injectAddr := smtptest.Serve(t, inject)

	// 250 to everything, garbage included (DATA too, never 354).
	yes := rawServer(t, func(c net.Conn, _ int, done <-chan struct{}) {
		if !writeAll(c, done, "220 yes.example.com ESMTP\r\n") {
			return
		}
		eachLine(c, func(string) bool { return writeAll(c, done, "250 Ok\r\n") })
	})

	// The well-behaved closed server that must still be judged closed.
	closed := smtptest.Serve(t, smtptest.Closed554())
	// Lines over RFC 5321's 512 octets (§4.5.3.1.5) but within
	// MaxReplyLine are real-world and tolerated: still judged closed.
	long := smtptest.Closed554()
	long.Banner = "mx.example.com ESMTP " + strings.Repeat("x", 600)
	long.DenyText = "5.7.1 Relay access denied " + strings.Repeat("y", 1500)
	longLines := smtptest.Serve(t, long)

	targets := []string{closed, longLines, tlsFailAddr, injectAddr, yes}
	for _, s := range servers {
		targets = append(targets, s.addr)
	}

	heap := heapwatch.Start(20 * time.Millisecond)

	const deadline = 40 * time.Second
	opts := Options{
		Targets:         targets,
		MailDomain:      "example.com",
		HeloName:        "probe.example.net",
		ConnectTimeout:  2 * time.Second,
		GreetingTimeout: 3 * time.Second,
		CommandTimeout:  3 * time.Second,
		DataTimeout:     3 * time.Second,
		Deadline:        deadline,
	}
	start := time.Now()
	res, err := Run(context.Background(), opts)
	elapsed := time.Since(start)
	before, grow := heap.Stop()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("one run, %d servers: %s, peak heap %d KiB over %d KiB before", len(targets), elapsed.Round(time.Millisecond),
		grow>>10, before>>10)
	if elapsed > deadline+5*time.Second {
		t.Errorf("run took %s, beyond its deadline %s", elapsed, deadline)
	}
	// Every hostile server together may not make relaylock hold more than
	// a few MB: replies are bounded (MaxReplyLine, MaxReplyLines,
	// MaxReplyBytes) and so are transcripts.
	if grow > 48<<20 {
		t.Errorf("heap grew by %d MiB during the run", grow>>20)
	}

	byAddr := map[string]*TargetResult{}
	for i := range res.Targets {
		byAddr[res.Targets[i].Target] = &res.Targets[i]
	}

	// The normal closed server is still judged correctly.
	for name, addr := range map[string]string{"normal closed server": closed, "closed server with 600- and 1500-byte lines": longLines} {
		if tr := byAddr[addr]; tr.Verdict != VerdictClosed {
			for i := range tr.Endpoints {
				dump(t, &tr.Endpoints[i])
			}
			t.Errorf("%s: verdict %s (%s), want closed", name, tr.Verdict, tr.Reason)
		}
	}

	for _, s := range servers {
		tr := byAddr[s.addr]
		if len(tr.Endpoints) != 1 {
			t.Errorf("%s: %d endpoints", s.name, len(tr.Endpoints))
			continue
		}
		ep := &tr.Endpoints[0]
		t.Logf("%s: %s (%s)", s.name, ep.Verdict, ep.Reason)
		ok := false
		for _, r := range s.reasons {
			ok = ok || reasonWord(ep.Reason) == r
		}
		if ep.Verdict != VerdictInconclusive || !ok {
			dump(t, ep)
			t.Errorf("%s: endpoint %s (%s), want inconclusive with reason %q", s.name, ep.Verdict, ep.Reason, s.reasons)
		}
		if ep.Reason == "" || tr.Verdict != VerdictInconclusive {
			t.Errorf("%s: target verdict %s, reason %q", s.name, tr.Verdict, tr.Reason)
		}
	}

	// STARTTLS failure and STARTTLS injection: the plain session is
	// closed, the TLS one inconclusive(tls), the host not closed (it
	// could not be tested over TLS).
	for name, addr := range map[string]string{"STARTTLS handshake failure": tlsFailAddr, "STARTTLS injection": injectAddr} {
		tf := byAddr[addr]
		var plain, overTLS *EndpointResult
		for i := range tf.Endpoints {
			switch tf.Endpoints[i].TLS {
			case "none":
				plain = &tf.Endpoints[i]
			case "starttls":
				overTLS = &tf.Endpoints[i]
			}
		}
		if plain == nil || overTLS == nil {
			t.Errorf("%s: endpoints %+v", name, tf.Endpoints)
			continue
		}
		t.Logf("%s: plain %s, TLS %s (%s)", name, plain.Verdict, overTLS.Verdict, overTLS.Reason)
		if plain.Verdict != VerdictClosed {
			dump(t, plain)
			t.Errorf("%s, plain session: %s (%s), want closed", name, plain.Verdict, plain.Reason)
		}
		if overTLS.Verdict != VerdictInconclusive || reasonWord(overTLS.Reason) != ReasonTLS {
			dump(t, overTLS)
			t.Errorf("%s, TLS session: %s (%s), want inconclusive(tls)", name, overTLS.Verdict, overTLS.Reason)
		}
		if tf.Verdict == VerdictClosed || tf.Verdict == VerdictOpen {
			t.Errorf("%s: target verdict %s", name, tf.Verdict)
		}
	}

	// 250 to everything: DATA answered 250 instead of 354 proves no
	// relay, and the controls show it accepts any recipient. Never open
	// (let alone confirmed), never closed.
	ye := &byAddr[yes].Endpoints[0]
	t.Logf("250-to-everything server: %s (%s), accept_all=%v", ye.Verdict, ye.Reason, ye.AcceptAll)
	if ye.Verdict != VerdictInconclusive || ye.Confirmation == ConfirmConfirmed || !ye.AcceptAll {
		dump(t, ye)
		t.Errorf("250-to-everything server: %s (%s, %s), accept_all=%v; want inconclusive with accept_all",
			ye.Verdict, ye.Confirmation, ye.Reason, ye.AcceptAll)
	}

	// Whatever the servers sent, the result is valid JSON and UTF-8, and
	// no transcript line exceeds its bound.
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("marshal result: %v", err)
	}
	if !utf8.Valid(js) {
		t.Error("result JSON is not valid UTF-8")
	}
	for _, tr := range res.Targets {
		for _, ep := range tr.Endpoints {
			for _, tx := range ep.Transcripts {
				if len(tx.Lines) > MaxTranscriptLines {
					t.Errorf("%s: %d transcript lines", tr.Target, len(tx.Lines))
				}
				for _, l := range tx.Lines {
					if len(l.Text) > MaxTranscriptLineLen+64 {
						t.Errorf("%s: transcript line of %d bytes", tr.Target, len(l.Text))
					}
				}
			}
		}
	}
}
