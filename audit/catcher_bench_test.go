package audit

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
)

// BenchmarkCatcherMessage delivers test messages over one pipelined
// connection: the catcher's cost per caught message (parse, match, store).
func BenchmarkCatcherMessage(b *testing.B) {
	s, err := NewCatcher(CatcherConfig{Domain: catchDomain, Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	readReply := func() string {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) > 3 && line[3] == '-' {
				continue
			}
			return line
		}
	}
	readReply()
	fmt.Fprint(c, "EHLO bench.example\r\n")
	readReply()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tok := fmt.Sprintf("bench%d", i)
		i++
		body := strings.ReplaceAll(testMessage(tok), "\n", "\r\n")
		fmt.Fprintf(c, "MAIL FROM:<p@probe.test>\r\nRCPT TO:<%s@catch.test>\r\nDATA\r\n%s.\r\n", tok, body)
		for range 4 {
			if line := readReply(); line[0] != '2' && line[0] != '3' {
				b.Fatalf("reply %q", line)
			}
		}
	}
}
