package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/audit/dnstest"
	"github.com/relaylock/relaylock/audit/smtptest"
)

func catchEnv() (*env, *syncBuffer, *syncBuffer) {
	var out, errb syncBuffer
	return &env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, &out, &errb
}

// useTestResolver points `relaylock audit` at an in-process DNS server.
func useTestResolver(t *testing.T, z dnstest.Zone) {
	t.Helper()
	r, err := audit.NewDNSResolver(audit.DNSConfig{Servers: []string{dnstest.Serve(t, z)}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	old := testResolver
	testResolver = r
	t.Cleanup(func() { testResolver = old })
}

func TestAuditCatchFlagsUsage(t *testing.T) {
	useTestResolver(t, dnstest.Zone{})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"listen without domain", []string{"--catch-listen", "127.0.0.1:0"}, "--catch-listen needs --catch-domain"},
		{"wait without domain", []string{"--catch-wait", "5s"}, "--catch-wait needs --catch-domain"},
		{"bad domain", []string{"--catch-domain", "a..b"}, "--catch-domain"},
		{"single label domain", []string{"--catch-domain", "localhost"}, "--catch-domain"},
		{"with --to", []string{"--catch-domain", "catch.test", "--to", "me@example.com"}, "conflicts with --to"},
		{"with --depth rcpt", []string{"--catch-domain", "catch.test", "--depth", "rcpt"}, "conflicts with --depth rcpt"},
		{"zero wait", []string{"--catch-domain", "catch.test", "--catch-wait", "0s"}, "--catch-wait must be positive"},
		{"bad listen", []string{"--catch-domain", "catch.test", "--catch-listen", "25"}, "ADDR:PORT"},
		{"deliver without recipient", []string{"--deliver"}, "--deliver needs --to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _, errb := catchEnv()
			args := append([]string{"relaylock", "audit"}, tt.args...)
			args = append(args, "127.0.0.1:1")
			if code := run(context.Background(), args, e); code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, errb.String())
			}
		})
	}
}

// forwardTo delivers a message the way a relay would: over SMTP to addr.
// Test-only client code, loopback only.
func forwardTo(addr string, m smtptest.Message) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	expect := func(code string) error {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if len(line) > 3 && line[3] == '-' {
				continue
			}
			if !strings.HasPrefix(line, code) {
				return fmt.Errorf("reply %q, want %s", line, code)
			}
			return nil
		}
	}
	steps := []struct{ send, want string }{
		{"", "220"}, {"EHLO relay.example.com", "250"}, {"MAIL FROM:<" + m.MailFrom + ">", "250"},
	}
	for _, rc := range m.RcptTo {
		steps = append(steps, struct{ send, want string }{"RCPT TO:<" + rc + ">", "250"})
	}
	steps = append(steps, struct{ send, want string }{"DATA", "354"})
	for _, st := range steps {
		if st.send != "" {
			fmt.Fprintf(c, "%s\r\n", st.send)
		}
		if err := expect(st.want); err != nil {
			return err
		}
	}
	data := "Received: from prober by mx.example.com; " + time.Now().Format(time.RFC1123Z) + "\r\n" + string(m.Data)
	var b strings.Builder
	for _, l := range strings.SplitAfter(data, "\r\n") {
		if strings.HasPrefix(l, ".") {
			b.WriteString(".")
		}
		b.WriteString(l)
	}
	if !strings.HasSuffix(b.String(), "\r\n") {
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	c.Write([]byte(b.String()))
	return expect("250")
}

// TestAuditCatchModeEndToEnd runs `relaylock audit --catch-domain` against
// an open relay that really forwards what it accepts: the catcher receives
// the relayed messages and the verdict is open-confirmed, exit code 3.
func TestAuditCatchModeEndToEnd(t *testing.T) {
	useTestResolver(t, dnstest.MailZone("catch.test", "mx.catch.test", "127.0.0.1"))
	catcherAddr := make(chan string, 1)
	testOnlyCatchStarted = func(addr string) { catcherAddr <- addr }
	t.Cleanup(func() { testOnlyCatchStarted = nil })

	p := smtptest.Open()
	p.Deliver = func(m smtptest.Message) {
		var addr string
		select {
		case addr = <-catcherAddr:
			catcherAddr <- addr
		case <-time.After(5 * time.Second):
			t.Error("catcher never started")
			return
		}
		var to []string
		for _, r := range m.RcptTo {
			if strings.HasSuffix(strings.ToLower(r), "@catch.test") {
				to = append(to, r)
			}
		}
		if len(to) == 0 {
			return
		}
		m.RcptTo = to
		if err := forwardTo(addr, m); err != nil {
			t.Errorf("relay to the catcher: %v", err)
		}
	}
	relay := smtptest.Serve(t, p)

	e, out, errb := catchEnv()
	code := run(context.Background(), []string{"relaylock", "audit", "--catch-domain", "catch.test",
		"--catch-listen", "127.0.0.1:0", "--catch-wait", "3s", "--format", "json", relay}, e)
	if code != exitOpen {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitOpen, errb.String())
	}
	var res audit.Result
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	if res.Options.Depth != "catch" {
		t.Errorf("depth = %q", res.Options.Depth)
	}
	confirmed := 0
	for _, tr := range res.Targets {
		for _, ep := range tr.Endpoints {
			if ep.Confirmation == audit.ConfirmConfirmed {
				confirmed++
			}
			for _, tst := range ep.Tests {
				if tst.Outcome == audit.OutcomeOpenConfirmed {
					if tst.Catch == nil || !tst.Catch.Arrived || len(tst.Catch.Received) == 0 || !strings.HasPrefix(tst.Catch.RemoteAddr, "127.0.0.1:") {
						t.Errorf("%s: confirmed without catch evidence: %+v", tst.ID, tst.Catch)
					}
				}
			}
		}
	}
	if confirmed == 0 {
		t.Errorf("no endpoint confirmed open:\n%s", out.String())
	}
	for _, want := range []string{"catch mode: listening on 127.0.0.1:", "message(s) caught"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	if strings.Contains(errb.String(), "warning") {
		t.Errorf("unexpected DNS warning:\n%s", errb.String())
	}
}
