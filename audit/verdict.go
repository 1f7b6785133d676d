package audit

import (
	"fmt"
	"sort"
	"strings"
)

// Reasons for inconclusive (and some closed) results. They are short,
// stable words so that reports and scripts can group on them.
const (
	ReasonUnreachable    = "unreachable"
	ReasonTimeout        = "timeout"
	ReasonRefused        = "refused at greeting" // 554 greeting, RFC 5321 §3.1
	ReasonGreetingTemp   = "temporary failure at greeting"
	ReasonTLS            = "tls"
	ReasonHeloRefused    = "helo-refused"
	ReasonSenderRefused  = "sender-refused"
	ReasonGreylisted     = "greylisted"
	ReasonDropped        = "dropped"
	ReasonTempFailure    = "temporary failure"
	ReasonTooMany        = "too many recipients or no storage (452)"
	ReasonBlocked        = "blocked" // control C1 refused: vantage point or wrong host
	ReasonProtocol       = "protocol error"
	ReasonDiscarded      = "accepted-then-discarded"
	ReasonAuthRequired   = "auth-required"
	ReasonNoTests        = "no applicable tests"
	ReasonDeadline       = "deadline reached"
	ReasonNotTested      = "not tested"
	ReasonControlPending = "control C1 inconclusive"
)

// decision is what one reply means for a test (relay-probes.md §8,
// "Verdict rules per test").
type decision struct {
	Outcome Outcome
	Reason  string
	Next    bool // go on: MAIL accepted → RCPT; RCPT accepted → DATA
	Retry   bool // greylisting-like 4xx: retry once after Options.GreylistRetry
}

// isRelayText reports whether a reply's own words speak of relaying. The
// addresses it echoes do not count: servers quote the recipient
// ("450 4.2.0 <relaytest@example.net>: Recipient address rejected:
// Greylisted"), and the default recipient's local part is "relaytest",
// which would turn greylisting into a relay refusal (and an undecided
// server into a closed one).
func isRelayText(r *Reply) bool {
	var words []string
	for _, w := range strings.Fields(strings.ToLower(r.Text())) {
		if !strings.Contains(w, "@") {
			words = append(words, w)
		}
	}
	return strings.Contains(strings.Join(words, " "), "relay")
}

// decideMail: MAIL 250 → go on; 530 or 5.7.0 → auth-required (closed for
// this port); other 5xx → sender-refused (untested, not passed); 4xx →
// retry then inconclusive; 421 → dropped.
func decideMail(r *Reply) decision {
	switch {
	case r.Code/100 == 2:
		return decision{Next: true}
	case r.Code == 530 || r.Enhanced == "5.7.0":
		return decision{Outcome: OutcomeAuthRequired, Reason: ReasonAuthRequired}
	case r.Code == 421:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonDropped}
	case r.Code/100 == 5:
		return decision{Outcome: OutcomeSenderRefused, Reason: ReasonSenderRefused}
	case r.Code/100 == 4:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonGreylisted, Retry: true}
	}
	return decision{Outcome: OutcomeInconclusive, Reason: ReasonProtocol}
}

// decideRcpt implements the RCPT rules of §8:
//   - 250/251 → candidate (DATA step);
//   - 530 or 5.7.0 → auth-required;
//   - 550, 551, 553, 554, 5.7.x, 501 and every other 5xx → denied;
//   - 450/451/454 with 4.7.1 or "relay" in the text → denied (Postfix
//     defer_unauth_destination's 454 4.7.1 is a refusal, not greylisting);
//   - 421 → inconclusive(dropped); 452 → inconclusive;
//   - other 450/451 → retry once, then inconclusive(greylisted);
//   - other 4xx → inconclusive(temporary failure).
func decideRcpt(r *Reply) decision {
	switch {
	case r.Code == 250 || r.Code == 251 || r.Code/100 == 2:
		return decision{Next: true}
	case r.Code == 530 || r.Enhanced == "5.7.0":
		return decision{Outcome: OutcomeAuthRequired, Reason: ReasonAuthRequired}
	case r.Code/100 == 5:
		return decision{Outcome: OutcomeDenied}
	case r.Code == 421:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonDropped}
	case r.Code/100 == 4 && (r.Enhanced == "4.7.1" || isRelayText(r)):
		return decision{Outcome: OutcomeDenied, Reason: "temporary-policy refusal"}
	case r.Code == 452:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonTooMany}
	case r.Code == 450 || r.Code == 451:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonGreylisted, Retry: true}
	case r.Code/100 == 4:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonTempFailure}
	}
	return decision{Outcome: OutcomeInconclusive, Reason: ReasonProtocol}
}

// decideData: 354 → go on (drop, or send the message in deliver mode);
// 5xx → denied-late; 421 → dropped; other 4xx → inconclusive.
func decideData(r *Reply) decision {
	switch {
	case r.Code == 354 || r.Code/100 == 3:
		return decision{Next: true}
	case r.Code/100 == 5:
		return decision{Outcome: OutcomeDeniedLate, Reason: "late reject at DATA"}
	case r.Code == 421:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonDropped}
	case r.Code/100 == 4:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonTempFailure}
	}
	return decision{Outcome: OutcomeInconclusive, Reason: ReasonProtocol}
}

// decideDot: the reply to the final "." (RFC 5321 §4.2.5: 250 means the
// server accepted responsibility for delivery).
func decideDot(r *Reply) decision {
	switch {
	case r.Code/100 == 2:
		return decision{Next: true}
	case r.Code/100 == 5:
		return decision{Outcome: OutcomeDeniedLate, Reason: "late reject after the message"}
	case r.Code == 421:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonDropped}
	}
	return decision{Outcome: OutcomeInconclusive, Reason: ReasonTempFailure}
}

// isOpen reports whether an outcome finds the endpoint open, and how
// strongly.
func isOpen(o Outcome) (Confirmation, bool) {
	switch o {
	case OutcomeOpenConfirmed:
		return ConfirmConfirmed, true
	case OutcomeOpenLikely, OutcomeSubmitted:
		return ConfirmLikely, true
	case OutcomeOpenPotential:
		return ConfirmPotential, true
	}
	return "", false
}

func confirmRank(c Confirmation) int {
	switch c {
	case ConfirmConfirmed:
		return 3
	case ConfirmLikely:
		return 2
	case ConfirmPotential:
		return 1
	}
	return 0
}

// isClosedOutcome: the form was refused (or bounced after acceptance).
func isClosedOutcome(o Outcome) bool {
	switch o {
	case OutcomeDenied, OutcomeDeniedLate, OutcomeAuthRequired, OutcomeBounced:
		return true
	}
	return false
}

// reasonOrder breaks ties when choosing the dominant reason.
var reasonOrder = []string{ReasonBlocked, ReasonUnreachable, ReasonRefused, ReasonGreetingTemp, ReasonTimeout,
	ReasonTLS, ReasonHeloRefused, ReasonGreylisted, ReasonDropped, ReasonDiscarded, ReasonSenderRefused,
	ReasonTempFailure, ReasonTooMany, ReasonProtocol, ReasonDeadline}

func reasonRank(r string) int {
	for i, v := range reasonOrder {
		if v == r {
			return i
		}
	}
	return len(reasonOrder)
}

// aggregateEndpoint sets the endpoint's verdict from its tests (§8
// "Aggregation"): open if any test is open (triggers listed, confirmation
// the strongest); closed if C1 was accepted and every applicable test was
// refused; otherwise inconclusive with the dominant reason. An endpoint
// that could not be tested is never closed.
func aggregateEndpoint(ep *EndpointResult) {
	ep.Triggers = nil
	ep.Confirmation = ""
	ep.AcceptAll = false
	var c1 *TestResult
	counts := map[string]int{}
	applicable, refused, senderRefused, discarded, asLocal := 0, 0, 0, 0, 0
	acceptsAnyLocal := false
	for i := range ep.Tests {
		t := &ep.Tests[i]
		switch t.ID {
		case "C1":
			c1 = t
		case "C2", "C3":
			if t.Outcome == OutcomeAccepted {
				ep.AcceptAll = true
				if t.ID == "C2" {
					acceptsAnyLocal = true
				}
			}
		}
	}
	for i := range ep.Tests {
		t := &ep.Tests[i]
		if t.Kind == "control" || t.Kind == "info" {
			continue
		}
		// A form that ends at the server itself, accepted by a server
		// that takes any local recipient, looks exactly like local
		// delivery: without a delivery check it proves nothing.
		if acceptsAnyLocal && caseByID[t.ID].LocalForm &&
			(t.Outcome == OutcomeOpenLikely || t.Outcome == OutcomeOpenPotential || t.Outcome == OutcomeAcceptedAsLocal) {
			t.Outcome = OutcomeAcceptedAsLocal
			t.Reason = "accepted as a local recipient by a server that accepts any local recipient (C2); only a delivery check (--catch-domain) can tell relay from local delivery"
			asLocal++
			continue
		}
		if conf, ok := isOpen(t.Outcome); ok {
			ep.Triggers = append(ep.Triggers, t.ID)
			if confirmRank(conf) > confirmRank(ep.Confirmation) {
				ep.Confirmation = conf
			}
			continue
		}
		switch {
		case t.Outcome == OutcomeSkipped:
		case t.Outcome == OutcomeSenderRefused:
			senderRefused++
		case isClosedOutcome(t.Outcome):
			applicable++
			refused++
		case t.Outcome == OutcomeNotDelivered:
			applicable++
			discarded++
			counts[ReasonDiscarded]++
		default:
			applicable++
			r := reasonWord(t.Reason)
			if r == "" {
				r = ReasonTempFailure
			}
			counts[r]++
		}
	}
	if len(ep.Triggers) > 0 {
		ep.Verdict = VerdictOpen
		ep.Reason = fmt.Sprintf("%d test(s) relayed: %s", len(ep.Triggers), strings.Join(ep.Triggers, ", "))
		if ep.AcceptAll && ep.Confirmation != ConfirmConfirmed {
			ep.Reason += "; the server accepts recipients it cannot have (C2/C3), so only a delivery check can confirm"
		}
		return
	}
	ep.Verdict = VerdictInconclusive
	if ep.Reason != "" && len(ep.Tests) == 0 {
		return // set by the connection step (unreachable, refused, tls, ...)
	}
	switch {
	case c1 == nil:
		ep.Reason = ReasonNotTested
		return
	case c1.Outcome == OutcomeDenied || c1.Outcome == OutcomeAuthRequired || c1.Outcome == OutcomeSenderRefused:
		ep.Reason = fmt.Sprintf("%s: control C1 (mail to %s) was refused with %s; results from this vantage point say nothing about relaying",
			ReasonBlocked, strings.Trim(c1.RcptTo, "<>"), c1.Reply.String())
		return
	case c1.Outcome != OutcomeAccepted:
		r := c1.Reason
		if r == "" {
			r = ReasonControlPending
		}
		ep.Reason = r
		return
	}
	if applicable > 0 && refused == applicable {
		ep.Verdict = VerdictClosed
		ep.Reason = fmt.Sprintf("all %d applicable tests refused", refused)
		if senderRefused > 0 {
			ep.Reason += fmt.Sprintf(" (%d untested: sender refused)", senderRefused)
		}
		if asLocal > 0 {
			ep.Reason += fmt.Sprintf("; %d own-domain form(s) accepted as local recipients (the server accepts any local recipient): confirm with --catch-domain", asLocal)
		}
		return
	}
	if applicable == 0 {
		if senderRefused > 0 {
			ep.Reason = ReasonSenderRefused
		} else {
			ep.Reason = ReasonNoTests
		}
		return
	}
	ep.Reason = dominant(counts)
	if n := counts[ep.Reason]; n > 0 {
		ep.Reason = fmt.Sprintf("%s (%d of %d applicable tests)", ep.Reason, n, applicable)
	}
	_ = discarded
}

func dominant(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		if reasonRank(keys[i]) != reasonRank(keys[j]) {
			return reasonRank(keys[i]) < reasonRank(keys[j])
		}
		return keys[i] < keys[j]
	})
	if len(keys) == 0 {
		return ReasonTempFailure
	}
	return keys[0]
}

func verdictRank(v Verdict) int {
	switch v {
	case VerdictOpen:
		return 3
	case VerdictInconclusive:
		return 2
	case VerdictClosed:
		return 1
	}
	return 0 // no-mail
}

// aggregateTarget sets the target verdict: the worst endpoint (open >
// inconclusive > closed); a null MX is no-mail; a target without any
// endpoint is inconclusive.
func aggregateTarget(t *TargetResult) {
	t.Triggers = nil
	if t.NullMX {
		t.Verdict = VerdictNoMail
		t.Reason = "null MX (RFC 7505): the domain accepts no mail"
		return
	}
	if len(t.Endpoints) == 0 {
		t.Verdict = VerdictInconclusive
		if t.Reason == "" {
			t.Reason = "no mail server address to test"
		}
		return
	}
	worst := &t.Endpoints[0]
	open := 0
	for i := range t.Endpoints {
		ep := &t.Endpoints[i]
		if verdictRank(ep.Verdict) > verdictRank(worst.Verdict) {
			worst = ep
		}
		if ep.Verdict == VerdictOpen {
			open++
			for _, id := range ep.Triggers {
				t.Triggers = append(t.Triggers, fmt.Sprintf("%s %s/%s %s", ep.MXHost, hostPort(ep.Address, ep.Port), ep.TLS, id))
			}
		}
	}
	t.Verdict = worst.Verdict
	switch t.Verdict {
	case VerdictOpen:
		t.Reason = fmt.Sprintf("open relay on %d of %d endpoints", open, len(t.Endpoints))
	case VerdictClosed:
		t.Reason = fmt.Sprintf("all %d endpoints refused to relay", len(t.Endpoints))
	default:
		ep := hostPort(worst.Address, worst.Port)
		if !sameHost(worst.MXHost, ep) {
			ep = worst.MXHost + " " + ep
		}
		t.Reason = fmt.Sprintf("%s/%s: %s", ep, worst.TLS, worst.Reason)
	}
}

// overallVerdict is the worst target verdict.
func overallVerdict(ts []TargetResult) Verdict {
	v := VerdictNoMail
	if len(ts) == 0 {
		return VerdictInconclusive
	}
	for _, t := range ts {
		if verdictRank(t.Verdict) > verdictRank(v) {
			v = t.Verdict
		}
	}
	return v
}
