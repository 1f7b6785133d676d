package mtatest_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit/mtatest"
)

// relayAttempt is one MAIL/RCPT pair sent from the prober's address.
type relayAttempt struct {
	name     string
	from, to string // to may contain %[1]s for the instance's domain
	wantTo   string // envelope recipient the sink must see when relayed
}

var attempts = []relayAttempt{
	{"plain", "u@probe.test", "victim@victim.test", "victim@victim.test"},
	{"null-sender", "", "victim@victim.test", "victim@victim.test"},
	{"local-sender", "u@%[1]s", "victim@victim.test", "victim@victim.test"},
	{"percent-hack", "u@probe.test", "victim%%victim.test@%[1]s", "victim@victim.test"},
}

// relays says which attempts each configuration must accept; every other
// attempt must be refused with a relay-denial reply.
var relays = map[mtatest.Kind]map[mtatest.Mode][]string{
	mtatest.Postfix: {
		mtatest.Closed:           nil,
		mtatest.ClosedReject:     nil,
		mtatest.OpenMynetworks:   {"plain", "null-sender", "local-sender", "percent-hack"},
		mtatest.OpenClientAccess: {"plain", "null-sender", "local-sender", "percent-hack"},
		mtatest.OpenNullSender:   {"null-sender"},
		mtatest.OpenLocalSender:  {"local-sender"},
	},
	mtatest.Exim: {
		mtatest.Closed: nil,
		// Exim's ACL refuses "%" in local parts before it looks at
		// relay_from_hosts.
		mtatest.OpenMynetworks:     {"plain", "null-sender", "local-sender"},
		mtatest.OpenRelayToDomains: {"plain", "null-sender", "local-sender"},
		mtatest.OpenAfterSTARTTLS:  nil,
	},
	mtatest.OpenSMTPD: {
		mtatest.Closed: nil,
		// "user%victim@target" is a local recipient that does not
		// exist: refused.
		mtatest.OpenMynetworks: {"plain", "null-sender", "local-sender"},
		mtatest.OpenFromAny:    {"plain", "null-sender", "local-sender"},
	},
}

// relaysTLS is relays after STARTTLS, where it differs.
var relaysTLS = map[mtatest.Kind]map[mtatest.Mode][]string{
	mtatest.Exim: {mtatest.OpenAfterSTARTTLS: {"plain", "null-sender", "local-sender"}},
}

// withTLS says which instances offer STARTTLS in the tests: the closed
// ones, so that they are shown closed after STARTTLS too, and the mode
// that needs it. OpenSMTPD cannot do TLS here (mtatest.Config.TLS).
func withTLS(kind mtatest.Kind, mode mtatest.Mode) bool {
	return kind != mtatest.OpenSMTPD && (mode == mtatest.Closed || mode == mtatest.OpenAfterSTARTTLS)
}

// TestModes checks every configuration with a raw SMTP dialogue: the
// relay attempts it must refuse are refused with a relay-denial code,
// the ones it must accept are accepted and really delivered to the sink
// with the MTA's Received header, postmaster of its own domain is
// accepted, and a trusted client (TrustedAddr) may relay, so a closed
// instance is closed to outsiders rather than broken.
func TestModes(t *testing.T) {
	for _, kind := range mtatest.Kinds {
		for _, mode := range mtatest.Modes(kind) {
			if mode == mtatest.BounceAfterAccept {
				continue // TestBounceAfterAccept
			}
			t.Run(fmt.Sprintf("%s/%s", kind, mode), func(t *testing.T) {
				t.Parallel()
				want, ok := relays[kind][mode]
				if !ok {
					t.Fatalf("no expectation for %s %s", kind, mode)
				}
				sink := mtatest.StartSink(t)
				inst := mtatest.StartT(t, mtatest.Config{Kind: kind, Mode: mode, RelayHost: sink.Addr(), TLS: withTLS(kind, mode)})
				if inst.TLS != withTLS(kind, mode) {
					t.Fatalf("instance TLS = %v", inst.TLS)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				delivered := checkInstance(ctx, t, inst, sink, want, false)
				if inst.TLS {
					wantTLS, ok := relaysTLS[kind][mode]
					if !ok {
						wantTLS = want
					}
					delivered += checkInstance(ctx, t, inst, sink, wantTLS, true)
				}
				// Nothing else arrived: refused attempts left no trace
				// downstream.
				if n := len(sink.Messages()); n != delivered {
					for _, m := range sink.Messages() {
						t.Logf("sink: from=<%s> to=%q", m.MailFrom, m.RcptTo)
					}
					t.Errorf("sink holds %d messages, want %d", n, delivered)
				}
			})
		}
	}
}

// checkInstance runs the attempts in plain text or after STARTTLS and
// returns how many messages it delivered to the sink.
func checkInstance(ctx context.Context, t *testing.T, inst *mtatest.Instance, sink *mtatest.Sink, want []string, overTLS bool) int {
	t.Helper()
	delivered := 0
	// Local delivery: postmaster of the instance's own domain.
	d := dial(ctx, t, netip.Addr{}, inst, overTLS)
	mustCode(t, d, 250, "MAIL FROM:<u@probe.test>")
	mustCode(t, d, 250, "RCPT TO:<postmaster@%s>", inst.Domain)
	d.Close()

	for _, a := range attempts {
		relayed := contains(want, a.name)
		from := a.from
		if strings.Contains(from, "%") {
			from = fmt.Sprintf(from, inst.Domain)
		}
		to := a.to
		if strings.Contains(to, "%[1]s") {
			to = fmt.Sprintf(to, inst.Domain)
		}
		token := fmt.Sprintf("%s-%s-%s-tls=%v-%d", inst.Kind, inst.Mode, a.name, overTLS, time.Now().UnixNano())
		d := dial(ctx, t, netip.Addr{}, inst, overTLS)
		mustCode(t, d, 250, "MAIL FROM:<%s>", from)
		r, err := d.Cmd("RCPT TO:<%s>", to)
		if err != nil {
			t.Fatal(err)
		}
		if !relayed {
			// Relay denied: Postfix 454 4.7.1 / 554 5.7.1 "Relay access
			// denied", Exim 550 "relay not permitted" or "restricted
			// characters", OpenSMTPD 550 "Invalid recipient".
			if r.Code/100 != 5 && r.Code != 454 || !(strings.Contains(strings.ToLower(r.Text), "relay") ||
				strings.Contains(r.Text, "restricted characters") || strings.Contains(r.Text, "Invalid recipient")) {
				t.Errorf("%s: RCPT TO:<%s> from <%s> = %v, want a relay denial", a.name, to, from, r)
			}
			d.Close()
			continue
		}
		if r.Code != 250 {
			t.Errorf("%s: RCPT TO:<%s> from <%s> = %v, want 250", a.name, to, from, r)
			d.Close()
			continue
		}
		msg := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@probe.test>\r\n\r\nrelay test %s\r\n", from, to, token, token, token)
		if r, err := d.Data(msg); err != nil || r.Code != 250 {
			t.Errorf("%s: DATA = %v, %v; want 250", a.name, r, err)
			d.Close()
			continue
		}
		d.Close()
		got, err := sink.Wait(ctx, func(m mtatest.Message) bool { return strings.Contains(string(m.Data), token) })
		if err != nil {
			t.Errorf("%s: accepted but never delivered to the sink: %v", a.name, err)
			continue
		}
		delivered++
		if len(got.RcptTo) != 1 || got.RcptTo[0] != a.wantTo {
			t.Errorf("%s: sink got RCPT %q, want [%s]", a.name, got.RcptTo, a.wantTo)
		}
		if rcv := got.Header("Received"); len(rcv) == 0 || !strings.Contains(rcv[0], inst.Hostname) {
			t.Errorf("%s: top Received = %q, want one by %s", a.name, rcv, inst.Hostname)
		}
	}

	// The trusted network relays, and the message reaches the sink (not
	// testable over IPv6: TrustedAddr cannot reach ::1).
	if inst.Addr.Addr().Is6() {
		return delivered
	}
	token := fmt.Sprintf("trusted-%s-%s-%d", inst.Kind, inst.Mode, time.Now().UnixNano())
	d = dial(ctx, t, netip.MustParseAddr(mtatest.TrustedAddr), inst, overTLS)
	mustCode(t, d, 250, "MAIL FROM:<u@%s>", inst.Domain)
	mustCode(t, d, 250, "RCPT TO:<friend@elsewhere.test>")
	if r, err := d.Data("Subject: " + token + "\r\n\r\n" + token + "\r\n"); err != nil || r.Code != 250 {
		t.Fatalf("trusted DATA = %v, %v", r, err)
	}
	d.Close()
	if _, err := sink.Wait(ctx, func(m mtatest.Message) bool { return strings.Contains(string(m.Data), token) }); err != nil {
		t.Errorf("trusted client's message never reached the sink: %v", err)
	} else {
		delivered++
	}
	return delivered
}

func dial(ctx context.Context, t *testing.T, from netip.Addr, inst *mtatest.Instance, overTLS bool) *mtatest.Dialog {
	t.Helper()
	d, err := mtatest.DialFrom(ctx, from, inst.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.Greeting.Text, inst.Hostname) {
		t.Errorf("greeting %v does not name %s", d.Greeting, inst.Hostname)
	}
	ehlo := mustCode(t, d, 250, "EHLO probe.test")
	if offered := strings.Contains(ehlo.Text, "STARTTLS"); offered != inst.TLS {
		t.Errorf("STARTTLS offered: %v, want %v (EHLO %q)", offered, inst.TLS, ehlo.Text)
	}
	if overTLS {
		st, err := d.StartTLS()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.PeerCertificates) == 0 || st.PeerCertificates[0].Subject.CommonName != inst.Hostname {
			t.Errorf("TLS certificate is not the instance's")
		}
		ehlo := mustCode(t, d, 250, "EHLO probe.test")
		if strings.Contains(ehlo.Text, "STARTTLS") {
			t.Errorf("STARTTLS still offered after STARTTLS")
		}
	}
	return d
}

func mustCode(t *testing.T, d *mtatest.Dialog, code int, format string, args ...any) mtatest.Reply {
	t.Helper()
	r, err := d.Cmd(format, args...)
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != code {
		t.Fatalf("%s = %v, want %d", fmt.Sprintf(format, args...), r, code)
	}
	return r
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestIPv6 runs Postfix on ::1: the prober's ::1 is outside its trusted
// network too, so the closed instance refuses to relay and the open one
// delivers to the sink. Both share a port with a 127.0.0.x address, as
// an MX name with an A and an AAAA record would.
func TestIPv6(t *testing.T) {
	t.Parallel()
	v4, v6, err := mtatest.DualStack()
	if err != nil {
		t.Fatal(err)
	}
	if v4.Port() != v6.Port() || !v4.Addr().Is4() || v6.Addr() != netip.IPv6Loopback() {
		t.Fatalf("DualStack = %s, %s", v4, v6)
	}
	for _, c := range []struct {
		mode   mtatest.Mode
		listen netip.AddrPort
		want   []string
	}{
		{mtatest.Closed, v4, nil},
		{mtatest.OpenClientAccess, v6, []string{"plain", "null-sender", "local-sender", "percent-hack"}},
	} {
		t.Run(fmt.Sprintf("%s/%s", c.mode, c.listen.Addr()), func(t *testing.T) {
			t.Parallel()
			sink := mtatest.StartSink(t)
			inst := mtatest.StartT(t, mtatest.Config{Kind: mtatest.Postfix, Mode: c.mode, RelayHost: sink.Addr(), Listen: c.listen})
			if inst.Addr != c.listen {
				t.Fatalf("listening on %s, want %s", inst.Addr, c.listen)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			n := checkInstance(ctx, t, inst, sink, c.want, false)
			want := len(c.want)
			if c.listen.Addr().Is4() {
				want++ // the trusted client's
			}
			if n != want || len(sink.Messages()) != want {
				t.Errorf("%d messages delivered, sink holds %d, want %d", n, len(sink.Messages()), want)
			}
		})
	}
	// Closed on ::1 as well: the prober's ::1 is not trusted.
	t.Run("closed/::1", func(t *testing.T) {
		t.Parallel()
		_, v6, err := mtatest.DualStack()
		if err != nil {
			t.Fatal(err)
		}
		sink := mtatest.StartSink(t)
		inst := mtatest.StartT(t, mtatest.Config{Kind: mtatest.Postfix, RelayHost: sink.Addr(), Listen: v6})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		d := dial(ctx, t, netip.Addr{}, inst, false)
		defer d.Close()
		mustCode(t, d, 250, "MAIL FROM:<u@probe.test>")
		if r := mustCode(t, d, 454, "RCPT TO:<victim@victim.test>"); !strings.Contains(r.Text, "Relay access denied") {
			t.Errorf("RCPT over IPv6 = %v", r)
		}
	})
}

// TestBounceAfterAccept checks the accept-then-bounce Postfix: it takes
// every relay attempt (RCPT and DATA 250), delivers none of them, and
// sends a bounce (null sender, with the original headers) to the sender;
// a null-sender message is dropped without a bounce.
func TestBounceAfterAccept(t *testing.T) {
	t.Parallel()
	sink := mtatest.StartSink(t)
	inst := mtatest.StartT(t, mtatest.Config{Kind: mtatest.Postfix, Mode: mtatest.BounceAfterAccept, RelayHost: sink.Addr()})
	if inst.Mode.Open() || inst.Mode.Closed() {
		t.Errorf("mode %s is open or closed", inst.Mode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tokens := map[string]string{}
	for _, from := range []string{"u@probe.test", ""} {
		token := fmt.Sprintf("bounce-test-%q-%d", from, time.Now().UnixNano())
		tokens[from] = token
		d := dial(ctx, t, netip.Addr{}, inst, false)
		mustCode(t, d, 250, "MAIL FROM:<%s>", from)
		mustCode(t, d, 250, "RCPT TO:<victim@victim.test>")
		if r, err := d.Data("Subject: " + token + "\r\n\r\n" + token + "\r\n"); err != nil || r.Code != 250 {
			t.Fatalf("DATA = %v, %v", r, err)
		}
		d.Close()
	}
	m, err := sink.Wait(ctx, func(m mtatest.Message) bool { return strings.Contains(string(m.Data), tokens["u@probe.test"]) })
	if err != nil {
		t.Fatalf("no bounce: %v", err)
	}
	if m.MailFrom != "" || !slices.Equal(m.RcptTo, []string{"u@probe.test"}) || !strings.Contains(string(m.Data), "multipart/report") {
		t.Errorf("bounce from <%s> to %q; want a DSN from <> to the sender:\n%s", m.MailFrom, m.RcptTo, m.Data)
	}
	// Give a wrong delivery or a bounce for <> time to show up.
	time.Sleep(time.Second)
	for _, m := range sink.Messages() {
		if m.MailFrom != "" || slices.Contains(m.RcptTo, "victim@victim.test") || strings.Contains(string(m.Data), tokens[""]) {
			t.Errorf("unexpected message from <%s> to %q", m.MailFrom, m.RcptTo)
		}
	}
}
