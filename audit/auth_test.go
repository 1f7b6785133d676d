package audit

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit/smtptest"
)

// Test 41 (opt-in): relaying after an AUTH that must fail. A server that
// checks logins refuses every A41 test; one that takes a failed login as
// Guest, or an NTLM null session as a login, is open through exactly the
// tests that exercise that; a mechanism the server does not offer is
// skipped with the reason.
func TestRunAuthTests(t *testing.T) {
	checks := func(user, pass string) bool { return user == "alice" && pass == "right" }
	strict := smtptest.Closed554()
	strict.Auth, strict.NTLM, strict.CRAMMD5 = checks, true, true
	guest := strict
	guest.GuestAuth = func() bool { return true }
	null := strict
	null.NullSession = true
	plainOnly := smtptest.Closed554()
	plainOnly.Auth = checks
	tests := []struct {
		name     string
		p        smtptest.Policy
		verdict  Verdict
		triggers []string
		skipped  []string
		auth235  []string
	}{
		{"logins checked: closed", strict, VerdictClosed, nil, nil, nil},
		{"guest account: every failed login relays", guest, VerdictOpen, []string{"A41a", "A41b", "A41c", "A41d"}, nil, []string{"A41a", "A41b", "A41c", "A41d"}},
		{"NTLM null session relays", null, VerdictOpen, []string{"A41a"}, nil, []string{"A41a"}},
		{"only PLAIN and LOGIN offered", plainOnly, VerdictClosed, nil, []string{"A41a", "A41d"}, nil},
		{"no AUTH at all", smtptest.Closed554(), VerdictClosed, nil, []string{"A41a", "A41b", "A41c", "A41d"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, srv := testAudit(t, tc.p, func(o *Options) { o.AuthTests, o.AllTests, o.Depth = true, true, DepthRcpt })
			ep := endpoint(t, res, "none")
			if ep.Verdict != tc.verdict {
				t.Fatalf("verdict %s, want %s (triggers %v)", ep.Verdict, tc.verdict, ep.Triggers)
			}
			if !slices.Equal(ep.Triggers, tc.triggers) && !(len(ep.Triggers) == 0 && len(tc.triggers) == 0) {
				t.Errorf("triggers %v, want %v", ep.Triggers, tc.triggers)
			}
			var skipped, auth235 []string
			seen := 0
			for _, tr := range ep.Tests {
				if !strings.HasPrefix(tr.ID, "A41") {
					continue
				}
				seen++
				if tr.Auth == "" || tr.Kind != "session" {
					t.Errorf("%s: auth %q kind %q", tr.ID, tr.Auth, tr.Kind)
				}
				switch {
				case tr.Outcome == OutcomeSkipped:
					skipped = append(skipped, tr.ID)
					if !strings.Contains(tr.Reason, "does not offer AUTH") {
						t.Errorf("%s skipped: %q", tr.ID, tr.Reason)
					}
				case tr.AuthReply == nil:
					t.Errorf("%s ran without an AUTH reply recorded", tr.ID)
				case tr.AuthReply.Code == 235:
					auth235 = append(auth235, tr.ID)
				case tr.Outcome != OutcomeDenied:
					t.Errorf("%s: AUTH %d then %s", tr.ID, tr.AuthReply.Code, tr.Outcome)
				}
			}
			if seen != 4 {
				t.Fatalf("%d A41 tests, want 4", seen)
			}
			if !slices.Equal(skipped, tc.skipped) || !slices.Equal(auth235, tc.auth235) {
				t.Errorf("skipped %v (want %v), AUTH accepted %v (want %v)", skipped, tc.skipped, auth235, tc.auth235)
			}
			// Each A41 test that ran had a connection of its own, starting
			// with its AUTH.
			authSessions := 0
			for _, s := range srv.Sessions() {
				for _, l := range s.Lines {
					if strings.HasPrefix(l, "C: AUTH ") {
						authSessions++
						break
					}
				}
			}
			if want := 4 - len(tc.skipped); authSessions != want {
				t.Errorf("%d sessions sent AUTH, want %d", authSessions, want)
			}
		})
	}
}

// Without Options.AuthTests no AUTH is ever sent.
func TestRunAuthTestsOptIn(t *testing.T) {
	p := smtptest.Closed554()
	p.Auth, p.NTLM, p.GuestAuth = func(string, string) bool { return false }, true, func() bool { return true }
	res, srv := testAudit(t, p, nil)
	if v := endpoint(t, res, "none").Verdict; v != VerdictClosed {
		t.Fatalf("verdict %s", v)
	}
	for _, s := range srv.Sessions() {
		for _, l := range s.Lines {
			if strings.HasPrefix(l, "C: AUTH") {
				t.Fatalf("AUTH sent without AuthTests: %q", l)
			}
		}
	}
}

// The NTLM messages are well formed: a NEGOTIATE, and an anonymous
// AUTHENTICATE whose fields all point inside the message.
func TestNTLMNullSessionMessages(t *testing.T) {
	neg := ntlmNegotiate()
	if string(neg[:8]) != "NTLMSSP\x00" || neg[8] != 1 {
		t.Fatalf("negotiate %x", neg)
	}
	auth := ntlmNullAuthenticate()
	if string(auth[:8]) != "NTLMSSP\x00" || auth[8] != 3 {
		t.Fatalf("authenticate %x", auth)
	}
	for at := 12; at <= 52; at += 8 {
		l := int(auth[at]) | int(auth[at+1])<<8
		off := int(auth[at+4]) | int(auth[at+5])<<8
		if off+l > len(auth) || off < 64 {
			t.Errorf("field at %d: offset %d length %d outside the %d-byte message", at, off, l, len(auth))
		}
	}
	if lm := auth[64]; lm != 0 || len(auth) != 65 {
		t.Errorf("LM response %x, length %d: want Z(1)", lm, len(auth))
	}
	if flags := uint32(auth[60]) | uint32(auth[61])<<8; flags&ntlmAnonymous == 0 {
		t.Errorf("NTLMSSP_ANONYMOUS not set: %#x", flags)
	}
}

// A greylisted A41 test is retried on a connection of its own, with its
// AUTH again: without it the retry would test plain relaying instead.
func TestRunAuthTestsGreylistRetry(t *testing.T) {
	p := smtptest.Greylist()
	p.Auth, p.GuestAuth = func(string, string) bool { return false }, func() bool { return true }
	res, _ := testAudit(t, p, func(o *Options) {
		o.AuthTests, o.AllTests, o.Depth, o.GreylistRetry = true, true, DepthRcpt, 10*time.Millisecond
	})
	ep := endpoint(t, res, "none")
	for _, tr := range ep.Tests {
		if tr.ID == "A41b" || tr.ID == "A41c" {
			if tr.Outcome != OutcomeOpenPotential || tr.AuthReply == nil || tr.AuthReply.Code != 235 {
				t.Errorf("%s after the greylisting retry: %s (AUTH %+v), want open through the Guest logon", tr.ID, tr.Outcome, tr.AuthReply)
			}
		}
	}
}

// The A41 tests run again after STARTTLS, where servers often offer AUTH
// only.
func TestRunAuthTestsAfterSTARTTLS(t *testing.T) {
	p := smtptest.Closed554()
	p.StartTLS, p.Auth = true, func(string, string) bool { return false }
	res, _ := testAudit(t, p, func(o *Options) { o.AuthTests = true })
	for _, mode := range []string{"none", "starttls"} {
		ep := endpoint(t, res, mode)
		if ep.Verdict != VerdictClosed {
			t.Fatalf("%s: verdict %s", mode, ep.Verdict)
		}
		n := 0
		for _, tr := range ep.Tests {
			if tr.ID == "A41b" || tr.ID == "A41c" {
				n++
				if tr.AuthReply == nil || tr.AuthReply.Code != 535 || tr.Outcome != OutcomeDenied {
					t.Errorf("%s %s: AUTH %+v, %s", mode, tr.ID, tr.AuthReply, tr.Outcome)
				}
			}
		}
		if n != 2 {
			t.Errorf("%s: %d of A41b/c ran", mode, n)
		}
	}
}
