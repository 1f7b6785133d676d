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
