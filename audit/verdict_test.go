package audit

import (
	"strings"
	"testing"
	"time"
)

func rep(code int, text string) *Reply {
	r, err := ParseReply([]byte(itoa(code) + " " + text + "\r\n"))
	if err != nil {
		panic(err)
	}
	return r
}

func itoa(n int) string {
	return string(rune('0'+n/100)) + string(rune('0'+n/10%10)) + string(rune('0'+n%10))
}

func TestDecideRcpt(t *testing.T) {
	tests := []struct {
		name    string
		r       *Reply
		outcome Outcome
		reason  string
		next    bool
		retry   bool
	}{
		{"250 candidate", rep(250, "2.1.5 Ok"), "", "", true, false},
		{"251 candidate", rep(251, "User not local; will forward"), "", "", true, false},
		{"550 denied", rep(550, "5.7.1 Unable to relay"), OutcomeDenied, "", false, false},
		{"551 denied", rep(551, "User not local"), OutcomeDenied, "", false, false},
		{"553 denied", rep(553, "5.1.3 bad syntax"), OutcomeDenied, "", false, false},
		{"554 denied", rep(554, "5.7.1 Relay access denied"), OutcomeDenied, "", false, false},
		{"501 syntax denied", rep(501, "5.1.3 Bad recipient address syntax"), OutcomeDenied, "", false, false},
		{"530 auth", rep(530, "5.7.0 Authentication required"), OutcomeAuthRequired, ReasonAuthRequired, false, false},
		{"454 4.7.1 relay is denied", rep(454, "4.7.1 <x>: Relay access denied"), OutcomeDenied, "temporary-policy refusal", false, false},
		{"451 relay text is denied", rep(451, "relaying temporarily not allowed"), OutcomeDenied, "temporary-policy refusal", false, false},
		// "relay" in the echoed recipient is not the server speaking of relaying.
		{"450 greylist echoing relaytest@", rep(450, "4.2.0 <relaytest@example.net>: Recipient address rejected: Greylisted, try again later"), OutcomeInconclusive, ReasonGreylisted, false, true},
		{"451 echoing a bare relay@ address", rep(451, "relay@example.net temporarily unavailable"), OutcomeInconclusive, ReasonGreylisted, false, true},
		{"454 relay text after an echoed address", rep(454, "4.7.1 <relaytest@example.net>: Relay access denied"), OutcomeDenied, "temporary-policy refusal", false, false},
		{"450 4.7.1 denied", rep(450, "4.7.1 Client host rejected"), OutcomeDenied, "temporary-policy refusal", false, false},
		{"450 greylist", rep(450, "4.2.0 Greylisted"), OutcomeInconclusive, ReasonGreylisted, false, true},
		{"451 greylist", rep(451, "4.7.0 try later"), OutcomeInconclusive, ReasonGreylisted, false, true},
		{"452 inconclusive", rep(452, "4.5.3 Too many recipients"), OutcomeInconclusive, ReasonTooMany, false, false},
		{"421 dropped", rep(421, "4.7.0 closing"), OutcomeInconclusive, ReasonDropped, false, false},
		{"other 4xx", rep(455, "4.5.0 params"), OutcomeInconclusive, ReasonTempFailure, false, false},
		// Greylisting is recognised by its words, whatever the enhanced code (issue 13 item 2).
		{"milter-greylist 451 4.7.1", rep(451, "4.7.1 Greylisting in action, please come back later"), OutcomeInconclusive, ReasonGreylisted, false, true},
		{"policy service 451 4.7.1 with delay", rep(451, "4.7.1 <postmaster@example.com>: Recipient address rejected: Greylisted, please try again in 20 seconds"), OutcomeInconclusive, ReasonGreylisted, false, true},
		{"postgrey 450 4.2.0 echoing a percent recipient", rep(450, "4.2.0 <relaytest%example.net>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html"), OutcomeInconclusive, ReasonGreylisted, false, true},
		{"graylist spelling", rep(450, "4.7.1 Graylisted"), OutcomeInconclusive, ReasonGreylisted, false, true},
		{"please retry", rep(451, "4.3.2 please retry"), OutcomeInconclusive, ReasonGreylisted, false, true},
		{"4.7.1 alone is not a refusal", rep(451, "4.7.1 Service unavailable"), OutcomeInconclusive, ReasonGreylisted, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decideRcpt(tc.r, "<relaytest@example.net>")
			if d.Outcome != tc.outcome || d.Reason != tc.reason || d.Next != tc.next || d.Retry != tc.retry {
				t.Fatalf("got %+v", d)
			}
		})
	}
}

func TestDecideMailDataDot(t *testing.T) {
	tests := []struct {
		name    string
		fn      func(*Reply, string) decision
		r       *Reply
		outcome Outcome
		next    bool
	}{
		{"MAIL 250", decideMail, rep(250, "Ok"), "", true},
		{"MAIL 530", decideMail, rep(530, "Authentication required"), OutcomeAuthRequired, false},
		{"MAIL 5.7.0", decideMail, rep(550, "5.7.0 Must issue STARTTLS first"), OutcomeAuthRequired, false},
		{"MAIL 553 sender refused", decideMail, rep(553, "5.1.8 Sender domain unknown"), OutcomeSenderRefused, false},
		{"MAIL 451 retry", decideMail, rep(451, "4.3.0 try later"), OutcomeInconclusive, false},
		{"DATA 354", decideData, rep(354, "go ahead"), "", true},
		{"DATA 554 late", decideData, rep(554, "5.5.1 no valid recipients"), OutcomeDeniedLate, false},
		{"DATA 451", decideData, rep(451, "later"), OutcomeInconclusive, false},
		{"dot 250", decideDot, rep(250, "2.0.0 queued"), "", true},
		{"dot 550", decideDot, rep(550, "5.7.1 rejected"), OutcomeDeniedLate, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.fn(tc.r, "<relaytest@example.net>")
			if d.Outcome != tc.outcome || d.Next != tc.next {
				t.Fatalf("got %+v", d)
			}
		})
	}
}

func TestAggregateEndpoint(t *testing.T) {
	acc := TestResult{ID: "C1", Kind: "control", Outcome: OutcomeAccepted}
	den := func(id string) TestResult { return TestResult{ID: id, Kind: "sender", Outcome: OutcomeDenied} }
	tests := []struct {
		name    string
		tests   []TestResult
		verdict Verdict
		conf    Confirmation
		accept  bool
	}{
		{"all denied", []TestResult{acc, den("S1"), den("S2")}, VerdictClosed, "", false},
		{"C1 refused never closed", []TestResult{{ID: "C1", Kind: "control", Outcome: OutcomeDenied, Reply: rep(550, "no")}, den("S1")}, VerdictInconclusive, "", false},
		{"no C1 never closed", []TestResult{den("S1")}, VerdictInconclusive, "", false},
		{"open likely", []TestResult{acc, den("S1"), {ID: "S2", Kind: "sender", Outcome: OutcomeOpenLikely}}, VerdictOpen, ConfirmLikely, false},
		{"potential with accept-all", []TestResult{acc, {ID: "C3", Kind: "control", Outcome: OutcomeAccepted}, {ID: "S2", Kind: "sender", Outcome: OutcomeOpenPotential}}, VerdictOpen, ConfirmPotential, true},
		{"confirmed wins", []TestResult{acc, {ID: "S1", Kind: "sender", Outcome: OutcomeOpenLikely}, {ID: "S2", Kind: "sender", Outcome: OutcomeOpenConfirmed}}, VerdictOpen, ConfirmConfirmed, false},
		{"greylisted", []TestResult{acc, den("S1"), {ID: "S2", Kind: "sender", Outcome: OutcomeInconclusive, Reason: ReasonGreylisted}}, VerdictInconclusive, "", false},
		{"info never decides", []TestResult{acc, den("S1"), {ID: "R35", Kind: "info", Outcome: OutcomeAccepted}}, VerdictClosed, "", false},
		{"sender refused only", []TestResult{acc, {ID: "S1", Kind: "sender", Outcome: OutcomeSenderRefused}}, VerdictInconclusive, "", false},
		{"accepted-not-delivered", []TestResult{acc, den("S1"), {ID: "S2", Kind: "sender", Outcome: OutcomeNotDelivered}}, VerdictInconclusive, "", false},
		{"bounced counts as closed", []TestResult{acc, {ID: "S2", Kind: "sender", Outcome: OutcomeBounced}}, VerdictClosed, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := EndpointResult{Tests: tc.tests}
			aggregateEndpoint(&ep)
			if ep.Verdict != tc.verdict || ep.Confirmation != tc.conf || ep.AcceptAll != tc.accept {
				t.Fatalf("got %s (%s) acceptAll=%v: %s", ep.Verdict, ep.Confirmation, ep.AcceptAll, ep.Reason)
			}
		})
	}
}

func TestAggregateTarget(t *testing.T) {
	tr := TargetResult{Endpoints: []EndpointResult{{Verdict: VerdictClosed}, {Verdict: VerdictInconclusive, Reason: "timeout"}, {Verdict: VerdictClosed}}}
	aggregateTarget(&tr)
	if tr.Verdict != VerdictInconclusive {
		t.Fatalf("worst endpoint: got %s", tr.Verdict)
	}
	tr.Endpoints[0] = EndpointResult{Verdict: VerdictOpen, Triggers: []string{"S2"}, Address: "192.0.2.1", Port: 25, TLS: "none", MXHost: "mx"}
	aggregateTarget(&tr)
	if tr.Verdict != VerdictOpen || len(tr.Triggers) != 1 || tr.Triggers[0] != "mx 192.0.2.1:25/none S2" {
		t.Fatalf("got %s %v", tr.Verdict, tr.Triggers)
	}
	nm := TargetResult{NullMX: true}
	aggregateTarget(&nm)
	if nm.Verdict != VerdictNoMail {
		t.Fatal(nm.Verdict)
	}
	empty := TargetResult{}
	aggregateTarget(&empty)
	if empty.Verdict != VerdictInconclusive {
		t.Fatal("a target without endpoints must never be closed")
	}
}

// A server that accepts any local recipient (IIS drops them into its Drop
// folder) accepts "user%victim@[its own address]" as a local mailbox: that
// must not make it an open relay, while a plain third-party form still does.
func TestAcceptAnyLocalRecipient(t *testing.T) {
	ok := rep(250, "2.1.5 ok")
	no := rep(550, "5.1.1 User unknown")
	// ctl gives the own-name controls: C2 (domain), C2I (literal), C2B
	// (banner), C2U (unqualified); "" leaves one out (no value: an address
	// target has no domain), "y" accepted, "n" refused, "g" greylisted.
	base := func(ctl string, extra ...TestResult) EndpointResult {
		ts := []TestResult{
			{ID: "C1", Kind: "control", Outcome: OutcomeAccepted, Reply: ok},
			{ID: "C3", Kind: "control", Outcome: OutcomeDenied, Reply: rep(550, "5.7.1 Unable to relay")},
			{ID: "S2", Kind: "sender", Outcome: OutcomeDenied, Reply: rep(550, "5.7.1 Unable to relay")},
		}
		for i, id := range []string{"C2", "C2I", "C2B", "C2U"} {
			switch ctl[i] {
			case 'y':
				ts = append(ts, TestResult{ID: id, Kind: "control", Outcome: OutcomeAccepted, Reply: ok})
			case 'n':
				ts = append(ts, TestResult{ID: id, Kind: "control", Outcome: OutcomeDenied, Reply: no})
			case 'g':
				ts = append(ts, TestResult{ID: id, Kind: "control", Outcome: OutcomeInconclusive, Reason: ReasonGreylisted})
			case 's':
				ts = append(ts, TestResult{ID: id, Kind: "control", Outcome: OutcomeSkipped})
			}
		}
		return EndpointResult{Tests: append(ts, extra...)}
	}
	likely := func(id string) TestResult { return TestResult{ID: id, Kind: "recipient", Outcome: OutcomeOpenLikely} }
	tests := []struct {
		name    string
		ep      EndpointResult
		verdict Verdict
		outcome Outcome // of the last test
	}{
		{"percent hack at own literal is local", base("yyyy", likely("R13")), VerdictClosed, OutcomeAcceptedAsLocal},
		{"bang path at own domain is local", base("yyyy", likely("R30b")), VerdictClosed, OutcomeAcceptedAsLocal},
		{"source route still relays", base("yyyy", likely("R23")), VerdictOpen, OutcomeOpenLikely},
		{"confirmed delivery still counts", base("yyyy", TestResult{ID: "R13", Kind: "recipient", Outcome: OutcomeOpenConfirmed}), VerdictOpen, OutcomeOpenConfirmed},
		// Issue 13 item 1: an address target has no domain, so C2 is
		// skipped; the literal's own control decides (IIS after a fix).
		{"address target: literal control decides R13", base("syyy", likely("R13")), VerdictClosed, OutcomeAcceptedAsLocal},
		{"address target: R18 double @ at literal", base("syyy", likely("R18")), VerdictClosed, OutcomeAcceptedAsLocal},
		{"address target: R28 bang path at literal", base("syyy", likely("R28")), VerdictClosed, OutcomeAcceptedAsLocal},
		{"address target: R14 at banner host", base("snyy", likely("R14")), VerdictClosed, OutcomeAcceptedAsLocal},
		{"R17 quoted percent, unqualified", base("nnny", likely("R17")), VerdictClosed, OutcomeAcceptedAsLocal},
		// The domain's control does not speak for the literal.
		{"C2 accepted, C2I refused: R13 relays", base("ynyy", likely("R13")), VerdictOpen, OutcomeOpenLikely},
		{"C2I accepted, C2 refused: R15 relays", base("nyyy", likely("R15")), VerdictOpen, OutcomeOpenLikely},
		{"banner refuses: R20 relays", base("yyny", likely("R20")), VerdictOpen, OutcomeOpenLikely},
		// A greylisted control leaves the form undecided, neither open nor closed.
		{"greylisted literal control", base("ngyy", likely("R13")), VerdictInconclusive, OutcomeInconclusive},
		// Catch mode is never less decisive: an accepted own-name form
		// that delivered nothing is local delivery.
		{"catch: not delivered at own literal", base("syyy", TestResult{ID: "R13", Kind: "recipient", Outcome: OutcomeNotDelivered}), VerdictClosed, OutcomeAcceptedAsLocal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := tc.ep
			aggregateEndpoint(&ep)
			if ep.Verdict != tc.verdict {
				t.Errorf("verdict %s (%s), want %s", ep.Verdict, ep.Reason, tc.verdict)
			}
			if got := ep.Tests[len(ep.Tests)-1].Outcome; got != tc.outcome {
				t.Errorf("outcome %s, want %s", got, tc.outcome)
			}
		})
	}
}

// TestAcceptEverythingDeliverNothing: in catch mode, a server that
// accepts every recipient (C3) and delivers nothing within the wait is
// closed, with the accept-all behaviour as its own finding naming the
// wait (issue 13 item 3).
func TestAcceptEverythingDeliverNothing(t *testing.T) {
	ok := rep(250, "2.1.5 ok")
	nd := func(id string) TestResult {
		return TestResult{ID: id, Kind: "sender", Outcome: OutcomeNotDelivered, Reason: "accepted, but nothing arrived within 45s: not relayed (or discarded)"}
	}
	ep := EndpointResult{Tests: []TestResult{
		{ID: "C1", Kind: "control", Outcome: OutcomeAccepted, Reply: ok},
		{ID: "C3", Kind: "control", Outcome: OutcomeAccepted, Reply: ok},
		nd("S1"), nd("S2"),
	}}
	aggregateEndpoint(&ep)
	if ep.Verdict != VerdictClosed || len(ep.Findings) != 1 || !strings.Contains(ep.Findings[0], "45s") || !strings.Contains(ep.Findings[0], "backscatter") {
		t.Fatalf("verdict %s (%s), findings %q; want closed with an accept-all finding naming the 45s wait", ep.Verdict, ep.Reason, ep.Findings)
	}
	// Without C3 accepted, a real external recipient accepted and not
	// delivered stays undecided.
	ep.Tests[1].Outcome = OutcomeDenied
	aggregateEndpoint(&ep)
	if ep.Verdict != VerdictInconclusive {
		t.Fatalf("without accept-all: verdict %s (%s), want inconclusive", ep.Verdict, ep.Reason)
	}
}

// TestEchoedRecipientIsNotRelayText: postgrey echoes the recipient in
// whatever form it was sent; "relay" inside it is not the server's word
// (issue 13 item 2b).
func TestEchoedRecipientIsNotRelayText(t *testing.T) {
	for _, sent := range []string{`<relaytest%example.net>`, `<"relaytest%example.net">`, `<example.net!relaytest>`,
		`<"relaytest@example.net">`, `<relaytest%example.net@[127.0.0.1]>`} {
		inner := sent[1 : len(sent)-1]
		for _, text := range []string{"4.2.0 <" + inner + ">: Recipient address rejected: Greylisted",
			"4.2.0 " + inner + ": Recipient address rejected: Greylisted"} {
			r := rep(450, text)
			if isRelayText(r, sent) {
				t.Errorf("%s: %q read as relay text", sent, text)
			}
			if d := decideRcpt(r, sent); d.Outcome != OutcomeInconclusive || !d.Retry {
				t.Errorf("%s: %q decided %+v, want greylisted", sent, text, d)
			}
		}
	}
	if !isRelayText(rep(454, "4.7.1 <relaytest%example.net>: Relay access denied"), "<relaytest%example.net>") {
		t.Error("the server's own 'Relay access denied' was not read")
	}
}

func TestGreylistDelay(t *testing.T) {
	for text, want := range map[string]time.Duration{
		"4.7.1 <postmaster@example.com>: Recipient address rejected: Greylisted, please try again in 20 seconds": 20 * time.Second,
		"4.7.1 Greylisting in action, please come back later":                                                    0,
		"4.2.0 Greylisted, please wait 5 minutes":                                                                5 * time.Minute,
		"4.7.1 greylisted, retry after 300s":                                                                     300 * time.Second,
	} {
		if got := greylistDelay(rep(451, text), "<postmaster@example.com>"); got != want {
			t.Errorf("%q: %s, want %s", text, got, want)
		}
	}
}
