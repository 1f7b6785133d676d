package audit

import "testing"

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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decideRcpt(tc.r)
			if d.Outcome != tc.outcome || d.Reason != tc.reason || d.Next != tc.next || d.Retry != tc.retry {
				t.Fatalf("got %+v", d)
			}
		})
	}
}

func TestDecideMailDataDot(t *testing.T) {
	tests := []struct {
		name    string
		fn      func(*Reply) decision
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
			d := tc.fn(tc.r)
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
	base := func(extra ...TestResult) EndpointResult {
		ts := []TestResult{
			{ID: "C1", Kind: "control", Outcome: OutcomeAccepted, Reply: ok},
			{ID: "C2", Kind: "control", Outcome: OutcomeAccepted, Reply: ok},
			{ID: "C3", Kind: "control", Outcome: OutcomeDenied, Reply: rep(550, "5.7.1 Unable to relay")},
			{ID: "S2", Kind: "sender", Outcome: OutcomeDenied, Reply: rep(550, "5.7.1 Unable to relay")},
		}
		return EndpointResult{Tests: append(ts, extra...)}
	}
	tests := []struct {
		name    string
		ep      EndpointResult
		verdict Verdict
		outcome Outcome // of the last test
	}{
		{"percent hack at own literal is local", base(TestResult{ID: "R13", Kind: "recipient", Outcome: OutcomeOpenLikely}), VerdictClosed, OutcomeAcceptedAsLocal},
		{"bang path at own domain is local", base(TestResult{ID: "R30b", Kind: "recipient", Outcome: OutcomeOpenLikely}), VerdictClosed, OutcomeAcceptedAsLocal},
		{"source route still relays", base(TestResult{ID: "R23", Kind: "recipient", Outcome: OutcomeOpenLikely}), VerdictOpen, OutcomeOpenLikely},
		{"confirmed delivery still counts", base(TestResult{ID: "R13", Kind: "recipient", Outcome: OutcomeOpenConfirmed}), VerdictOpen, OutcomeOpenConfirmed},
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
	// Without C2 accepted, the same acceptance is evidence of relaying.
	ep := base(TestResult{ID: "R13", Kind: "recipient", Outcome: OutcomeOpenLikely})
	ep.Tests[1].Outcome = OutcomeDenied
	aggregateEndpoint(&ep)
	if ep.Verdict != VerdictOpen {
		t.Errorf("with recipient validation, R13 accepted gave %s, want open", ep.Verdict)
	}
}
