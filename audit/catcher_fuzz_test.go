package audit

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzCatcherSession plays arbitrary client input against one catcher
// session and checks the property that makes catch mode safe: whatever
// was sent, every recipient the catcher kept is in the catch domain (or
// the bare postmaster), and the session never panics or hangs. Seeds are
// in testdata/fuzz/FuzzCatcherSession.
func FuzzCatcherSession(f *testing.F) {
	f.Add([]byte("EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<t@catch.test>\r\nDATA\r\nSubject: relaylock relay test t\r\n\r\nhi\r\n.\r\nQUIT\r\n"))
	f.Fuzz(func(t *testing.T, input []byte) {
		s, err := NewCatcher(CatcherConfig{Domain: catchDomain, MaxMessage: 4096, ConnTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.serve(server)
			server.Close()
		}()
		go io.Copy(io.Discard, client)
		client.Write(input)
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for tok, ev := range s.got {
			for _, r := range ev.RcptTo {
				local, domain := splitAddr(r)
				if !strings.EqualFold(strings.TrimSuffix(domain, "."), catchDomain) &&
					!(domain == "" && strings.EqualFold(local, "postmaster")) {
					t.Fatalf("token %q kept foreign recipient %q", tok, r)
				}
			}
		}
	})
}
