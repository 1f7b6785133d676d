package mtatest_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit/mtatest"
)

// TestSink drives the sink with the raw Dialog client: it must record
// the envelope and the dot-unstuffed data (RFC 5321 §4.5.2), reset on
// RSET, and expose the header fields in order.
func TestSink(t *testing.T) {
	sink := mtatest.StartSink(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := mtatest.Dial(ctx, sink.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Greeting.Code != 220 || !strings.Contains(d.Greeting.Text, mtatest.SinkHostname) {
		t.Errorf("greeting %v", d.Greeting)
	}
	for _, c := range []struct {
		cmd  string
		code int
	}{
		{"EHLO mx.target.test", 250},
		{"MAIL FROM:<dropped@probe.test>", 250},
		{"RCPT TO:<dropped@victim.test>", 250},
		{"RSET", 250},
		{"DATA", 503}, // no recipient after RSET
		{"MAIL FROM:<a@probe.test> BODY=8BITMIME", 250},
		{"RCPT TO:<v@victim.test>", 250},
		{"RCPT TO:<w@victim.test>", 250},
	} {
		r, err := d.Cmd("%s", c.cmd)
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != c.code {
			t.Fatalf("%s = %v, want %d", c.cmd, r, c.code)
		}
	}
	msg := "Received: from a by b; now\r\nReceived: from c\r\n by d; earlier\r\nSubject: t\r\n\r\n.leading dot\r\nbody\r\n"
	if r, err := d.Data(msg); err != nil || r.Code != 250 {
		t.Fatalf("DATA = %v, %v", r, err)
	}
	m, err := sink.Wait(ctx, func(m mtatest.Message) bool { return m.MailFrom == "a@probe.test" })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.RcptTo, []string{"v@victim.test", "w@victim.test"}) || m.Helo != "mx.target.test" {
		t.Errorf("envelope %+v", m)
	}
	if string(m.Data) != msg {
		t.Errorf("data %q, want %q", m.Data, msg)
	}
	if got := m.Header("Received"); !slices.Equal(got, []string{"from a by b; now", "from c by d; earlier"}) {
		t.Errorf("Received = %q", got)
	}
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("%d messages, want 1 (RSET drops the first transaction)", n)
	}
	ctx2, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if _, err := sink.Wait(ctx2, func(m mtatest.Message) bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait for nothing = %v, want deadline exceeded", err)
	}
}

// TestStartRefusesNonLoopbackRelay checks the network-safety rule before
// anything starts: outbound mail may only go to a loopback address.
func TestStartRefusesNonLoopbackRelay(t *testing.T) {
	for _, relay := range []string{"192.0.2.1:25", "10.0.0.1:2525", "[2001:db8::1]:25", "127.0.0.1:0"} {
		_, err := mtatest.Start(context.Background(), mtatest.Config{Kind: mtatest.Postfix, RelayHost: netip.MustParseAddrPort(relay)})
		if err == nil || !strings.Contains(err.Error(), "not a loopback") {
			t.Errorf("relay host %s: err = %v, want a refusal", relay, err)
		}
	}
	if _, err := mtatest.Start(context.Background(), mtatest.Config{Kind: mtatest.Exim, Mode: mtatest.OpenNullSender,
		RelayHost: netip.MustParseAddrPort("127.0.0.1:2525")}); err == nil || !strings.Contains(err.Error(), "no mode") {
		t.Errorf("exim open-null-sender: err = %v, want unsupported mode", err)
	}
}

func TestModeOpen(t *testing.T) {
	for _, k := range mtatest.Kinds {
		closed := 0
		for _, m := range mtatest.Modes(k) {
			if !m.Open() {
				closed++
			}
		}
		if closed == 0 || closed == len(mtatest.Modes(k)) {
			t.Errorf("%s: %d closed of %d modes; want both kinds", k, closed, len(mtatest.Modes(k)))
		}
	}
}
