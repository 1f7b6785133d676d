package audit

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
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
	// ReasonControlPending2: a form at one of the server's own names was
	// accepted, and the accept-any-local control at that name is
	// undecided.
	ReasonControlPending2 = "own-name control inconclusive"
)

// decision is what one reply means for a test (docs/relay-probes.md §8,
// "Verdict rules per test").
type decision struct {
	Outcome Outcome
	Reason  string
	Next    bool // go on: MAIL accepted → RCPT; RCPT accepted → DATA
	// Retry: greylisting (or a greylisting-like 450/451): retry with the
	// same sender, recipient and source after Delay (0: the server named
	// none) within Options.GreylistRetry.
	Retry bool
	Delay time.Duration
}

// serverWords is a reply's text in lower case without the addresses it
// echoes: anything in angle brackets, the recipient that was sent (in
// any form: quoted, percent hack, bang path), and words holding an "@".
// Servers quote the recipient ("450 4.2.0 <relaytest%example.net>:
// Recipient address rejected: Greylisted"), and the default recipient's
// local part is "relaytest", which would turn greylisting into a relay
// refusal (and an undecided server into a closed one).
func serverWords(r *Reply, sent string) string {
	text := strings.ToLower(r.Text())
	sent = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(sent), "<"), ">"))
	if sent != "" {
		text = strings.ReplaceAll(text, sent, " ")
		if uq := strings.ReplaceAll(sent, `"`, ""); uq != sent && uq != "" {
			text = strings.ReplaceAll(text, uq, " ")
		}
	}
	var b strings.Builder
	depth := 0
	for _, ch := range text {
		switch {
		case ch == '<':
			depth++
		case ch == '>' && depth > 0:
			depth--
			b.WriteByte(' ')
		case depth == 0:
			b.WriteRune(ch)
		}
	}
	var words []string
	for _, w := range strings.Fields(b.String()) {
		if !strings.Contains(w, "@") {
			words = append(words, w)
		}
	}
	return strings.Join(words, " ")
}

// isRelayText reports whether a reply's own words speak of relaying
// (echoed addresses excluded, serverWords).
func isRelayText(r *Reply, sent string) bool {
	return strings.Contains(serverWords(r, sent), "relay")
}

var (
	greylistPhrases = []string{"greylist", "graylist", "grey-list", "gray-list", "grey list", "gray list",
		"try again", "come back later", "please retry", "retry later", "try later"}
	// "in 20 seconds", "wait 5 minutes", "retry after 300 s"
	greylistInRE = regexp.MustCompile(`\b(?:in|after|wait)\s+(\d{1,6})\s*(seconds?|secs?|s\b|minutes?|mins?|m\b)`)
)

// isGreylistText reports whether a reply's own words speak of
// greylisting (greylist/graylist, try again, come back later, please
// retry, in N seconds/minutes), whatever its enhanced code: milter-greylist
// answers "451 4.7.1 Greylisting in action, please come back later",
// postgrey "450 4.2.0 <rcpt>: Recipient address rejected: Greylisted".
func isGreylistText(r *Reply, sent string) bool {
	w := serverWords(r, sent)
	for _, p := range greylistPhrases {
		if strings.Contains(w, p) {
			return true
		}
	}
	return greylistInRE.MatchString(w)
}

// greylistDelay is the wait a greylisting reply names ("please try
// again in 20 seconds"), or 0.
func greylistDelay(r *Reply, sent string) time.Duration {
	m := greylistInRE.FindStringSubmatch(serverWords(r, sent))
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0
	}
	d := time.Duration(n) * time.Second
	if strings.HasPrefix(m[2], "m") {
		d = time.Duration(n) * time.Minute
	}
	return d
}

// isRefusalText: a temporary reply whose words refuse (Postfix's
// "450 4.7.1 Client host rejected"), not greylisting.
func isRefusalText(r *Reply, sent string) bool {
	w := serverWords(r, sent)
	for _, p := range []string{"reject", "denied", "refuse", "not allowed", "not permitted", "blocked"} {
		if strings.Contains(w, p) {
			return true
		}
	}
	return false
}

func greylisted(r *Reply, sent string) decision {
	return decision{Outcome: OutcomeInconclusive, Reason: ReasonGreylisted, Retry: true, Delay: greylistDelay(r, sent)}
}

// decideMail: MAIL 250 → go on; 530 or 5.7.0 → auth-required (closed for
// this port); other 5xx → sender-refused (untested, not passed); 4xx →
// retry then inconclusive; 421 → dropped.
func decideMail(r *Reply, sent string) decision {
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
		return greylisted(r, sent)
	}
	return decision{Outcome: OutcomeInconclusive, Reason: ReasonProtocol}
}

// decideRcpt implements the RCPT rules of §8; sent is the recipient as
// sent, so that the reply's echo of it is not read as the server's words:
//   - 250/251 → candidate (DATA step);
//   - 530 or 5.7.0 → auth-required;
//   - 550, 551, 553, 554, 5.7.x, 501 and every other 5xx → denied;
//   - 421 → inconclusive(dropped);
//   - a 4xx that speaks of greylisting, whatever its enhanced code
//     (4.7.1 included) → retry, then inconclusive(greylisted);
//   - a 4xx whose own words refuse relaying (Postfix
//     defer_unauth_destination's 454 4.7.1 Relay access denied) or refuse
//     outright ("Client host rejected") → denied;
//   - 452 → inconclusive; other 450/451 → retry, then
//     inconclusive(greylisted); other 4xx → inconclusive(temporary failure).
func decideRcpt(r *Reply, sent string) decision {
	switch {
	case r.Code == 250 || r.Code == 251 || r.Code/100 == 2:
		return decision{Next: true}
	case r.Code == 530 || r.Enhanced == "5.7.0":
		return decision{Outcome: OutcomeAuthRequired, Reason: ReasonAuthRequired}
	case r.Code/100 == 5:
		return decision{Outcome: OutcomeDenied}
	case r.Code == 421:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonDropped}
	case r.Code/100 == 4 && isGreylistText(r, sent):
		return greylisted(r, sent)
	case r.Code/100 == 4 && (isRelayText(r, sent) || isRefusalText(r, sent)):
		return decision{Outcome: OutcomeDenied, Reason: "temporary-policy refusal"}
	case r.Code == 452:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonTooMany}
	case r.Code == 450 || r.Code == 451:
		return greylisted(r, sent)
	case r.Code/100 == 4:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonTempFailure}
	}
	return decision{Outcome: OutcomeInconclusive, Reason: ReasonProtocol}
}

// decideData: 354 → go on (drop, or send the message in deliver mode);
// 5xx → denied-late; 421 → dropped; other 4xx → inconclusive.
func decideData(r *Reply, sent string) decision {
	switch {
	case r.Code == 354 || r.Code/100 == 3:
		return decision{Next: true}
	case r.Code/100 == 5:
		return decision{Outcome: OutcomeDeniedLate, Reason: "late reject at DATA"}
	case r.Code == 421:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonDropped}
	case r.Code/100 == 4 && isGreylistText(r, sent):
		// Greylisting at DATA (milter-greylist can defer there).
		return greylisted(r, sent)
	case r.Code/100 == 4:
		return decision{Outcome: OutcomeInconclusive, Reason: ReasonTempFailure}
	}
	return decision{Outcome: OutcomeInconclusive, Reason: ReasonProtocol}
}

// decideDot: the reply to the final "." (RFC 5321 §4.2.5: 250 means the
// server accepted responsibility for delivery).
func decideDot(r *Reply, _ string) decision {
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
	ReasonTempFailure, ReasonTooMany, ReasonControlPending2, ReasonProtocol, ReasonDeadline}

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
	ep.Findings = nil
	var c1, c1p *TestResult
	counts := map[string]int{}
	applicable, refused, senderRefused, asLocal, acceptAllClosed := 0, 0, 0, 0, 0
	// own holds each own-name control (C2, C2I, C2B, C2U) by the name it
	// tests (Case.Own).
	own := map[string]*TestResult{}
	acceptsEverything := false
	for i := range ep.Tests {
		t := &ep.Tests[i]
		switch {
		case t.ID == "C1":
			c1 = t
		case t.ID == "C1P":
			c1p = t
		case t.ID == "C3":
			if t.Outcome == OutcomeAccepted {
				ep.AcceptAll, acceptsEverything = true, true
			}
		case t.Kind == "control" && caseByID[t.ID].Own != "":
			own[caseByID[t.ID].Own] = t
			if t.Outcome == OutcomeAccepted {
				ep.AcceptAll = true
			}
		}
	}
	var notDelivered []string
	for i := range ep.Tests {
		t := &ep.Tests[i]
		if t.Kind == "control" || t.Kind == "info" {
			continue
		}
		cs := caseByID[t.ID]
		// A form that ends at one of the server's own names, accepted
		// where a random local part at that same name is accepted too,
		// looks exactly like local delivery: it is not evidence of
		// relaying (docs/relay-probes.md §8, C2 at every own name).
		if cs.LocalForm && (t.Outcome == OutcomeOpenLikely || t.Outcome == OutcomeOpenPotential ||
			t.Outcome == OutcomeAcceptedAsLocal || t.Outcome == OutcomeNotDelivered) {
			ctl := own[cs.Own]
			switch {
			case ctl != nil && ctl.Outcome == OutcomeAccepted:
				t.Outcome = OutcomeAcceptedAsLocal
				t.Reason = fmt.Sprintf("accepted as a local recipient: the server also accepts a random local part at the same name (control %s)", ctl.ID)
				asLocal++
				continue
			case t.Outcome != OutcomeNotDelivered && (ctl == nil || !isClosedOutcome(ctl.Outcome) && ctl.Outcome != OutcomeSenderRefused):
				// The control for this name is undecided (greylisted,
				// dropped): the acceptance may be local delivery.
				id := ownControl[cs.Own]
				t.Outcome = OutcomeInconclusive
				t.Reason = fmt.Sprintf("%s (accepted, but control %s, a random local part at the same name, is undecided)", ReasonControlPending2, id)
			}
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
		case t.Outcome == OutcomeNotDelivered && acceptsEverything:
			// An accept-everything server (C3: a recipient at an
			// .invalid domain accepted) that delivered nothing within the
			// catch wait: not a relay, but a discard or backscatter risk,
			// reported as a finding.
			applicable++
			refused++
			acceptAllClosed++
			notDelivered = append(notDelivered, t.ID)
		case t.Outcome == OutcomeNotDelivered:
			applicable++
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
	if acceptAllClosed > 0 {
		wait := ""
		for i := range ep.Tests {
			if ep.Tests[i].Outcome == OutcomeNotDelivered && ep.Tests[i].Reason != "" {
				wait = ep.Tests[i].Reason
				break
			}
		}
		f := fmt.Sprintf("accept-all: the server accepts mail for any recipient, even at an unresolvable domain (C3), but none of the %d accepted test messages (%s) arrived at the catcher", acceptAllClosed, strings.Join(notDelivered, ", "))
		if wait != "" {
			f += " (" + wait + ")"
		}
		f += ": it discards or bounces them later, a backscatter risk; not a relay"
		ep.Findings = append(ep.Findings, f)
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
	if c1 != nil && c1.Outcome != OutcomeAccepted && c1p != nil && c1p.Outcome == OutcomeAccepted {
		// A host target: its name need not be a mail domain of the
		// server, but the server takes postmaster's mail (RFC 5321
		// §4.5.1), so this vantage point is not blocked.
		c1 = c1p
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
		if acceptAllClosed > 0 {
			ep.Reason = fmt.Sprintf("all %d applicable tests refused or not delivered (%d accepted by an accept-all server, nothing arrived at the catcher)", refused, acceptAllClosed)
		}
		if senderRefused > 0 {
			ep.Reason += fmt.Sprintf(" (%d untested: sender refused)", senderRefused)
		}
		if asLocal > 0 {
			ep.Reason += fmt.Sprintf("; %d form(s) at the server's own names accepted as local recipients (a random local part at the same name is accepted too)", asLocal)
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
