package smtptest

import (
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// dialog runs one SMTP transaction and returns the RCPT reply code (0
// when the session did not get that far) and the EHLO reply text.
func dialog(t *testing.T, addr, helo, from, rcpt string) (code int, ehlo string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(c)
	if _, _, err := tp.ReadResponse(220); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	tp.PrintfLine("%s relaylock.test", helo)
	ecode, ehlo, _ := tp.ReadResponse(0)
	if ecode != 250 {
		return 0, ehlo
	}
	tp.PrintfLine("MAIL FROM:<%s>", from)
	if mc, _, _ := tp.ReadResponse(0); mc != 250 {
		return 0, ehlo
	}
	tp.PrintfLine("RCPT TO:<%s>", rcpt)
	code, _, _ = tp.ReadResponse(0)
	tp.PrintfLine("QUIT")
	return code, ehlo
}

func TestPolicies(t *testing.T) {
	const victim = "victim@example.org"
	tests := []struct {
		name       string
		p          Policy
		helo, from string
		rcpt       string
		want       int
	}{
		{"open relays", Open(), "EHLO", "a@probe.test", victim, 250},
		{"closed 554", Closed554(), "EHLO", "a@probe.test", victim, 554},
		{"closed 454 is a relay denial", Closed454(), "EHLO", "a@probe.test", victim, 454},
		{"closed still takes local mail", Closed554(), "EHLO", "a@probe.test", "postmaster@example.com", 250},
		{"null sender only", NullSenderOpen(), "EHLO", "", victim, 250},
		{"null sender only: others refused", NullSenderOpen(), "EHLO", "a@probe.test", victim, 554},
		{"spoofed local sender", SpoofedLocalSenderOpen(), "EHLO", "x@example.com", victim, 250},
		{"percent hack", PercentHackOpen(), "EHLO", "a@probe.test", "victim%example.org@example.com", 250},
		{"greylist", Greylist(), "EHLO", "a@probe.test", victim, 450},
		{"HELO only: EHLO refused", HeloOnly(), "EHLO", "a@probe.test", victim, 0},
		{"HELO only: HELO works", HeloOnly(), "HELO", "a@probe.test", "postmaster@example.com", 250},
		{"open only after STARTTLS: refused in clear", OpenAfterSTARTTLS(), "EHLO", "a@probe.test", victim, 554},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := Serve(t, tc.p)
			got, _ := dialog(t, addr, tc.helo, tc.from, tc.rcpt)
			if got != tc.want {
				t.Errorf("RCPT got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestExtensionsAndHooks(t *testing.T) {
	var decided []string
	p := Open()
	p.StartTLS = true
	p.Decide = func(s *Session, rcpt string) (int, string) {
		decided = append(decided, s.RemoteAddr.String()+" "+rcpt)
		return 550, "5.7.1 decided by the hook"
	}
	srv := Start(t, p)
	code, ehlo := dialog(t, srv.Addr(), "EHLO", "a@probe.test", "victim@example.org")
	if code != 550 || len(decided) != 1 || !strings.HasPrefix(decided[0], "127.0.0.1 ") {
		t.Errorf("Decide hook: code %d, calls %v", code, decided)
	}
	for _, ext := range []string{"PIPELINING", "STARTTLS"} {
		if !strings.Contains(ehlo, ext) {
			t.Errorf("EHLO lacks %s: %q", ext, ehlo)
		}
	}
	if n := len(srv.Sessions()); n != 1 {
		t.Errorf("%d sessions recorded, want 1", n)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestLatency: Latency is a slow link, not a slow server. A client that
// waits for each reply pays it per reply; a pipelined group answered in
// one flush pays it once; the last reply before the close still arrives.
func TestLatency(t *testing.T) {
	const lat = 100 * time.Millisecond
	p := Closed554()
	p.Latency = lat
	addr := Serve(t, p)
	// The server's delay starts when it accepts, which may be before
	// DialTimeout returns here: time the greeting from before the dial.
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	tp := textproto.NewConn(c)
	if _, _, err := tp.ReadResponse(220); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if d := time.Since(start); d < lat {
		t.Errorf("greeting after %s, want at least %s", d, lat)
	}
	tp.PrintfLine("EHLO relaylock.test")
	if _, _, err := tp.ReadResponse(250); err != nil {
		t.Fatal(err)
	}
	// One at a time: 5 round trips of at least lat each.
	start = time.Now()
	for i := 0; i < 5; i++ {
		tp.PrintfLine("NOOP")
		if _, _, err := tp.ReadResponse(250); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 5*lat {
		t.Errorf("5 lock-step commands took %s, want at least %s", d, 5*lat)
	}
	// Pipelined: 30 commands in one write, answered in one flush.
	var b strings.Builder
	for i := 0; i < 10; i++ {
		b.WriteString("MAIL FROM:<a@probe.test>\r\nRCPT TO:<victim@example.org>\r\nRSET\r\n")
	}
	start = time.Now()
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		for _, want := range []int{250, 554, 250} {
			if _, _, err := tp.ReadResponse(want); err != nil {
				t.Fatalf("pipelined reply %d: %v", i, err)
			}
		}
	}
	if d := time.Since(start); d < lat || d > 15*lat {
		t.Errorf("30 pipelined replies took %s, want about one latency (%s), far below 30", d, lat)
	}
	tp.PrintfLine("QUIT")
	if _, _, err := tp.ReadResponse(221); err != nil {
		t.Errorf("221 lost at the close: %v", err)
	}
}
